package broker

// MaxPending is maxPending, for the tests.
const MaxPending = maxPending

package vakt

import "time"

// Priority of an alarm: 1 is the most urgent. Technical alarms go to technicians.
type Priority int

const (
	PriorityEmergency Priority = 1
	PriorityHigh      Priority = 2
	PriorityNormal    Priority = 3
	PriorityTechnical Priority = 4
)

// AlarmState is where an alarm is in its lifecycle (architecture.md).
type AlarmState string

const (
	StateRaised    AlarmState = "raised"
	StateOffered   AlarmState = "offered"
	StateAccepted  AlarmState = "accepted"
	StatePresent   AlarmState = "present"
	StateCompleted AlarmState = "completed"
	StateCancelled AlarmState = "cancelled"
	StateForwarded AlarmState = "forwarded"
)

// Open reports whether the alarm still needs someone.
func (s AlarmState) Open() bool {
	switch s {
	case StateCompleted, StateCancelled:
		return false
	}
	return true
}

// Alarm is one need for help. Repeats of an open alarm raise Count, never a new alarm.
type Alarm struct {
	ID          AlarmID
	Transmitter TransmitterID
	Kind        EventKind
	Priority    Priority
	State       AlarmState
	RaisedAt    time.Time
	UpdatedAt   time.Time
	Count       int
	// Policy names the routing policy chosen when raised.
	Policy string
	// Tier is the 1-based tier now offered (0 before the first offer).
	Tier int
	// TierStartedAt is when the current tier was first offered; its wait runs from here.
	TierStartedAt time.Time
	// Round counts passes through the tiers (a re-alarm or exhausted tiers start another).
	Round int
	// Assignee is who accepted it, empty until then; AcceptedAt is when.
	Assignee   StaffID
	AcceptedAt time.Time
	// Offers holds everyone offered this alarm in the current round.
	Offers []Offer
	// Deadline is when the pending timer (offer wait, delivery confirmation,
	// re-alarm) fires; zero when none. Persisted so a restart resumes it.
	Deadline time.Time
	// Forwarded is set once handed to the alarm receiving centre.
	Forwarded bool
	// WalkTest marks alarms raised in walk-test mode: shown, nobody alarmed.
	WalkTest bool
	// Text is the display text of the event that raised it, e.g. for a call no
	// mapping rule knows "call 550: ROOM 999" (where to go); empty when none.
	Text string
}

// OfferStatus tracks one staff member's answer to an offer.
type OfferStatus string

const (
	OfferPending     OfferStatus = "pending"     // sent, phone has not confirmed
	OfferDelivered   OfferStatus = "delivered"   // phone rang
	OfferRejected    OfferStatus = "rejected"    // said no
	OfferUnreachable OfferStatus = "unreachable" // not confirmed in time
	OfferAccepted    OfferStatus = "accepted"
	OfferWithdrawn   OfferStatus = "withdrawn"
)

// Offer is one staff member asked to take an alarm.
type Offer struct {
	Staff     StaffID
	Tier      int
	Status    OfferStatus
	OfferedAt time.Time
	// DistanceM is the distance from the transmitter at offer time, -1 if unknown.
	DistanceM float64
}

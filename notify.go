package vakt

// NoticeType is what a phone is told.
type NoticeType string

const (
	NoticeOffer     NoticeType = "offer"     // you are asked to take this alarm
	NoticeTaken     NoticeType = "taken"     // someone accepted it; stop ringing
	NoticeUpdate    NoticeType = "update"    // any other change you should see
	NoticeWithdrawn NoticeType = "withdrawn" // cancelled or no longer yours
	// NoticeRevoked: the person left the directory or was erased; every login of
	// theirs ends now (Alarm is empty).
	NoticeRevoked NoticeType = "revoked"
)

// Notice is one message for one staff member's phone.
type Notice struct {
	Type  NoticeType
	Alarm Alarm
	By    StaffID // for taken
}

// Notifier pushes notices to phones. Notify must not block the engine: a slow phone
// is the notifier's problem, and an offer it cannot confirm times out in routing.
type Notifier interface {
	Notify(staff StaffID, n Notice)
}

// Presence tells routing which staff have a phone connected to the gateway now: an
// offer to anyone else waits for their reconnect. Version changes whenever the set
// changes, so a caller re-reads Online only then; both must be cheap and safe for
// concurrent use.
type Presence interface {
	Online(staff StaffID) bool
	PresenceVersion() uint64
}

// NotifierFunc adapts a function to Notifier.
type NotifierFunc func(staff StaffID, n Notice)

func (f NotifierFunc) Notify(staff StaffID, n Notice) { f(staff, n) }

// Observer is told about every committed alarm change, after the commit: a serial
// driver sends ESPA status blocks back to the call system, metrics count, and so on.
// AlarmChanged must not block.
type Observer interface {
	AlarmChanged(a Alarm)
}

// Pager calls a pager or group on an existing paging system (a DECT system behind an
// ESPA 4.4.4 port): the routing tier "pager". Page must not block.
type Pager interface {
	Page(a Alarm, callAddress, text string) error
}

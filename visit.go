package vakt

import "time"

// Visit is a registered visit of a staff member at a room or resident, possibly
// answering an alarm.
type Visit struct {
	ID       VisitID
	Staff    StaffID
	Room     string
	Resident string // pseudonymous reference
	Start    time.Time
	End      time.Time // zero while the visit goes on
	Alarm    AlarmID   // empty for a planned visit
	Note     string    // short visit record kind ("assisted", "false alarm"), no health data
}

// EPRRecord records only that a note was sent to the EPR system: when, which
// system, which visit. There is deliberately no field for the note's content.
type EPRRecord struct {
	Visit  VisitID
	System string
	SentAt time.Time
	Staff  StaffID
}

package wire

import "time"

// Alarm (kind "alarm", v1) is one alarm lifecycle transition: ids and facts only,
// never names or positions. Every transition is its own entry.
type Alarm struct {
	ID          string    `json:"id"`                 // gateway alarm id, e.g. "a-12"
	Transition  string    `json:"transition"`         // audit action: "alarm.raised", "alarm.offered", "alarm.accepted", ...
	Transmitter string    `json:"transmitter"`        // transmitter id from the site configuration
	Kind        string    `json:"kind"`               // event kind: call, assist, emergency, fall, sensor, door, low-battery, tamper, offline
	Priority    int       `json:"priority"`           // 1 emergency, 2 high, 3 normal, 4 technical
	State       string    `json:"state"`              // raised, offered, accepted, present, completed, cancelled, forwarded
	Count       int       `json:"count"`              // presses folded into this alarm so far
	Tier        int       `json:"tier"`               // 1-based routing tier now offered; 0 before the first offer
	Assignee    string    `json:"assignee,omitempty"` // staff id who accepted it
	RaisedAt    time.Time `json:"raised_at"`
	At          time.Time `json:"at"`                  // when this transition happened
	Forwarded   bool      `json:"forwarded,omitempty"` // handed to the alarm receiving centre
	WalkTest    bool      `json:"walk_test,omitempty"` // raised in walk-test mode: nobody was alarmed
}

// Visit (kind "visit", v1) is a registered visit as it is now (each change is an entry;
// the latest entry for an id wins).
type Visit struct {
	ID       string    `json:"id"`
	Staff    string    `json:"staff"`              // staff id
	Room     string    `json:"room"`               // room name from the site configuration
	Resident string    `json:"resident,omitempty"` // pseudonymous reference, never a name
	Start    time.Time `json:"start"`
	End      time.Time `json:"end,omitzero"`    // absent while the visit goes on
	Alarm    string    `json:"alarm,omitempty"` // alarm id it answered; absent for a planned visit
	Note     string    `json:"note,omitempty"`  // record kind ("assisted", "false alarm"), no health data
}

// EPR (kind "epr", v1) records that a note was sent to the EPR system. There is
// deliberately no field for the note's content.
type EPR struct {
	Visit  string    `json:"visit"`
	System string    `json:"system"` // EPR integration name from the configuration
	SentAt time.Time `json:"sent_at"`
	Staff  string    `json:"staff"`
}

// Health (kind "health", v1) is what the gateway last heard from a transmitter. Only
// the latest per transmitter matters: under backlog pressure older ones are compacted.
type Health struct {
	Transmitter string    `json:"transmitter"`
	LastSeen    time.Time `json:"last_seen"`
	Battery     *int      `json:"battery,omitempty"`      // percent, absent if unknown
	LinkQuality *int      `json:"link_quality,omitempty"` // 0–255 (Zigbee LQI), absent if unknown
	Online      bool      `json:"online"`
}

// Audit (kind "audit", v1) is one hash-chained audit entry, exactly as stored. At is
// the very string the hash covers (RFC 3339 with nanoseconds, UTC), so the cloud can
// recompute Hash: SHA-256 over seq, at, actor, action, subject, prev, each followed by
// a zero byte, hex-encoded.
type Audit struct {
	Seq     int64  `json:"seq"`
	At      string `json:"at"`
	Actor   string `json:"actor"`   // "staff:<id>", "transmitter:<id>", "system", "technician"
	Action  string `json:"action"`  // "alarm.raised", "staff.erased", ...
	Subject string `json:"subject"` // ids only, e.g. "alarm:a-12"
	Prev    string `json:"prev"`    // hex hash of the previous entry, "" for the first
	Hash    string `json:"hash"`    // hex hash of this entry
}

package vakt

import "time"

// The outbox bodies below are the sync contract's typed, versioned schemas
// (docs/sync-protocol.md, "Entry kinds"), defined once: the engine and the store
// produce them, the uploader sends them as they are, and the reference cloud and the
// conformance suite read them (sync/wire aliases these types). They carry ids and
// facts only: never names, phone numbers, positions or record text (G1).

// Outbox entry kinds.
const (
	OutboxKindAlarm  = "alarm"
	OutboxKindVisit  = "visit"
	OutboxKindEPR    = "epr"
	OutboxKindHealth = "health"
	OutboxKindAudit  = "audit"
)

// OutboxVersions is the current schema version of each kind's body. A body gains
// optional fields without a new version; a renamed, removed or re-typed field
// needs one.
var OutboxVersions = map[string]int{OutboxKindAlarm: 1, OutboxKindVisit: 1, OutboxKindEPR: 1,
	OutboxKindHealth: 1, OutboxKindAudit: 1}

// OutboxOrigin says which process run made a batch's outbox entries and whether
// its wall clock could be trusted then. The engine stamps every batch; the store
// writes it beside each entry, the audit entries it makes included.
type OutboxOrigin struct {
	// Boot is random per process start.
	Boot string
	// ClockSynced: the wall clock was synchronised (NTP) when the entries were made.
	// A box without a real-time clock may boot in 1970.
	ClockSynced bool
	// SinceBoot is monotonic time since the process started.
	SinceBoot time.Duration
}

// OutboxAlarm (kind "alarm", v1) is one alarm lifecycle transition. Every
// transition is its own entry.
type OutboxAlarm struct {
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

// OutboxVisit (kind "visit", v1) is a registered visit as it is now (each change
// is an entry; the latest entry for an id wins).
type OutboxVisit struct {
	ID       string    `json:"id"`
	Staff    string    `json:"staff"`              // staff id
	Room     string    `json:"room"`               // room name from the site configuration
	Resident string    `json:"resident,omitempty"` // pseudonymous reference, never a name
	Start    time.Time `json:"start"`
	End      time.Time `json:"end,omitzero"`    // absent while the visit goes on
	Alarm    string    `json:"alarm,omitempty"` // alarm id it answered; absent for a planned visit
	Note     string    `json:"note,omitempty"`  // record kind ("assisted", "false alarm"), no health data
}

// OutboxEPR (kind "epr", v1) records that a note was sent to the EPR system.
// There is deliberately no field for the note's content.
type OutboxEPR struct {
	Visit  string    `json:"visit"`
	System string    `json:"system"` // EPR integration name from the configuration
	SentAt time.Time `json:"sent_at"`
	Staff  string    `json:"staff"`
}

// OutboxHealth (kind "health", v1) is what the gateway last heard from a
// transmitter. Only the latest per transmitter matters: under backlog pressure
// older ones are compacted away.
type OutboxHealth struct {
	Transmitter string    `json:"transmitter"`
	LastSeen    time.Time `json:"last_seen"`
	Battery     *int      `json:"battery,omitempty"`      // percent, absent if unknown
	LinkQuality *int      `json:"link_quality,omitempty"` // 0–255 (Zigbee LQI), absent if unknown
	Online      bool      `json:"online"`
}

// OutboxAudit (kind "audit", v1) is one hash-chained audit entry, exactly as
// stored. At is the very string the hash covers (RFC 3339 with nanoseconds, UTC),
// so the cloud can recompute Hash (AuditEntry.ChainHash).
type OutboxAudit struct {
	Seq     int64  `json:"seq"`
	At      string `json:"at"`
	Actor   string `json:"actor"`   // "staff:<id>", "transmitter:<id>", "system", "technician"
	Action  string `json:"action"`  // "alarm.raised", "staff.erased", ...
	Subject string `json:"subject"` // ids only, e.g. "alarm:a-12"
	Prev    string `json:"prev"`    // hex hash of the previous entry, "" for the first
	Hash    string `json:"hash"`    // hex hash of this entry
}

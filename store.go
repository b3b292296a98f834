package vakt

import (
	"context"
	"time"
)

// EventRecord is an event as stored, linked to the alarm it opened or repeated.
type EventRecord struct {
	Event
	Alarm AlarmID // empty for check-ins
	// Duplicate marks a redelivery recognised by (Source, SourceID).
	Duplicate bool
}

// AuditRecord is what the engine asks to audit; the store assigns Seq and the hash
// chain inside the transaction, and queues the entry for sync.
type AuditRecord struct {
	At      time.Time
	Actor   string
	Action  string
	Subject string
}

// OutboxEntry is a change queued for upload to the cloud. The store assigns Seq in
// the same transaction as the change it describes.
type OutboxEntry struct {
	Seq  int64
	Kind string // "alarm", "visit", "epr", "health", "audit" (OutboxKind...)
	// V is the body's schema version; 0 means the current one (OutboxVersions).
	V    int
	Body []byte // JSON: OutboxAlarm, OutboxVisit, OutboxEPR, OutboxHealth or OutboxAudit
	At   time.Time
	// Origin is the batch's origin, filled in when the entry is read back.
	Origin OutboxOrigin
}

// Session is a phone's login as stored: only the SHA-256 of its bearer token, so a
// copy of the database lets nobody in. Sessions survive a restart, so phones that
// reconnect after a crash or power cut get their open offers without a new login.
type Session struct {
	TokenHash string // hex SHA-256 of the token
	Staff     StaffID
	Expires   time.Time
}

// Batch is every change of one group commit. It is applied in one transaction with
// synchronous=FULL: all of it is durable, or none of it.
type Batch struct {
	Events    []EventRecord
	Alarms    []Alarm // upserts of the whole row
	Directory []Staff // upserts of directory entries
	Staff     []StaffState
	Health    []TransmitterHealth
	Visits    []Visit // upserts
	EPR       []EPRRecord
	Audit     []AuditRecord
	Outbox    []OutboxEntry
	Sessions  []Session // logins to keep
	// Deliveries are outbound messages queued or updated (upserts by ID), committed
	// with the alarm change that asked for them; DeliveriesDone are deleted.
	Deliveries     []Delivery
	DeliveriesDone []string
	Logouts        []string // token hashes of sessions ended
	// SessionsEnded ends every stored login of these staff (their secret changed).
	SessionsEnded []StaffID
	// Removals are directory entries deleted with their live state and logins: the
	// person no longer works here. Their visits, EPR records and alarms keep the id.
	// Like Erasures they are applied before the batch's rows.
	Removals []StaffID
	// Erasures remove a person's personal data (G4); see Erasure.
	Erasures []Erasure
	// OutboxAckedUpTo > 0 records it as the highest acknowledged seq (if higher than
	// the one stored): the cloud holds the entries up to it durably, so they leave
	// the backlog at once; their rows go later (OutboxPurger).
	OutboxAckedUpTo int64
	// DirectoryCursor, when not nil, is stored as the cloud directory feed's cursor
	// together with the directory changes it brought.
	DirectoryCursor *string
	// Origin is stored beside every outbox entry of the batch (the audit entries
	// the store queues included): the boot id and whether the clock was synced.
	Origin OutboxOrigin
	// CompactHealth, when true, deletes every queued health entry that a newer
	// health entry of the same transmitter supersedes (the bounded backlog's first
	// step, docs/sync-protocol.md). Nothing else is ever deleted unacknowledged.
	CompactHealth bool
	// HealthOnly counts the batch's events that have no Events row (a check-in
	// that changed nothing but its transmitter's health, P6: written as a Health
	// row, now or with a later batch), so commit-size counters still count them.
	// The store writes nothing for it.
	HealthOnly int
}

// Erasure removes one person's personal data in the batch's transaction, before
// the batch's own rows are written (those are written as given: a batch must not
// hold rows of the person from before the erasure, and a row after it is a re-add): the directory entry (name, phone, e-mail, roles, zone,
// credential hash), the live state with any position, and the logins are deleted;
// in visits, EPR records and alarms (assignee and offers) the staff id is replaced
// by Pseudonym, so the room and time facts and the alarm history survive without
// the person. Audit entries are not rewritten (that would break the hash chain):
// they hold ids only, which is why staff ids must be opaque. See docs/privacy.md.
type Erasure struct {
	Staff     StaffID
	Pseudonym StaffID
}

// Empty reports whether there is nothing to commit.
func (b *Batch) Empty() bool {
	return len(b.Events) == 0 && len(b.Alarms) == 0 && len(b.Directory) == 0 &&
		len(b.Staff) == 0 && len(b.Health) == 0 && len(b.Visits) == 0 &&
		len(b.EPR) == 0 && len(b.Audit) == 0 && len(b.Outbox) == 0 &&
		len(b.Sessions) == 0 && len(b.Logouts) == 0 && len(b.SessionsEnded) == 0 && len(b.Removals) == 0 &&
		len(b.Deliveries) == 0 && len(b.DeliveriesDone) == 0 &&
		len(b.Erasures) == 0 && b.OutboxAckedUpTo <= 0 && b.DirectoryCursor == nil && !b.CompactHealth
}

// Snapshot is the state the engine resumes from after a start or crash.
type Snapshot struct {
	OpenAlarms []Alarm
	Directory  []Staff
	Staff      []StaffState
	Health     []TransmitterHealth
	OpenVisits []Visit
	// SeenSources holds recent (Source, SourceID) keys so redeliveries are recognised.
	SeenSources map[string]AlarmID
	// SeenOrder lists SeenSources' keys oldest first (by commit order), so the
	// engine forgets the oldest first when its bounded memory of them is full.
	SeenOrder []string
	// NextAlarm is a counter so alarm ids stay unique across restarts: the next
	// alarm gets FormatAlarmID(NextAlarm).
	NextAlarm int64
	// Sessions are the phone logins that have not expired.
	Sessions []Session
	// Deliveries are the outbound messages not yet finished, oldest first.
	Deliveries []Delivery
	// Newest is the newest time the database recorded before this start (the last
	// audit entry, event, raised alarm or health sample; zero when empty): the
	// retention purge's clock never runs ahead of it by more than the monotonic
	// time since (engine/retention.go).
	Newest time.Time
	// OutboxAcked is the highest outbox seq the cloud acknowledged (0: none).
	OutboxAcked int64
}

// Store is the durable state. Exactly one goroutine calls Commit (rule 3: one writer):
// every change to state the engine holds in memory (alarms, directory, staff state
// and positions, visits, sessions, erasures, outbox acknowledgements) is a Batch
// committed by the engine's loop, never a write made beside it.
//
// The position scrub is part of the interface, not an optional extra found by a
// type assertion: a wrapper that embeds a Store (metrics, failpoints) then forwards
// it by construction. As an optional interface it was silently lost behind such a
// wrapper, and no position was ever scrubbed from the files of a running gateway.
type Store interface {
	Commit(ctx context.Context, b *Batch) error
	Load(ctx context.Context) (*Snapshot, error)
	PositionPurger
	RetentionPurger
	OutboxPurger
	Close() error
}

// OutboxPurger deletes outbox entries the cloud acknowledged (Batch.OutboxAckedUpTo
// only records the watermark, so that an acknowledgement costs the writer one small
// write, P5). The engine's loop calls it while nothing else is queued: up to limit
// entries per call, one transaction each; more reports that some remain.
type OutboxPurger interface {
	PurgeAckedOutbox(ctx context.Context, limit int) (deleted int, more bool, err error)
}

// PositionPurger is a store that can remove positions from its file and its
// write-ahead log, not just from the current rows (G1): superseded and expired
// positions must be gone from the disk, too. The engine's loop calls it right after
// a commit whose batch removed a position or erased a person; it changes nothing
// the engine holds in memory (the positions it clears are ones the engine already
// dropped), it scrubs old bytes out of the files.
type PositionPurger interface {
	PurgePositions(ctx context.Context, olderThan time.Time) (int, error)
}

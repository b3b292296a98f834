package vakt

import (
	"context"
	"time"
)

// RetentionPurge asks the store to delete history older than the configured
// retention periods (G5). The engine's loop makes it (rule 3: one writer) with
// cutoffs it has already bounded by the clock rules of R5 (engine/retention.go);
// the store applies them in one transaction and audits what it deleted.
//
// A zero cutoff leaves that kind alone. A row whose own time is before 2020 (made
// while the clock was unsynced, ClockUnsynced) has no known age: it goes only
// together with a later-made row of the same table whose trusted time is before
// the cutoff.
type RetentionPurge struct {
	// Alarms: completed or cancelled alarms last changed before it, with their
	// events. Open alarms, and alarms with an outbound delivery still queued, stay.
	Alarms time.Time
	// Events: events that opened no alarm (check-ins, restores) received before it.
	Events time.Time
	// Visits: visits that ended before it. Visits still going on stay.
	Visits time.Time
	// EPR: EPR-sent records sent before it.
	EPR time.Time
	// Audit: the oldest audit entries made before it, always a prefix of the chain,
	// so what remains still verifies from the recorded anchor.
	Audit time.Time
	// RequireAcked: cloud sync is configured, so only rows whose outbox entries the
	// cloud has acknowledged (no longer in the outbox) may go. False (sync off):
	// the period alone decides, and outbox entries older than every cutoff, which
	// no cloud will ever take, go too.
	RequireAcked bool
	// Limit bounds the rows deleted per table in one purge (0: 10,000), so a first
	// purge of years of history does not hold the write lock for long; the result
	// says when more is left.
	Limit int
	// At is the time of the "retention.purged" audit entry; Origin is stored beside
	// its outbox entry.
	At     time.Time
	Origin OutboxOrigin
}

// RetentionResult counts what a purge deleted.
type RetentionResult struct {
	Alarms, Events, Visits, EPR, Audit, Outbox int64
	// More: a table held more to delete than Limit allowed.
	More bool
	// Backlog: cloud sync is on and the outbox holds more entries than the store
	// checks in one purge, so only events were purged; the rest waits until the
	// cloud has caught up.
	Backlog bool
}

// Total is the number of rows deleted.
func (r RetentionResult) Total() int64 {
	return r.Alarms + r.Events + r.Visits + r.EPR + r.Audit + r.Outbox
}

// RetentionPurger is a store that deletes expired history (G5). The engine's loop
// is its only caller; it deletes only rows the engine no longer holds in memory
// (closed alarms, ended visits, EPR records, audit entries, events).
type RetentionPurger interface {
	PurgeRetention(ctx context.Context, p RetentionPurge) (RetentionResult, error)
}

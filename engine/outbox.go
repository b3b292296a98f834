package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"time"

	vakt "github.com/vakt/vakt"
)

// AcknowledgeOutbox records that the cloud holds every outbox entry up to upTo
// durably (the sync uploader's acknowledgement): one commit stores upTo as the
// acknowledged seq, which takes those entries out of every outbox read at once.
// Their rows are deleted afterwards, a chunk at a time while the loop has nothing
// else to do (purgeOutbox), so an acknowledgement never makes a press wait for a
// thousand-row delete (P5). Acknowledgements queued together commit once, with the
// highest seq; a lower one than already stored changes nothing.
//
// A small acknowledgement (fewer than ackLingerBelow entries past the last one
// stored: a quiet site's few transitions) returns at once and rides with the next
// commit the loop makes anyway, or with one of its own ackLinger later (P6): at
// 5,000 alarms a day each upload's acknowledgement was a commit of its own, the SD
// card's most frequent. Lost in a crash, its entries are sent once more and the
// cloud counts them as repeats (docs/sync-protocol.md); until its commit
// OutboxAckQueued, not the store, says where the next upload starts. A drain's
// acknowledgements commit before this returns, as before.
func (e *Engine) AcknowledgeOutbox(ctx context.Context, upTo int64) error {
	if upTo <= 0 {
		return fmt.Errorf("acknowledge outbox up to %d: the seq must be positive", upTo)
	}
	raise(&e.ackQueued, upTo)
	if e.opt.CheckInLinger > 0 && upTo-e.ackStored.Load() < ackLingerBelow {
		if e.ackArmed.CompareAndSwap(false, true) {
			e.opt.Clock.AfterFunc(ackLinger, func() { _ = e.enqueue(context.Background(), ackOp{}) })
		}
		return nil
	}
	o := ackOp{upTo: upTo, reply: make(chan error, 1)}
	if err := e.enqueue(ctx, o); err != nil {
		return err
	}
	select {
	case err := <-o.reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// OutboxAckQueued is the highest seq passed to AcknowledgeOutbox in this run (0
// before the first), committed or still waiting: the uploader's next batch starts
// after the higher of it and the stored acknowledgement.
func (e *Engine) OutboxAckQueued() int64 { return e.ackQueued.Load() }

// ackLinger bounds how long a small acknowledgement waits for company; with it at
// most two acknowledgement commits a minute reach the card, and a crash resends at
// most this much of the cloud's traffic.
const ackLinger = 30 * time.Second

// ackLingerBelow: an acknowledgement of at least this many new entries (a drain's
// batch, sync's default batch size) commits at once.
const ackLingerBelow = 1000

// ackOp commits the acknowledgements queued so far (upTo, or with none the waiting
// small ones after ackLinger) and answers reply, if any.
type ackOp struct {
	upTo  int64
	reply chan error
}

func (o ackOp) apply(e *Engine, b *vakt.Batch) effect {
	if o.reply == nil {
		e.ackArmed.Store(false)
	}
	e.ackWith(b, o.upTo)
	if o.reply == nil {
		return nil
	}
	return func(err error) { o.reply <- err }
}

// ackWith puts the highest acknowledgement queued (at least upTo) into b, if it
// is above the stored one: every commit carries the waiting small ones along.
func (e *Engine) ackWith(b *vakt.Batch, upTo int64) {
	upTo = max(upTo, e.ackQueued.Load())
	if upTo > e.ackStored.Load() {
		b.OutboxAckedUpTo = max(b.OutboxAckedUpTo, upTo)
	}
}

// acked notes a committed acknowledgement: stored, and its rows due for deletion.
func (e *Engine) acked(b *vakt.Batch) {
	if b.OutboxAckedUpTo > 0 {
		raise(&e.ackStored, b.OutboxAckedUpTo)
		e.purge.due, e.purge.failed = true, false
	}
}

// raise sets v to n if n is higher.
func raise(v *atomic.Int64, n int64) {
	for {
		cur := v.Load()
		if n <= cur || v.CompareAndSwap(cur, n) {
			return
		}
	}
}

// outboxPurge is the loop's deletion of acknowledged outbox rows (loop-owned).
//
// At a quiet site each acknowledgement covers a few entries, and deleting them at
// once was a commit per acknowledgement on the SD card (P6): with quiet > 0 (the
// gateway's 15 minutes), fewer than purgeRowsMin acknowledged rows wait until
// quiet has passed since the purge last caught up, so they go a few hundred at a
// time. A drain's acknowledgements (more rows) are deleted as before.
type outboxPurge struct {
	due      bool // acknowledged rows may remain
	started  bool // the first check after the start ran (a restart may leave some)
	failed   bool // the last chunk failed: wait for the next acknowledgement
	limit    int  // rows per chunk, adapted to purgeChunk
	next     time.Time
	timer    *time.Timer
	quiet    time.Duration // Options.OutboxPurgeQuiet
	purgedTo int64         // the acknowledged seq when the purge last caught up
	caughtUp time.Time     // when it did
}

// purgeChunk is the work one purge transaction aims at: a press arriving during it
// waits about this long (plus the commit's fsync) before its own commit starts.
const purgeChunk = time.Millisecond

// purgePause is how many times a chunk's own duration the loop waits before the
// next: the purge takes at most a fifth of the writer's time, however slow the
// disk (an fsync stalled by other writers makes the pause longer too), so a press
// rarely finds the writer in one. At 1 ms for 256 rows that is still ~50,000 rows/s,
// twice P5's drain rate: a drain's acknowledged rows are gone soon after it.
const purgePause = 4

// Rows per purge transaction: first, least and most. 256 rows of ~250 bytes are
// ~64 pages of 1 KB zeroed by secure_delete. The least is not smaller: a chunk's
// time is mostly its commit's fsync once the disk is busy, and fewer rows would
// only slow the purge, not shorten the chunk (measured: 16-row chunks purged 1,300
// rows/s during a drain).
const (
	purgeRowsFirst = 256
	purgeRowsMin   = 128
	purgeRowsMax   = 1024
)

// ready is ready when a purge chunk is due (acknowledged rows may remain, or the
// start's first check has not run) and its pause has passed; nil, which a select
// never picks, when none is due. The pause is real time, not the injected clock:
// it paces disk work, it decides nothing.
func (p *outboxPurge) ready(acked int64) <-chan time.Time {
	if !(p.due || !p.started) || p.failed {
		return nil
	}
	next := p.next
	if p.started && p.quiet > 0 && acked-p.purgedTo < purgeRowsMin {
		next = later(next, p.caughtUp.Add(p.quiet))
	}
	d := time.Until(next)
	if d <= 0 {
		return readyNowTime
	}
	if p.timer == nil {
		p.timer = time.NewTimer(d)
	} else {
		p.timer.Reset(d)
	}
	return p.timer.C
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// readyNowTime is a closed channel: a select case on it is always ready.
var readyNowTime = func() chan time.Time { c := make(chan time.Time); close(c); return c }()

// stop releases the pause's timer when the loop ends.
func (p *outboxPurge) stop() {
	if p.timer != nil {
		p.timer.Stop()
	}
}

// purgeOutbox deletes one chunk of acknowledged outbox rows, unless anything is
// queued: the loop's select found the purge ready, and maybe a press too, and the
// press goes first. The chunk's size follows the time it took: halved above twice
// purgeChunk, doubled below half of it.
func (e *Engine) purgeOutbox(ctx context.Context) {
	p := &e.purge
	if len(e.in) > 0 {
		return
	}
	p.started = true
	if p.limit == 0 {
		p.limit = purgeRowsFirst
	}
	start := time.Now()
	n, more, err := e.opt.Store.PurgeAckedOutbox(ctx, p.limit)
	took := time.Since(start)
	p.next = start.Add(took * (1 + purgePause))
	if err != nil {
		// Retried after the next acknowledgement or restart; nothing depends on it
		// but the file's size and the rows' bytes (docs/privacy.md).
		e.log.Error("outbox purge failed: acknowledged entries stay in the file until the next acknowledgement",
			"err", err)
		p.failed, p.due = true, false
		return
	}
	p.due = more
	if !more {
		p.purgedTo, p.caughtUp = e.ackStored.Load(), time.Now()
	}
	switch {
	case n == p.limit && took > 2*purgeChunk:
		p.limit = max(p.limit/2, purgeRowsMin)
	case n == p.limit && took < purgeChunk/2:
		p.limit = min(p.limit*2, purgeRowsMax)
	}
}

// CompactOutboxHealth deletes every queued health sample that a newer sample of the
// same transmitter supersedes, in one commit: the bounded backlog's first step
// while the cloud is away (docs/sync-protocol.md). Nothing else leaves the outbox
// unacknowledged.
func (e *Engine) CompactOutboxHealth(ctx context.Context) error {
	_, err := do(ctx, e, func(e *Engine, b *vakt.Batch, _ time.Time) (struct{}, error) {
		b.CompactHealth = true
		return struct{}{}, nil
	})
	return err
}

// The outbox bodies are the sync contract's typed schemas, defined once in the
// root package (vakt.OutboxAlarm, ...): ids and facts only, never names or positions.

func alarmEntry(a *vakt.Alarm, action string, now time.Time) vakt.OutboxEntry {
	return vakt.OutboxEntry{Kind: vakt.OutboxKindAlarm, At: now, Body: mustJSON(vakt.OutboxAlarm{
		ID: string(a.ID), Transition: action, Transmitter: string(a.Transmitter), Kind: string(a.Kind),
		Priority: int(a.Priority), State: string(a.State), Count: a.Count, Tier: a.Tier,
		Assignee: string(a.Assignee), RaisedAt: a.RaisedAt, At: now, Forwarded: a.Forwarded, WalkTest: a.WalkTest,
	})}
}

func visitEntry(v vakt.Visit, now time.Time) vakt.OutboxEntry {
	return vakt.OutboxEntry{Kind: vakt.OutboxKindVisit, At: now, Body: mustJSON(vakt.OutboxVisit{
		ID: string(v.ID), Staff: string(v.Staff), Room: v.Room, Resident: v.Resident,
		Start: v.Start, End: v.End, Alarm: string(v.Alarm), Note: v.Note,
	})}
}

func eprEntry(r vakt.EPRRecord, now time.Time) vakt.OutboxEntry {
	return vakt.OutboxEntry{Kind: vakt.OutboxKindEPR, At: now, Body: mustJSON(vakt.OutboxEPR{
		Visit: string(r.Visit), System: r.System, SentAt: r.SentAt, Staff: string(r.Staff),
	})}
}

func healthEntry(h vakt.TransmitterHealth, now time.Time) vakt.OutboxEntry {
	return vakt.OutboxEntry{Kind: vakt.OutboxKindHealth, At: now, Body: mustJSON(vakt.OutboxHealth{
		Transmitter: string(h.Transmitter), LastSeen: h.LastSeen, Battery: h.Battery,
		LinkQuality: h.LinkQuality, Online: h.Online,
	})}
}

// healthSampleEvery is how often the cloud gets a sample of a transmitter whose
// online flag did not change: battery and link quality move slowly, and at 500
// transmitters a sample at every health write was 48,000 outbox rows a day, each
// written, uploaded and deleted on the SD card (P6).
const healthSampleEvery = time.Hour

// queueHealth adds a health outbox entry for a health row the batch writes when
// the cloud has none of the transmitter from this run yet, its online flag
// changed since the last one, or the last one is healthSampleEvery old: the cloud
// learns of a transmitter going offline or coming back at once, and of battery
// and link quality within the hour (health.go writes the rows).
func (e *Engine) queueHealth(b *vakt.Batch, now time.Time) {
	if len(b.Health) == 0 {
		return
	}
	if e.healthOut == nil {
		e.healthOut = map[vakt.TransmitterID]sampled{}
	}
	for _, h := range b.Health {
		last, ok := e.healthOut[h.Transmitter]
		if ok && last.online == h.Online && now.Sub(last.at) < healthSampleEvery {
			continue
		}
		e.healthOut[h.Transmitter] = sampled{at: now, online: h.Online}
		b.Outbox = append(b.Outbox, healthEntry(h, now))
	}
}

// sampled is the last health sample queued for the cloud of a transmitter.
type sampled struct {
	at     time.Time
	online bool
}

// origin stamps a batch: this run's boot id, whether the wall clock is synced,
// and the monotonic time since the engine started.
func (e *Engine) origin() vakt.OutboxOrigin {
	synced := false
	if e.opt.ClockSynced != nil {
		synced = e.opt.ClockSynced()
	}
	return vakt.OutboxOrigin{Boot: e.opt.Boot, ClockSynced: synced, SinceBoot: time.Since(e.started)}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only our own plain structs are marshalled
	}
	return b
}

package engine

import (
	"cmp"
	"context"
	"slices"
	"time"

	vakt "github.com/vakt/vakt"
)

// Run is the loop. It returns when ctx ends or Close is called.
func (e *Engine) Run(ctx context.Context) error {
	defer close(e.stopped)
	defer e.stopOutbound()
	defer e.stopRetention()
	defer e.purge.stop()
	defer e.finishWrites(ctx) // first of the defers: the store is still open
	// Apply the start-up merge (directory from config, initial demo state), resend
	// undelivered outbound messages and fire any deadline that passed while the
	// gateway was down.
	e.process(ctx, []op{startOp{}, outboundStartOp{}, tickOp{}})
	e.armRetention(retentionFirst)
	batch := make([]op, 0, e.opt.MaxBatch)
	for {
		if len(e.backlog) == 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-e.done:
				return nil
			case o := <-e.in:
				e.queue(o)
			case <-e.purge.ready(e.ackStored.Load()):
				e.purgeOutbox(ctx) // nothing queued: delete a chunk of acknowledged rows
				continue
			}
		}
		// Group commit: take whatever else is already queued, up to MaxBatch, the
		// most urgent new alarms first.
		e.fill()
		batch = e.take(batch[:0])
		batch = e.linger(ctx, batch)
		if ctx.Err() != nil {
			// Stopping (a service stop ended the linger): what was taken is still
			// committed, so a waiting check-in's or acknowledgement's work is kept.
			e.process(context.WithoutCancel(ctx), batch)
			return ctx.Err()
		}
		e.process(ctx, batch)
	}
}

// lookahead is how many batches' worth of queued work the loop reads ahead when it
// is overloaded, so that an emergency queued behind a storm of calls is taken first.
const lookahead = 8

// queued is one op in the loop's backlog with the urgency it may be taken ahead by
// (0: it keeps its place).
type queued struct {
	o    op
	rank vakt.Priority
}

// queue appends o to the backlog.
func (e *Engine) queue(o op) {
	q := queued{o: o, rank: e.rank(o)}
	if q.rank != 0 {
		e.urgent++
	}
	e.backlog = append(e.backlog, q)
	e.backlogLen.Store(int64(len(e.backlog)))
}

// fill moves what is queued on the channel into the backlog, up to lookahead batches.
func (e *Engine) fill() {
	for len(e.backlog) < e.opt.MaxBatch*lookahead {
		select {
		case o := <-e.in:
			e.queue(o)
		default:
			return
		}
	}
}

// rank is the urgency by which o may be taken ahead of what was queued before it: a
// press that raises an emergency or high-priority alarm (by the source's priority,
// else its policy's, else its kind's). Anything else keeps its place.
func (e *Engine) rank(o op) vakt.Priority {
	in, ok := o.(ingestOp)
	if !ok || !in.ev.Kind.Raises() || e.opt.WalkTest {
		return 0
	}
	p := in.ev.Priority
	if p == 0 {
		p = e.opt.Router.PolicyAt(in.ev.Kind, e.st.location(in.ev.Transmitter), e.opt.Clock.Now()).Priority
	}
	if p == 0 {
		p = in.ev.Kind.DefaultPriority()
	}
	if p >= vakt.PriorityNormal {
		return 0
	}
	return p
}

// take moves the next batch from the backlog into batch: urgent presses first (most
// urgent first, then in arrival order), then the rest in arrival order, up to
// MaxBatch. Routing decisions, offers and acknowledgements then follow that order,
// so an emergency is never routed behind hundreds of calls (routing.CompareUrgency).
// A press goes ahead only when nothing queued before it concerns its transmitter
// and no alarm of its transmitter is open: it then opens a new alarm whatever runs
// before it, so taking it first changes when, not what.
func (e *Engine) take(batch []op) []op {
	defer func() { e.backlogLen.Store(int64(len(e.backlog))) }()
	if e.urgent == 0 {
		n := min(len(e.backlog), e.opt.MaxBatch)
		for _, q := range e.backlog[:n] {
			batch = append(batch, q.o)
		}
		left := copy(e.backlog, e.backlog[n:])
		clear(e.backlog[left:])
		e.backlog = e.backlog[:left]
		return batch
	}
	seen := map[vakt.TransmitterID]bool{}
	var first []int
	for i, q := range e.backlog {
		in, ok := q.o.(ingestOp)
		if !ok {
			continue
		}
		tx := in.ev.Transmitter
		if q.rank != 0 && !seen[tx] {
			if _, open := e.st.open[keyFor(tx, in.ev.Kind)]; !open {
				first = append(first, i)
			}
		}
		seen[tx] = true
	}
	slices.SortStableFunc(first, func(a, b int) int { return cmp.Compare(e.backlog[a].rank, e.backlog[b].rank) })
	first = first[:min(len(first), e.opt.MaxBatch)]
	taken := make(map[int]bool, len(first))
	for _, i := range first {
		batch = append(batch, e.backlog[i].o)
		taken[i] = true
	}
	rest := e.backlog[:0]
	for i, q := range e.backlog {
		switch {
		case taken[i]:
			e.urgent--
		case len(batch) < e.opt.MaxBatch:
			batch = append(batch, q.o)
			if q.rank != 0 {
				e.urgent--
			}
		default:
			rest = append(rest, q)
		}
	}
	clear(e.backlog[len(rest):])
	e.backlog = rest
	return batch
}

// linger holds a batch of nothing but ops that may wait for company (lingerFor), so
// a quiet site's steady trickle of supervision messages and phones' delivery
// confirmations share commits instead of paying one fsync'd transaction each — the
// SD card's wear (P6). Each op waits at most its own lingerFor from when the loop
// took it: the batch commits at the earliest of those deadlines, or at once when
// anything else arrives (a press, a phone's accept, a timer, a query), which is
// applied after the waiting ops and committed with them. So an urgent op is never
// held back, and a waiting op is always committed no later than, and in the same
// transaction as, anything after it that could depend on it. Every op is still
// acknowledged only after its commit, just a little later.
func (e *Engine) linger(ctx context.Context, batch []op) []op {
	wait := time.Duration(-1) // the shortest lingerFor in the batch
	for _, o := range batch {
		d := e.lingerFor(o)
		if d == 0 {
			return batch
		}
		if d == indifferent {
			continue
		}
		if wait < 0 || d < wait {
			wait = d
		}
	}
	if wait <= 0 {
		return batch
	}
	now := e.opt.Clock.Now()
	deadline := now.Add(wait)
	expired := make(chan struct{})
	timers := []vakt.Timer{e.opt.Clock.AfterFunc(wait, func() { close(expired) })}
	defer func() {
		for _, t := range timers {
			t.Stop()
		}
	}()
	for len(batch) < e.opt.MaxBatch {
		select {
		case o := <-e.in:
			batch = append(batch, o)
			d := e.lingerFor(o)
			if d == 0 {
				return batch
			}
			if d == indifferent {
				continue
			}
			if at := e.opt.Clock.Now().Add(d); at.Before(deadline) {
				// This op may wait less than the batch so far: end sooner. (The
				// earlier timer is left to run out unwatched; at most one such per
				// batch, as only a confirmation after check-ins shortens the wait.)
				deadline = at
				sooner := make(chan struct{})
				expired = sooner
				timers = append(timers, e.opt.Clock.AfterFunc(d, func() { close(sooner) }))
			}
		case <-expired:
			return batch
		case <-ctx.Done():
			return batch
		case <-e.done:
			return batch
		}
	}
	return batch
}

// deliveredLinger bounds how long a phone's delivery confirmation waits for company
// (at most CheckInLinger, too). It is well below any sensible routing.offer_confirm,
// so the status page shows the offer as delivered soon, and a confirmation
// never waits past the offer's confirm deadline anyway: that deadline's timer
// ends the wait, after the confirmation, which is applied first.
const deliveredLinger = 2 * time.Second

// indifferent is lingerFor's answer for an op that writes nothing of its own: it
// neither waits for company (a batch of nothing else is applied at once) nor ends
// the wait of a batch it joins.
const indifferent = time.Duration(-1)

// lingerFor is how long o may wait for company before its commit, 0 when it must be
// committed at once, indifferent when it has nothing to commit. The rule: only an
// op that answers nobody, and whose loss in a crash would be harmless, may wait.
//   - A check-in that changes nothing but health (no open "offline" alarm waits to
//     be closed by it) and whose transmitter has no health row on disk yet, or comes
//     back online: its source is acknowledged after the commit as ever; lost in a
//     crash before it, the source sends it again. Any other such check-in writes
//     nothing now (health.go): indifferent.
//   - A phone's "delivered" for a pending offer: no answer goes to the phone
//     (Engine.Delivered returns once it is queued); lost in a crash, the offer
//     looks unconfirmed and is offered onwards after routing.offer_confirm, as if
//     the phone had not rung — a repeat, never a missed alarm.
//
// Everything else never waits: a press, a reset, a phone's accept, reject,
// presence or complete, anything a person sees an answer to, timers and queries.
func (e *Engine) lingerFor(o op) time.Duration {
	if e.opt.CheckInLinger <= 0 {
		return 0
	}
	switch o := o.(type) {
	case ingestOp:
		if o.ev.Kind != vakt.EventCheckIn {
			return 0
		}
		if _, offline := e.st.open[keyFor(o.ev.Transmitter, vakt.EventOffline)]; offline {
			return 0
		}
		if !e.healthAtOnce(o.ev.Transmitter, true) {
			return indifferent
		}
		return e.opt.CheckInLinger
	case alarmCmd:
		if o.verb != verbDelivered {
			return 0
		}
		return min(e.opt.CheckInLinger, deliveredLinger)
	}
	return 0
}

// process applies ops, commits once, then runs their effects.
func (e *Engine) process(ctx context.Context, ops []op) {
	b := &vakt.Batch{}
	e.rows.reset()
	effects := make([]effect, 0, len(ops))
	for _, o := range ops {
		fx := o.apply(e, b)
		effects = append(effects, e.pending...)
		e.pending = e.pending[:0]
		if fx != nil {
			effects = append(effects, fx)
		}
	}
	var err error
	if !b.Empty() {
		e.ackWith(b, 0) // a waiting small acknowledgement rides along (AcknowledgeOutbox)
		e.queueHealth(b, e.opt.Clock.Now())
		b.Origin = e.origin()
		start := time.Now()
		err = e.commit(ctx, b)
		e.noteCommit(len(b.Events)+b.HealthOnly, time.Since(start), err)
	} else if b.HealthOnly > 0 {
		e.noteUncommitted(b.HealthOnly) // check-ins with nothing to write now (health.go)
	}
	if err != nil {
		e.log.Error("commit failed: serving from memory", "err", err, "events", len(b.Events))
	} else {
		e.acked(b)
		e.scrubPositions(e.opt.Clock.Now())
	}
	for _, fx := range effects {
		fx(err)
	}
	if b.Empty() {
		// nothing was written: says nothing about the disk
	} else if err != nil && !e.degraded {
		e.degraded = true
		e.storageEvent(ctx, vakt.EventOffline)
	} else if err == nil && e.degraded {
		e.degraded = false
		e.storageEvent(ctx, vakt.EventCheckIn)
	}
	e.armTimer()
	e.published()
}

// StorageTransmitter is the pseudo-transmitter of the gateway's own database: when
// commits fail (disk full, card worn out) an "offline" technical alarm is raised on
// it and routed like any technical alarm — phones are reached from memory meanwhile
// (R6) — and the first commit that works again closes it.
const StorageTransmitter vakt.TransmitterID = "gateway-storage"

func (e *Engine) storageEvent(ctx context.Context, kind vakt.EventKind) {
	b := &vakt.Batch{}
	e.rows.reset()
	ev := vakt.Event{Transmitter: StorageTransmitter, Kind: kind, Source: "storage", Text: "database not writable"}
	fx := e.ingest(b, ev)
	e.queueHealth(b, e.opt.Clock.Now())
	b.Origin = e.origin()
	err := e.commit(ctx, b)
	if fx != nil {
		fx(err)
	}
	if kind == vakt.EventCheckIn {
		e.log.Info("database writable again")
	}
}

// maxUnwritten bounds the records kept from failed commits (a disk full for hours).
const maxUnwritten = 200_000

// commit commits b together with the records failed commits left (R6): events,
// alarm rows, health, visits, EPR records, audit and outbox entries made while the
// disk was full would otherwise never be written — the first successful commit
// after it would hold only what changed since, so the alarm's "raised" transition
// would be missing from the audit trail and the cloud. Older rows go first, so the
// newer upserts of the same alarm win. Sources were told the failed commit failed
// and may send again: a repeat is folded into the alarm as usual.
func (e *Engine) commit(ctx context.Context, b *vakt.Batch) error {
	if u := e.unwritten; u != nil {
		b.Events = append(u.Events, b.Events...)
		b.Alarms = append(u.Alarms, b.Alarms...)
		b.Health = append(u.Health, b.Health...)
		b.Visits = append(u.Visits, b.Visits...)
		b.EPR = append(u.EPR, b.EPR...)
		b.Audit = append(u.Audit, b.Audit...)
		b.Outbox = append(u.Outbox, b.Outbox...)
	}
	err := e.opt.Store.Commit(ctx, b)
	if err == nil {
		e.unwritten = nil
		return nil
	}
	u := &vakt.Batch{Events: b.Events, Alarms: b.Alarms, Health: b.Health, Visits: b.Visits,
		EPR: b.EPR, Audit: b.Audit, Outbox: b.Outbox}
	if n := len(u.Events) + len(u.Alarms) + len(u.Health) + len(u.Visits) + len(u.EPR) + len(u.Audit) + len(u.Outbox); n > maxUnwritten {
		e.log.Error("records of failed commits dropped: too many kept in memory", "records", n)
		u = nil
	}
	e.unwritten = u
	return err
}

// submit queues o without blocking; ErrBusy when the queue is full.
func (e *Engine) submit(o op) error {
	select {
	case <-e.done:
		return vakt.ErrClosed
	default:
	}
	select {
	case e.in <- o:
		return nil
	default:
		return vakt.ErrBusy
	}
}

// call queues o and waits for its reply (commands from phones and the CLI).
func call[T any](ctx context.Context, e *Engine, mk func(reply chan<- result[T]) op) (T, error) {
	reply := make(chan result[T], 1)
	var zero T
	select {
	case e.in <- mk(reply):
	case <-ctx.Done():
		return zero, ctx.Err()
	case <-e.done:
		return zero, vakt.ErrClosed
	}
	select {
	case r := <-reply:
		return r.v, r.err
	case <-ctx.Done():
		return zero, ctx.Err()
	case <-e.stopped:
		return zero, vakt.ErrClosed
	}
}

type result[T any] struct {
	v   T
	err error
}

// armTimer makes sure one wake-up is pending for the earliest deadline.
func (e *Engine) armTimer() {
	next := e.st.nextDeadline()
	if next.IsZero() {
		if e.timer != nil {
			e.timer.Stop()
			e.timer = nil
		}
		e.timerAt = time.Time{}
		return
	}
	if e.timer != nil && e.timerAt.Equal(next) {
		return
	}
	if e.timer != nil {
		e.timer.Stop()
	}
	d := next.Sub(e.opt.Clock.Now())
	if d < 0 {
		d = 0
	}
	e.timerAt = next
	e.timer = e.opt.Clock.AfterFunc(d, func() {
		select {
		case e.in <- tickOp{}:
		case <-e.done:
		}
	})
}

// Package engine runs the alarm path: it takes events from drivers and commands from
// phones, applies them to the in-memory state, commits every resulting change through
// the store in one transaction per batch (group commit), and only then acknowledges
// sources, answers phones, pushes notices and tells observers. It is the place where a
// reader follows an alarm from start to end.
//
// One goroutine (the loop) owns all state and is the only caller of Store.Commit, so
// there are no locks on the hot path: rule 3 of the architecture, "one writer".
// Decisions come from the pure routing package; time comes from the injected clock.
package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	vakt "github.com/vakt/vakt"
	"github.com/vakt/vakt/routing"
)

// Options configures an Engine.
type Options struct {
	Store     vakt.Store
	Router    *routing.Router
	Notifier  vakt.Notifier
	Observers []vakt.Observer
	// Pagers are the paging links by name, for "pager" tiers.
	Pagers map[string]vakt.Pager
	Clock  vakt.Clock
	Logger *slog.Logger

	// Transmitters is the registry; events from unknown ids still raise alarms.
	Transmitters []vakt.Transmitter
	// Directory is the local staff directory (config), merged over the stored one.
	Directory []vakt.Staff
	// InitialStaff is applied to staff with no stored state (demo: on duty, positions).
	InitialStaff []vakt.StaffState
	// PinnedPositions are demo positions that never expire (demo mode only).
	PinnedPositions map[vakt.StaffID]vakt.Position

	// NearestRouting and PositionTTL are the privacy switches (G1).
	NearestRouting bool
	PositionTTL    time.Duration
	// WalkTest records presses and alarms nobody.
	WalkTest bool

	// QueueSize bounds the inbound queue (events + commands); MaxBatch bounds one
	// group commit.
	QueueSize int
	MaxBatch  int
	// CheckInLinger is how long a batch of nothing but check-ins may wait for more
	// before it commits (0: never waits). See linger.
	CheckInLinger time.Duration
}

// Engine is the running alarm path.
type Engine struct {
	opt  Options
	log  *slog.Logger
	in   chan op
	done chan struct{}

	closeOnce sync.Once
	stopped   chan struct{}

	st       *state         // owned by the loop goroutine
	sessions []vakt.Session // phone logins found at start (read-only)
	rows     rows           // this commit's coalesced row upserts (loop-owned)

	// timer is the one pending wake-up for the earliest deadline (loop-owned).
	timer    vakt.Timer
	timerAt  time.Time
	degraded bool // last commit failed (R6)
	// pending holds effects an op's apply queued beside its own (dropPerson's
	// notices); process runs them after the commit, before the op's reply.
	pending []effect
	// lastScrubbed is whether the last file scrub succeeded (Erasure.Scrubbed).
	lastScrubbed atomic.Bool

	statsMu sync.Mutex
	stats   Stats
}

// Stats are counters for the status page and metrics.
type Stats struct {
	Events, Duplicates, Commits, CommitErrors, Batches int64
	LastCommit                                         time.Duration
	OpenAlarms                                         int
	Degraded                                           bool
}

// op is one unit of work for the loop. apply mutates state and appends rows to the
// batch; the returned effects run after the commit with its result.
type op interface {
	apply(e *Engine, b *vakt.Batch) effect
}

// effect runs after the batch committed (err == nil) or failed.
type effect func(err error)

// New loads the stored state and returns an engine ready to Run.
func New(ctx context.Context, opt Options) (*Engine, error) {
	if opt.Store == nil || opt.Router == nil || opt.Notifier == nil {
		return nil, errors.New("engine: store, router and notifier are required")
	}
	if opt.Clock == nil {
		opt.Clock = vakt.SystemClock{}
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	if opt.QueueSize <= 0 {
		opt.QueueSize = 65536
	}
	if opt.MaxBatch <= 0 {
		opt.MaxBatch = 512
	}
	snap, err := opt.Store.Load(ctx)
	if err != nil {
		return nil, fmt.Errorf("load state: %w", err)
	}
	e := &Engine{
		opt:     opt,
		log:     opt.Logger,
		in:      make(chan op, opt.QueueSize),
		done:    make(chan struct{}),
		stopped: make(chan struct{}),
	}
	e.st = newState(opt, snap)
	e.sessions = snap.Sessions
	return e, nil
}

// Run is the loop. It returns when ctx ends or Close is called.
func (e *Engine) Run(ctx context.Context) error {
	defer close(e.stopped)
	// Apply the start-up merge (directory from config, initial demo state) and fire
	// any deadline that passed while the gateway was down.
	e.process(ctx, []op{startOp{}, tickOp{}})
	batch := make([]op, 0, e.opt.MaxBatch)
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-e.done:
			return nil
		case o := <-e.in:
			batch = append(batch[:0], o)
		}
		// Group commit: take whatever else is already queued, up to MaxBatch.
	drain:
		for len(batch) < e.opt.MaxBatch {
			select {
			case o := <-e.in:
				batch = append(batch, o)
			default:
				break drain
			}
		}
		batch = e.linger(ctx, batch)
		e.process(ctx, batch)
	}
}

// linger holds a batch of nothing but plain check-ins for up to CheckInLinger, so
// a quiet site's steady trickle of supervision messages shares commits instead of
// paying one fsync'd transaction each — the SD card's wear (P6). A check-in is still
// acknowledged only after its commit, just a little later. Anything else that
// arrives (a press, a phone's answer, a timer) ends the wait at once.
func (e *Engine) linger(ctx context.Context, batch []op) []op {
	if e.opt.CheckInLinger <= 0 || !e.allQuiet(batch) {
		return batch
	}
	expired := make(chan struct{})
	t := e.opt.Clock.AfterFunc(e.opt.CheckInLinger, func() { close(expired) })
	defer t.Stop()
	for len(batch) < e.opt.MaxBatch {
		select {
		case o := <-e.in:
			batch = append(batch, o)
			if !e.quiet(o) {
				return batch
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

func (e *Engine) allQuiet(batch []op) bool {
	for _, o := range batch {
		if !e.quiet(o) {
			return false
		}
	}
	return true
}

// quiet reports whether o is a check-in that changes nothing but health: no open
// "offline" alarm waits to be closed by it.
func (e *Engine) quiet(o op) bool {
	in, ok := o.(ingestOp)
	if !ok || in.ev.Kind != vakt.EventCheckIn {
		return false
	}
	_, offline := e.st.open[keyFor(in.ev.Transmitter, vakt.EventOffline)]
	return !offline
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
		start := time.Now()
		err = e.opt.Store.Commit(ctx, b)
		e.noteCommit(len(b.Events), time.Since(start), err)
	}
	if err != nil {
		e.log.Error("commit failed: serving from memory", "err", err, "events", len(b.Events))
	} else {
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
	err := e.opt.Store.Commit(ctx, b)
	if fx != nil {
		fx(err)
	}
	if kind == vakt.EventCheckIn {
		e.log.Info("database writable again")
	}
}

func (e *Engine) noteCommit(events int, d time.Duration, err error) {
	e.statsMu.Lock()
	defer e.statsMu.Unlock()
	e.stats.Batches++
	e.stats.Events += int64(events)
	e.stats.LastCommit = d
	if err != nil {
		e.stats.CommitErrors++
		e.stats.Degraded = true
	} else {
		e.stats.Commits++
		e.stats.Degraded = false
	}
}

// Stats returns a copy of the counters.
func (e *Engine) Stats() Stats {
	e.statsMu.Lock()
	defer e.statsMu.Unlock()
	return e.stats
}

// Close stops the loop and waits for it.
func (e *Engine) Close() error {
	e.closeOnce.Do(func() { close(e.done) })
	<-e.stopped
	if e.timer != nil {
		e.timer.Stop()
	}
	return nil
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

// Package engine runs the alarm path: it takes events from drivers and commands from
// phones, applies them to the in-memory state, commits every resulting change through
// the store in one transaction per batch (group commit), and only then acknowledges
// sources, answers phones, pushes notices and tells observers. It is the place where a
// reader follows an alarm from start to end.
//
// One goroutine (the loop) owns all state and is the only caller of Store.Commit, so
// there are no locks on the hot path: rule 3 of the architecture, "one writer".
// Decisions come from the pure routing package; time comes from the injected clock.
//
// The files follow the path an alarm takes: loop.go (the loop and its group
// commit), ingest.go (an event becomes an alarm), tick.go (timers, supervision,
// position expiry and the file scrub), commands.go (what phones and the CLI ask),
// query.go (what they read), record.go (one transition into the batch, then the
// notices), outbox.go (what the cloud gets, and its acknowledgement), and
// directory.go (the people: config at start, the cloud's directory, erasure).
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
	Store    vakt.Store
	Router   *routing.Router
	Notifier vakt.Notifier
	// Presence (the phone hub): staff without a connected phone rank after the
	// connected ones. Nil: everyone counts as connected.
	Presence  vakt.Presence
	Observers []vakt.Observer
	// Pagers are the paging links by name, for "pager" tiers.
	Pagers map[string]vakt.Pager
	// Outbound are the delivery targets of the durable outbound queue by
	// Delivery.Target ("arc", "pager:<name>"); a pager named here is paged
	// through the queue instead of Pagers. See outbound.go.
	Outbound map[string]vakt.Outbound
	// ARCZones maps rooms whose name is not a 1-3 digit number to DC-09 zones.
	ARCZones map[string]int
	Clock    vakt.Clock
	Logger   *slog.Logger

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
	// Queue is an inbound queue made ahead by NewQueue; QueueSize is then ignored.
	// Zero: New makes one of QueueSize.
	Queue Queue
	// CheckInLinger is how long a batch of nothing but check-ins may wait for more
	// before it commits (0: never waits). See linger.
	CheckInLinger time.Duration
	// OutboxPurgeQuiet is how long acknowledged outbox rows may wait to be
	// deleted while fewer than purgeRowsMin wait (0: deleted once the loop is
	// idle). See outboxPurge.
	OutboxPurgeQuiet time.Duration

	// Boot identifies this process run in every outbox entry (random per start;
	// the gateway makes it). ClockSynced reports whether the wall clock is
	// synchronised now; nil means never (entries say clock_synced false).
	Boot        string
	ClockSynced func() bool

	// Retention is the history purge (G5, retention.go); zero: nothing is purged.
	Retention Retention
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

	// backlog is what the loop read from in and has not processed yet, urgent how
	// many of it may go ahead (loop.go, loop-owned); backlogLen its length for
	// QueueDepth.
	backlog    []queued
	urgent     int
	backlogLen atomic.Int64

	// timer is the one pending wake-up for the earliest deadline (loop-owned).
	timer    vakt.Timer
	timerAt  time.Time
	degraded bool // last commit failed (R6)
	// unwritten holds the records of failed commits, written with the next one (R6).
	unwritten *vakt.Batch
	// pending holds effects an op's apply queued beside its own (dropPerson's
	// notices); process runs them after the commit, before the op's reply.
	pending []effect
	// lastScrubbed is whether the last file scrub succeeded (Erasure.Scrubbed).
	lastScrubbed atomic.Bool

	// started is when the engine was made (monotonic: since_boot_ms).
	started time.Time

	hw        healthWrites                   // what health the disk holds and what waits (health.go, loop-owned)
	healthOut map[vakt.TransmitterID]sampled // the cloud's last health sample per transmitter (queueHealth, loop-owned)

	// ackQueued is the highest outbox acknowledgement queued, ackStored the highest
	// committed in this run (AcknowledgeOutbox).
	ackQueued, ackStored atomic.Int64
	ackArmed             atomic.Bool // a commit of the waiting ones is due ackLinger after the first

	statsMu sync.Mutex
	stats   Stats

	view viewState // the published View (view.go)

	out outboundState // the outbound queue (outbound.go, loop-owned)

	ret retentionState // the history purge (retention.go, loop-owned)

	purge outboxPurge // deleting acknowledged outbox rows while idle (outbox.go, loop-owned)
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

// DefaultQueueSize is the inbound queue's length when Options.QueueSize is zero.
const DefaultQueueSize = 65536

// Queue is the engine's inbound queue, for Options.Queue.
type Queue struct{ ch chan op }

// NewQueue makes an inbound queue of size ops (0: DefaultQueueSize), 1 MB at the
// default. A process makes it first, before its start-up garbage (P4, idle): the
// runtime zeroes memory it reuses, so a queue made later, on pages the start-up
// used and freed, was resident whole (1 MB in 2 of 6 starts of the load site)
// where one made on fresh pages holds only what traffic has touched.
func NewQueue(size int) Queue {
	if size <= 0 {
		size = DefaultQueueSize
	}
	return Queue{ch: make(chan op, size)}
}

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
		opt.QueueSize = DefaultQueueSize
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
		in:      opt.Queue.ch,
		done:    make(chan struct{}),
		stopped: make(chan struct{}),
		started: time.Now(),
	}
	if e.in == nil {
		e.in = NewQueue(opt.QueueSize).ch
	}
	e.opt.QueueSize = cap(e.in)
	e.st = newState(opt, snap)
	e.sessions = snap.Sessions
	e.out.init(snap.Deliveries)
	e.initRetention(snap)
	e.initHealthWrites(snap)
	e.purge.quiet = opt.OutboxPurgeQuiet
	e.purge.purgedTo = snap.OutboxAcked
	e.ackStored.Store(snap.OutboxAcked)
	return e, nil
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

// noteUncommitted counts events accepted by a batch that had nothing to commit.
func (e *Engine) noteUncommitted(events int) {
	e.statsMu.Lock()
	defer e.statsMu.Unlock()
	e.stats.Events += int64(events)
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

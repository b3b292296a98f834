package sync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	stdsync "sync"
	"time"

	vakt "github.com/vakt/vakt"
	"github.com/vakt/vakt/sync/wire"
)

// Entry is one outbox entry as the gateway stored it. Body is the kind's wire body
// (wire.Alarm, wire.Visit, ...) as JSON.
type Entry struct {
	Seq  int64
	Kind string
	// V is the body's schema version; 0 means the current one (wire.Versions).
	V           int
	At          time.Time
	ClockSynced bool
	Boot        string
	SinceBoot   time.Duration
	Body        []byte
}

// OutboxStats is the backlog as the outbox counts it.
type OutboxStats struct {
	Entries int64
	Bytes   int64
	// Oldest is the At of the oldest entry (zero when empty); OldestSynced whether
	// the clock was synced when it was made (if not, its age is unknown).
	Oldest       time.Time
	OldestSynced bool
}

// Outbox is the gateway's outbox as the uploader sees it.
type Outbox interface {
	// Pending returns up to limit entries with Seq > afterSeq in Seq order. It is a
	// read (the store's read pool), never blocking the writer.
	Pending(ctx context.Context, afterSeq int64, limit int) ([]Entry, error)
	// Acknowledge records upTo as acknowledged, in one transaction through the
	// engine's write path: from then on Pending never returns an entry with
	// Seq <= upTo (the gateway deletes their rows afterwards, while idle).
	Acknowledge(ctx context.Context, upTo int64) error
	// Acked is the highest seq ever passed to Acknowledge (0 before the first),
	// persisted: it is the Vakt-After-Seq of the next batch, so a cloud that lost
	// what it had acknowledged is noticed (409 gap) instead of silently skipped.
	Acked(ctx context.Context) (int64, error)
	Stats(ctx context.Context) (OutboxStats, error)
}

// Options tune the Uploader. Zero values take the defaults in brackets.
type Options struct {
	BatchSize     int           // entries per batch [1000]
	MaxBatchBytes int           // uncompressed body bytes per batch [4 MiB]
	Idle          time.Duration // poll interval while the outbox is empty [5s]; Kick wakes it
	Backoff       Backoff       // [Base 1s, Max 5m, math/rand]
	// FatalRetry is how long a fatal condition (token, certificate, conflict) waits
	// before the next try [15m]; Retry wakes it at once (after a config reload).
	FatalRetry time.Duration
	Clock      vakt.Clock // [vakt.SystemClock]
	Log        *slog.Logger
	// OnFatal is called once when a fatal condition starts (and again if its reason
	// changes): the gateway raises a technical alarm naming err.Reason. OnRecovered
	// is called when uploads succeed again after one. Neither may block.
	OnFatal     func(err *Error)
	OnRecovered func()
	// OnWait, for tests and metrics, is told every backoff or fatal wait chosen.
	OnWait func(d time.Duration, err *Error)
}

// Uploader drains an Outbox to the cloud in sequence order. Entries leave the
// outbox only after the cloud acknowledged them; while the cloud accepts, batches
// follow each other at once; failures back off with full jitter on the injected clock.
type Uploader struct {
	c   *Client
	ob  Outbox
	opt Options
	log *slog.Logger

	kick  chan struct{}
	retry chan struct{}

	mu     stdsync.Mutex
	health Health
}

// Health is the uploader's part of the status page.
type Health struct {
	Acked       int64     // highest seq the cloud acknowledged
	LastSuccess time.Time // last accepted batch (gateway clock)
	LastError   string    // "" when the last attempt succeeded
	LastErrorAt time.Time
	Reason      string // Reason of the last error
	Fatal       bool   // the last error is fatal: a technical alarm is up
	Outage      bool   // attempts are failing
	Failures    int    // consecutive failed attempts
	Sent        int64  // entries acknowledged since start
}

// NewUploader returns an uploader for ob through c.
func NewUploader(c *Client, ob Outbox, opt Options) *Uploader {
	if opt.BatchSize <= 0 {
		opt.BatchSize = 1000
	}
	opt.BatchSize = min(opt.BatchSize, wire.MaxEntries)
	if opt.MaxBatchBytes <= 0 {
		opt.MaxBatchBytes = 4 << 20
	}
	if opt.Idle <= 0 {
		opt.Idle = 5 * time.Second
	}
	if opt.Backoff.Base <= 0 {
		opt.Backoff.Base = time.Second
	}
	if opt.Backoff.Max <= 0 {
		opt.Backoff.Max = 5 * time.Minute
	}
	if opt.Backoff.Rand == nil {
		opt.Backoff.Rand = rand.Float64
	}
	if opt.FatalRetry <= 0 {
		opt.FatalRetry = 15 * time.Minute
	}
	if opt.Clock == nil {
		opt.Clock = vakt.SystemClock{}
	}
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	return &Uploader{c: c, ob: ob, opt: opt, log: opt.Log, kick: make(chan struct{}, 1), retry: make(chan struct{}, 1)}
}

// Kick tells the uploader that the outbox has new entries; it never blocks. It does
// not cut a backoff short: a cloud that is down is not hammered by every commit.
func (u *Uploader) Kick() {
	select {
	case u.kick <- struct{}{}:
	default:
	}
}

// Retry ends any wait at once, also a backoff or a fatal wait (e.g. after the token
// or CA file was replaced).
func (u *Uploader) Retry() {
	select {
	case u.retry <- struct{}{}:
	default:
	}
}

// Health returns the uploader's state for the status page.
func (u *Uploader) Health() Health {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.health
}

func (u *Uploader) envelope(e *Entry) wire.Envelope {
	v := e.V
	if v == 0 {
		v = wire.Versions[e.Kind]
		if v == 0 {
			v = 1
		}
	}
	return wire.Envelope{Seq: e.Seq, Kind: e.Kind, V: v, At: e.At.UTC(), ClockSynced: e.ClockSynced,
		Boot: e.Boot, SinceBootMS: e.SinceBoot.Milliseconds(), Body: e.Body}
}

// batch is the next upload, read and encoded.
type batch struct {
	envs []wire.Envelope
	body []byte
	last int64
	err  *Error
}

// prepare reads up to limit entries after seq and encodes them.
func (u *Uploader) prepare(ctx context.Context, after int64, limit int) batch {
	pending, err := u.ob.Pending(ctx, after, limit)
	if err != nil {
		return batch{err: localError("read pending entries", err)}
	}
	if len(pending) == 0 {
		return batch{}
	}
	envs := make([]wire.Envelope, 0, len(pending))
	size := 0
	for i := range pending {
		size += len(pending[i].Body) + 160
		if len(envs) > 0 && size > u.opt.MaxBatchBytes {
			break
		}
		envs = append(envs, u.envelope(&pending[i]))
	}
	body, e := encode(envs)
	if e != nil {
		return batch{err: e}
	}
	return batch{envs: envs, body: body, last: envs[len(envs)-1].Seq}
}

type uploadResult struct {
	ack wire.Ack
	err error
}

// Run uploads until ctx ends, then returns ctx's error. Failures never end it.
//
// While one batch is on its way, the next is read and encoded on the assumption that
// the cloud takes the whole batch (it nearly always does); after a partial ack or a
// failure the speculative batch is thrown away and read again from what was acked.
// Only one batch is ever in flight: the contract orders batches by Vakt-After-Seq.
func (u *Uploader) Run(ctx context.Context) error {
	acked, err := u.ob.Acked(ctx)
	for err != nil {
		if !u.failed(ctx, localError("read acked seq", err), 0) {
			return ctx.Err()
		}
		acked, err = u.ob.Acked(ctx)
	}
	u.mu.Lock()
	u.health.Acked = acked
	u.mu.Unlock()
	limit := u.opt.BatchSize
	attempt := 0
	cur := u.prepare(ctx, acked, limit)
	for ctx.Err() == nil {
		if cur.err != nil {
			attempt++
			if !u.failed(ctx, cur.err, attempt) {
				break
			}
			cur = u.prepare(ctx, acked, limit)
			continue
		}
		if len(cur.envs) == 0 {
			if !sleep(ctx, u.opt.Clock, u.opt.Idle, u.kick, u.retry, nil) {
				break
			}
			cur = u.prepare(ctx, acked, limit)
			continue
		}
		res := make(chan uploadResult, 1)
		go func(after int64, body []byte) {
			ack, err := u.c.post(ctx, after, body)
			res <- uploadResult{ack, err}
		}(acked, cur.body)
		next := u.prepare(ctx, cur.last, limit)
		r := <-res
		ack, err := r.ack, r.err
		if err == nil && (ack.Acked < acked || ack.Acked > cur.last) {
			err = &Error{Op: "upload", Status: 200, Reason: ReasonProtocol, Fatal: true,
				Err: fmt.Errorf("cloud acknowledged seq %d for a batch after %d up to %d", ack.Acked, acked, cur.last)}
		}
		if err == nil && ack.Acked == acked {
			// Accepted but nothing taken: treat like a busy cloud so we do not spin.
			err = &Error{Op: "upload", Status: 200, Reason: ReasonBusy, Err: errors.New("cloud acknowledged nothing new")}
		}
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			e, ok := asError(err)
			if !ok {
				e = &Error{Op: "upload", Reason: ReasonUnreachable, Err: err}
			}
			if e.Reason == ReasonTooLarge && len(cur.envs) > 1 {
				limit = max(len(cur.envs)/2, 1) // find a size the cloud takes before calling it fatal
				u.log.Info("cloud batch too large, halving", "entries", limit)
			} else {
				attempt++
				if !u.failed(ctx, e, attempt) {
					break
				}
			}
			cur = u.prepare(ctx, acked, limit)
			continue
		}
		if err := u.ob.Acknowledge(ctx, ack.Acked); err != nil {
			// The cloud has them; the next batch repeats them and is acknowledged again.
			attempt++
			if !u.failed(ctx, localError("acknowledge", err), attempt) {
				break
			}
			cur = u.prepare(ctx, acked, limit)
			continue
		}
		acked = ack.Acked
		attempt = 0
		u.succeeded(acked, ack.Stored+ack.Repeated)
		switch {
		case limit < u.opt.BatchSize:
			limit = min(limit*2, u.opt.BatchSize)
			cur = u.prepare(ctx, acked, limit)
		case ack.Acked == cur.last && next.err == nil && len(next.envs) > 0:
			cur = next
		default:
			cur = u.prepare(ctx, acked, limit)
		}
	}
	return ctx.Err()
}

func (u *Uploader) succeeded(acked int64, n int) {
	now := u.opt.Clock.Now()
	u.mu.Lock()
	h := u.health
	u.health.Acked, u.health.LastSuccess, u.health.LastError, u.health.Reason = acked, now, "", ""
	u.health.Outage, u.health.Fatal, u.health.Failures = false, false, 0
	u.health.Sent += int64(n)
	u.mu.Unlock()
	if h.Outage {
		u.log.Info("cloud reachable again", "failed_attempts", h.Failures, "acked", acked)
	}
	if h.Fatal && u.opt.OnRecovered != nil {
		u.opt.OnRecovered()
	}
}

// failed records e, logs an outage once (not once per retry), reports a fatal
// condition once, and waits. It reports false when ctx ended.
func (u *Uploader) failed(ctx context.Context, e *Error, attempt int) bool {
	now := u.opt.Clock.Now()
	u.mu.Lock()
	h := u.health
	u.health.LastError, u.health.LastErrorAt, u.health.Reason = e.Error(), now, e.Reason
	u.health.Outage, u.health.Fatal = true, e.Fatal
	u.health.Failures++
	u.mu.Unlock()
	switch {
	case e.Fatal && (!h.Fatal || h.Reason != e.Reason):
		u.log.Error("cloud sync stopped: fix the cause; entries wait in the outbox", "reason", e.Reason, "err", e.Error())
		if u.opt.OnFatal != nil {
			u.opt.OnFatal(e)
		}
	case !e.Fatal && !h.Outage:
		u.log.Warn("cloud unreachable; entries wait in the outbox and are sent when it is back", "reason", e.Reason, "err", e.Error())
	default:
		u.log.Debug("cloud still failing", "reason", e.Reason, "attempt", attempt, "err", e.Error())
	}
	d := u.opt.FatalRetry
	if !e.Fatal {
		d = u.opt.Backoff.Delay(attempt, e.RetryAfter)
	}
	var armed func()
	if u.opt.OnWait != nil {
		armed = func() { u.opt.OnWait(d, e) }
	}
	return sleep(ctx, u.opt.Clock, d, nil, u.retry, armed)
}

package engine

import (
	"context"
	"time"

	vakt "github.com/vakt/vakt"
)

// Retention (G5): the engine's loop asks the store to delete history older than
// the configured periods (vakt.RetentionPurge): once retentionFirst after the start
// and then every retentionEvery, sooner while a purge left more to do. The purge is
// the loop's (rule 3: one writer) and is its own transaction, so a purge that fails
// never holds back an alarm's commit.
//
// The clock rules (R5), decided here:
//
//  1. No purge while the wall clock is not trusted: Options.ClockSynced says no
//     (nil means never trusted), or it reads before 2020 (a box without a
//     real-time clock boots in 1970).
//  2. The purge's reference time never runs ahead of what the gateway can vouch
//     for: ref = min(wall now, base + monotonic time since base), where base is
//     the newest time the database recorded before this start (Snapshot.Newest),
//     or, for a database with none, the wall clock at the start if trusted then,
//     else the first trusted wall reading of a purge.
//     A wall clock that jumps a year forward therefore moves ref by the real
//     time that passed, not by a year, and records stamped with the jumped
//     clock do not move it either. The price: time the gateway was switched off
//     is not counted until the next start, so history is kept longer, never
//     shorter, than the period.
//  3. Each kind's cutoff is ref minus its period; the store then deletes only
//     what is older, closed (alarms) or ended (visits), and, with cloud sync
//     configured, acknowledged by the cloud. Records made while the clock was
//     unsynced have no known age and go only with a later trusted one.

// Retention configures the purge. A zero period keeps that kind (the
// configuration never allows it for personal data; see config.Retention).
type Retention struct {
	Alarms, Events, Visits, EPR, Audit time.Duration
	// CloudSync: cloud sync is configured, so only what the cloud acknowledged goes.
	CloudSync bool
	// Monotonic is the monotonic time since the engine started; default
	// time.Since(start). Tests set it to move the real time apart from the wall
	// clock.
	Monotonic func() time.Duration
	// Manual: no scheduled purges, only PurgeRetention calls (tests that purge at
	// moments of their choosing; a scheduled purge racing them would take what they
	// expect their own call to take).
	Manual bool
}

func (r Retention) enabled() bool {
	return r.Alarms > 0 || r.Events > 0 || r.Visits > 0 || r.EPR > 0 || r.Audit > 0
}

const (
	retentionFirst = 5 * time.Minute
	retentionEvery = time.Hour
	retentionMore  = time.Minute
)

// retentionState is the loop's retention bookkeeping.
type retentionState struct {
	base     time.Time     // newest trusted time known; zero until known
	baseMono time.Duration // monotonic reading when base was taken
	timer    vakt.Timer
}

var trustedFrom = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)

func (e *Engine) initRetention(snap *vakt.Snapshot) {
	if e.opt.Retention.Monotonic == nil {
		e.opt.Retention.Monotonic = func() time.Duration { return time.Since(e.started) }
	}
	switch now := e.opt.Clock.Now(); {
	case !snap.Newest.Before(trustedFrom):
		e.ret.base, e.ret.baseMono = snap.Newest, 0
	case e.clockTrusted(now):
		// An empty database (or one with unsynced times only): this start is the
		// newest time known.
		e.ret.base, e.ret.baseMono = now, e.opt.Retention.Monotonic()
	}
}

// clockTrusted is rule 1: the wall clock is synchronised and not before 2020.
func (e *Engine) clockTrusted(now time.Time) bool {
	return e.opt.ClockSynced != nil && e.opt.ClockSynced() && !now.Before(trustedFrom)
}

// armRetention schedules the next purge after d (loop-owned).
func (e *Engine) armRetention(d time.Duration) {
	if !e.opt.Retention.enabled() || e.opt.Retention.Manual {
		return
	}
	if e.ret.timer != nil {
		e.ret.timer.Stop()
	}
	e.ret.timer = e.opt.Clock.AfterFunc(d, func() {
		select {
		case e.in <- retentionOp{}:
		case <-e.done:
		}
	})
}

// stopRetention stops the purge timer when the loop ends.
func (e *Engine) stopRetention() {
	if e.ret.timer != nil {
		e.ret.timer.Stop()
	}
}

// retentionOp is the scheduled purge.
type retentionOp struct{}

func (retentionOp) apply(e *Engine, _ *vakt.Batch) effect {
	res, err := e.purgeRetention(e.opt.Clock.Now())
	switch {
	case err != nil:
		e.log.Error("retention purge failed: retrying", "err", err, "retry_in", retentionEvery)
		e.armRetention(retentionEvery)
	case res.More:
		e.armRetention(retentionMore)
	default:
		e.armRetention(retentionEvery)
	}
	return nil
}

// retentionSkipped is why no purge ran.
type retentionSkipped string

func (s retentionSkipped) Error() string { return "retention: " + string(s) }

// ErrRetentionClock: no purge, the wall clock is not trusted (R5).
const ErrRetentionClock = retentionSkipped("not purged: the wall clock is not synchronised (R5); check NTP")

// retentionPurge builds the store's request from now, or reports why none is due.
func (e *Engine) retentionPurge(now time.Time) (vakt.RetentionPurge, error) {
	r := e.opt.Retention
	if !e.clockTrusted(now) {
		return vakt.RetentionPurge{}, ErrRetentionClock
	}
	mono := r.Monotonic()
	if e.ret.base.IsZero() {
		e.ret.base, e.ret.baseMono = now, mono
	}
	ref := e.ret.base.Add(mono - e.ret.baseMono)
	if now.Before(ref) {
		ref = now
	}
	cut := func(d time.Duration) time.Time {
		if d <= 0 {
			return time.Time{}
		}
		return ref.Add(-d)
	}
	return vakt.RetentionPurge{Alarms: cut(r.Alarms), Events: cut(r.Events), Visits: cut(r.Visits),
		EPR: cut(r.EPR), Audit: cut(r.Audit), RequireAcked: r.CloudSync, At: now, Origin: e.origin()}, nil
}

// purgeRetention runs one purge on the loop. A purge that deleted anything asks
// for the file scrub that runs after this round's commit: its TRUNCATE checkpoint
// removes the deleted rows' old pages from the WAL (secure_delete already zeroed
// them in the pages written).
func (e *Engine) purgeRetention(now time.Time) (vakt.RetentionResult, error) {
	if !e.opt.Retention.enabled() {
		return vakt.RetentionResult{}, nil
	}
	p, err := e.retentionPurge(now)
	if err != nil {
		e.log.Warn("retention purge skipped", "reason", err)
		return vakt.RetentionResult{}, err
	}
	res, err := e.opt.Store.PurgeRetention(context.Background(), p)
	if err != nil {
		return res, err
	}
	if res.Backlog {
		e.log.Info("retention: the cloud's backlog is long; only events purged until it has caught up")
	}
	if res.Total() > 0 {
		e.st.scrub = true
		e.log.Info("retention purged", "alarms", res.Alarms, "events", res.Events, "visits", res.Visits,
			"epr_records", res.EPR, "audit", res.Audit, "outbox", res.Outbox)
	}
	return res, nil
}

// PurgeRetention runs a retention purge now, through the loop, and returns what it
// deleted; ErrRetentionClock while the clock is not trusted. The periodic purge
// does the same by itself.
func (e *Engine) PurgeRetention(ctx context.Context) (vakt.RetentionResult, error) {
	return do(ctx, e, func(e *Engine, _ *vakt.Batch, now time.Time) (vakt.RetentionResult, error) {
		return e.purgeRetention(now)
	})
}

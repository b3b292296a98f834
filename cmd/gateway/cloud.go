package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	stdsync "sync"
	"time"

	vakt "github.com/vakt/vakt"
	"github.com/vakt/vakt/config"
	"github.com/vakt/vakt/engine"
	"github.com/vakt/vakt/store"
	cloudsync "github.com/vakt/vakt/sync"
	"github.com/vakt/vakt/sync/wire"
)

// The cloud sync, wired: the uploader drains the outbox (read pool) and hands
// acknowledgements to the engine's write path; the directory fetcher applies each
// page as one engine operation; a backlog watcher applies the bounded-backlog
// policy. Fatal conditions and a high backlog are technical alarms on
// pseudo-transmitters whose id names the cause, routed like any technical alarm.

// SyncTransmitter is the prefix of the cloud sync's pseudo-transmitters: a fatal
// condition of the upload raises an "offline" alarm on SyncTransmitter+"-"+reason
// (e.g. gateway-sync-cloud-auth), of the directory feed on
// gateway-sync-directory-<reason>, a high backlog on SyncBacklogTransmitter.
const (
	SyncTransmitter        vakt.TransmitterID = "gateway-sync"
	SyncBacklogTransmitter vakt.TransmitterID = "gateway-sync-backlog"
)

// backlogEvery is how often the backlog is measured (it reads every entry's length).
const backlogEvery = 30 * time.Second

// Cloud is the running sync; nil when cloud.enabled is false.
type Cloud struct {
	client *cloudsync.Client
	up     *cloudsync.Uploader
	dir    *cloudsync.Directory
	eng    *engine.Engine
	db     *store.DB
	log    *slog.Logger
	clock  vakt.Clock
	policy cloudsync.BacklogPolicy
	// backlogCheck wakes the backlog watcher (tests, and after a big commit).
	backlogCheck chan struct{}

	mu      stdsync.Mutex
	upFatal vakt.TransmitterID // the uploader's current fatal alarm, "" if none
	dirFail vakt.TransmitterID // the directory's current fatal alarm
}

// newCloud builds the sync from cfg; it connects nothing until run.
func newCloud(cfg *config.Config, eng *engine.Engine, db *store.DB, clock vakt.Clock, log *slog.Logger) (*Cloud, error) {
	cc := cfg.Cloud
	if !cc.Enabled {
		return nil, nil
	}
	client, err := cloudsync.NewClient(cloudsync.Config{URL: cc.URL, Gateway: cc.GatewayID, Token: cc.Token.Value,
		CAFile: cc.CAFile, AllowHTTP: cfg.Site.Demo})
	if err != nil {
		return nil, fmt.Errorf("cloud: %w", err)
	}
	c := &Cloud{client: client, eng: eng, db: db, log: log.With("part", "cloud"), clock: clock,
		policy:       cloudsync.BacklogPolicy{MaxEntries: int64(cc.BacklogMaxEntries), MaxBytes: int64(cc.BacklogMaxBytes)},
		backlogCheck: make(chan struct{}, 1)}
	c.up = cloudsync.NewUploader(client, outbox{db: db, eng: eng}, cloudsync.Options{
		BatchSize: cc.BatchSize, Idle: cc.UploadInterval.D(), Clock: clock, Log: c.log,
		OnFatal:     func(e *cloudsync.Error) { c.fatal(&c.upFatal, "", e) },
		OnRecovered: func() { c.recovered(&c.upFatal) },
	})
	c.dir = cloudsync.NewDirectory(client, c.applyDirectory, cloudsync.DirectoryOptions{
		Interval: cc.DirectoryInterval.D(), Clock: clock, Log: c.log,
		OnFatal: func(e *cloudsync.Error) { c.fatal(&c.dirFail, "-directory", e) },
	})
	return c, nil
}

// run uploads, fetches the directory and watches the backlog until ctx ends.
func (c *Cloud) run(ctx context.Context) {
	cursor, err := c.db.DirectoryCursor(ctx)
	if err != nil {
		c.log.Error("cloud directory cursor unreadable; fetching the directory from the start", "err", err)
	}
	var wg stdsync.WaitGroup
	wg.Go(func() { _ = c.up.Run(ctx) })
	wg.Go(func() { _ = c.dir.Run(ctx, cursor) })
	wg.Go(func() { c.watchBacklog(ctx) })
	wg.Wait()
	c.client.Close()
}

// Kick tells the uploader that new entries wait (an observer of every committed
// alarm change; never blocks).
func (c *Cloud) AlarmChanged(vakt.Alarm) { c.up.Kick() }

// cloudObserver hands committed alarm changes to the Cloud built after the engine.
type cloudObserver struct{ c *Cloud }

func (o *cloudObserver) AlarmChanged(a vakt.Alarm) {
	if o.c != nil {
		o.c.AlarmChanged(a)
	}
}

// Retry ends every wait at once (after a configuration reload).
func (c *Cloud) Retry() { c.up.Retry(); c.dir.Refresh() }

// Stats is the sync part of the status page and /metrics.
func (c *Cloud) Stats(ctx context.Context) (cloudsync.Status, error) {
	return cloudsync.Stats(ctx, c.up, c.dir)
}

// State asks the cloud what it holds (verify-audit's anchor).
func (c *Cloud) State(ctx context.Context) (wire.State, error) { return c.client.State(ctx) }

// technical raises (or, with clear, closes) the technical alarm on id. It never
// blocks: the uploader's callbacks must not.
func (c *Cloud) technical(id vakt.TransmitterID, clear bool, text string) {
	kind := vakt.EventOffline
	if clear {
		kind = vakt.EventCheckIn
	}
	ev := vakt.Event{Transmitter: id, Kind: kind, Source: "cloud", Text: text}
	if err := c.eng.Ingest(ev, func(err error) {
		if err != nil {
			c.log.Error("cloud technical alarm not committed", "transmitter", id, "err", err)
		}
	}); err != nil {
		c.log.Error("cloud technical alarm not queued", "transmitter", id, "err", err)
	}
}

func (c *Cloud) fatal(slot *vakt.TransmitterID, part string, e *cloudsync.Error) {
	id := SyncTransmitter + vakt.TransmitterID(part+"-"+e.Reason)
	c.mu.Lock()
	old := *slot
	*slot = id
	c.mu.Unlock()
	if old != "" && old != id {
		c.technical(old, true, "")
	}
	if old != id {
		c.log.Error("cloud sync technical alarm raised", "transmitter", id, "reason", e.Reason)
		c.technical(id, false, e.Error())
	}
}

func (c *Cloud) recovered(slot *vakt.TransmitterID) {
	c.mu.Lock()
	old := *slot
	*slot = ""
	c.mu.Unlock()
	if old != "" {
		c.log.Info("cloud sync technical alarm cleared", "transmitter", old)
		c.technical(old, true, "")
	}
}

// watchBacklog measures the outbox now and then and applies the policy: compact
// health samples from the warning level on, raise the backlog alarm at it, clear it
// below. It also clears the directory's fatal alarm once the directory works again.
func (c *Cloud) watchBacklog(ctx context.Context) {
	warned, over, adopted := false, false, false
	if c.eng.View() == nil {
		select { // the first view is published right after the engine's start
		case <-c.eng.ViewChanged():
		case <-ctx.Done():
			return
		}
	}
	for {
		if !adopted {
			adopted = c.adopt(&warned)
		}
		c.checkBacklog(ctx, &warned, &over)
		c.mu.Lock()
		upFail, dirFail := c.upFatal, c.dirFail
		c.mu.Unlock()
		if h := c.up.Health(); upFail != "" && !h.Fatal && !h.LastSuccess.IsZero() {
			c.recovered(&c.upFatal)
		}
		if h := c.dir.Health(); dirFail != "" && !h.Fatal && !h.LastSuccess.IsZero() && h.LastError == "" {
			c.recovered(&c.dirFail)
		}
		fired := make(chan struct{})
		t := c.clock.AfterFunc(backlogEvery, func() { close(fired) })
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-fired:
		case <-c.backlogCheck:
			t.Stop()
		}
	}
}

// adopt takes over the sync's technical alarms still open from an earlier run (the
// gateway restarted while one was up), so they close when their cause has gone
// instead of staying open until a technician closes them. It reports false while
// the engine has not published its first view yet.
func (c *Cloud) adopt(warned *bool) bool {
	v := c.eng.View()
	if v == nil {
		return false
	}
	for _, a := range v.Alarms {
		id := a.Transmitter
		switch {
		case a.Kind != vakt.EventOffline || !strings.HasPrefix(string(id), string(SyncTransmitter)+"-"):
		case id == SyncBacklogTransmitter:
			*warned = true // cleared below the warning level
		case strings.HasPrefix(string(id), string(SyncTransmitter)+"-directory-"):
			c.mu.Lock()
			if c.dirFail == "" {
				c.dirFail = id
			}
			c.mu.Unlock()
		default:
			c.mu.Lock()
			if c.upFatal == "" {
				c.upFatal = id
			}
			c.mu.Unlock()
		}
	}
	return true
}

func (c *Cloud) checkBacklog(ctx context.Context, warned, over *bool) {
	if c.policy.MaxEntries <= 0 && c.policy.MaxBytes <= 0 {
		return
	}
	st, err := c.db.OutboxStats(ctx)
	if err != nil {
		c.log.Error("cloud backlog not measured", "err", err)
		return
	}
	a := c.policy.Decide(backlogOf(st))
	if a.CompactHealth {
		if err := c.eng.CompactOutboxHealth(ctx); err != nil {
			c.log.Error("cloud backlog: health compaction failed", "err", err)
		} else if st, err = c.db.OutboxStats(ctx); err == nil {
			a = c.policy.Decide(backlogOf(st))
		}
		c.log.Info("cloud backlog: older health samples compacted", "entries", st.Entries)
	}
	switch {
	case a.Warn && !*warned:
		*warned = true
		c.log.Warn("cloud backlog high: technical alarm raised; nothing is dropped but health samples",
			"entries", st.Entries, "bytes", st.Bytes, "over_cap", a.OverCap)
		c.technical(SyncBacklogTransmitter, false, "cloud backlog high")
	case !a.Warn && *warned:
		*warned = false
		c.log.Info("cloud backlog below its warning level again: technical alarm cleared", "entries", st.Entries)
		c.technical(SyncBacklogTransmitter, true, "")
	}
	if a.OverCap != *over {
		*over = a.OverCap
		if a.OverCap {
			c.log.Warn("cloud backlog over its cap; nothing lost yet, disk space is the only limit", "entries", st.Entries, "bytes", st.Bytes)
		}
	}
}

func backlogOf(st store.OutboxStats) cloudsync.Backlog {
	return cloudsync.Backlog{Entries: st.Entries, Bytes: st.Bytes, HealthEntries: st.HealthEntries,
		HealthBytes: st.HealthBytes, HealthTransmitters: st.HealthTransmitters}
}

// CheckBacklog asks the watcher to measure the backlog now.
func (c *Cloud) CheckBacklog() {
	select {
	case c.backlogCheck <- struct{}{}:
	default:
	}
}

// applyDirectory applies one page of the cloud's directory feed through the
// engine: one operation, one commit, the changes in feed order, the cursor with
// them.
func (c *Cloud) applyDirectory(ctx context.Context, page cloudsync.DirectoryChange) error {
	ch := engine.DirectoryChange{Ops: make([]engine.DirectoryOp, 0, len(page.Changes))}
	for _, w := range page.Changes {
		op := engine.DirectoryOp{Staff: vakt.Staff{ID: vakt.StaffID(w.StaffID)}, RequestID: w.RequestID}
		switch w.Op {
		case wire.OpUpsert:
			s := w.Staff
			op.Kind = engine.DirectoryUpsert
			op.Staff = vakt.Staff{ID: vakt.StaffID(s.ID), Name: s.Name, Phone: s.Phone, Email: s.Email,
				Roles: slices.Clone(s.Roles), Zone: s.Zone, SecretHash: s.SecretHash}
		case wire.OpRemove:
			op.Kind = engine.DirectoryRemove
		case wire.OpErase:
			op.Kind = engine.DirectoryErase
		default:
			return fmt.Errorf("directory op %q unknown", w.Op) // validated before; never skip
		}
		ch.Ops = append(ch.Ops, op)
	}
	cursor := page.Cursor
	ch.Cursor = &cursor
	if err := c.eng.ApplyDirectory(ctx, ch); err != nil {
		if errors.Is(err, engine.ErrConfigStaff) {
			return fmt.Errorf("%w (the cloud asked to erase a person the configuration file defines)", err)
		}
		return err
	}
	c.log.Info("cloud directory applied", "changes", len(page.Changes))
	return nil
}

// outbox is the store's outbox as the uploader sees it: reads from the read pool,
// acknowledgements through the engine (one writer).
type outbox struct {
	db  *store.DB
	eng *engine.Engine
}

func (o outbox) Pending(ctx context.Context, after int64, limit int) ([]cloudsync.Entry, error) {
	es, err := o.db.PendingOutbox(ctx, after, limit)
	if err != nil {
		return nil, err
	}
	out := make([]cloudsync.Entry, len(es))
	for i, e := range es {
		out[i] = cloudsync.Entry{Seq: e.Seq, Kind: e.Kind, V: e.V, At: e.At, ClockSynced: e.Origin.ClockSynced,
			Boot: e.Origin.Boot, SinceBoot: e.Origin.SinceBoot, Body: e.Body}
	}
	return out, nil
}

func (o outbox) Acknowledge(ctx context.Context, upTo int64) error {
	return o.eng.AcknowledgeOutbox(ctx, upTo)
}

// Acked is the stored acknowledgement, or a higher one the engine still holds for
// company (engine.AcknowledgeOutbox): the cloud has those entries already.
func (o outbox) Acked(ctx context.Context) (int64, error) {
	n, err := o.db.OutboxAcked(ctx)
	return max(n, o.eng.OutboxAckQueued()), err
}

func (o outbox) Stats(ctx context.Context) (cloudsync.OutboxStats, error) {
	st, err := o.db.OutboxStats(ctx)
	if err != nil {
		return cloudsync.OutboxStats{}, err
	}
	return cloudsync.OutboxStats{Entries: st.Entries, Bytes: st.Bytes, Oldest: st.Oldest, OldestSynced: st.OldestSynced}, nil
}

// verifyAnchor compares the local audit log with the head the cloud anchored
// (docs/sync-protocol.md, "State and the audit-head anchor"): a local log whose
// entry at the anchored seq is missing or has another hash was truncated or
// rewritten after that point reached the cloud, which the chain alone cannot show.
// Without a configured, reachable cloud it says that the anchor was not checked.
func verifyAnchor(ctx context.Context, cfg *config.Config, db *store.DB, stdout io.Writer) error {
	cc := cfg.Cloud
	if !cc.Enabled {
		fmt.Fprintln(stdout, "audit anchor: not checked (cloud sync is not configured)")
		return nil
	}
	client, err := cloudsync.NewClient(cloudsync.Config{URL: cc.URL, Gateway: cc.GatewayID, Token: cc.Token.Value,
		CAFile: cc.CAFile, AllowHTTP: cfg.Site.Demo, Timeout: 10 * time.Second})
	if err != nil {
		return err
	}
	defer client.Close()
	st, err := client.State(ctx)
	if err != nil {
		fmt.Fprintf(stdout, "audit anchor: not checked (the cloud did not answer: %v)\n", err)
		return nil
	}
	h := st.AuditHead
	if h == nil {
		fmt.Fprintln(stdout, "audit anchor: not checked (the cloud holds no audit entry of this gateway yet)")
		return nil
	}
	// Retention (G5) deletes only entries the cloud acknowledged, so the anchored
	// head is the retention anchor at the oldest; one before it was deleted here on
	// purpose and says nothing.
	anchor, anchorHash, err := db.AuditAnchor(ctx)
	if err != nil {
		return err
	}
	switch {
	case h.Seq < anchor:
		fmt.Fprintf(stdout, "audit anchor: not checked (entry %d was deleted by retention; entries up to %d are gone)\n", h.Seq, anchor)
		return nil
	case h.Seq == anchor && h.Hash != anchorHash:
		return fmt.Errorf("audit log: entry %d differs from the copy the cloud holds: the local log was rewritten", h.Seq)
	case h.Seq == anchor:
		fmt.Fprintf(stdout, "audit anchor: entry %d matches the cloud's anchor (the retention anchor)\n", h.Seq)
		return nil
	}
	local, err := db.AuditRange(ctx, h.Seq, 1)
	if err != nil {
		return err
	}
	switch {
	case len(local) == 0 || local[0].Seq != h.Seq:
		return fmt.Errorf("audit log: entry %d reached the cloud but is missing here: the local log was truncated after it", h.Seq)
	case local[0].Hash != h.Hash:
		return fmt.Errorf("audit log: entry %d differs from the copy the cloud holds: the local log was rewritten", h.Seq)
	}
	fmt.Fprintf(stdout, "audit anchor: entry %d matches the cloud's anchor\n", h.Seq)
	return nil
}

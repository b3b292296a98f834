package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	vakt "github.com/vakt/vakt"
)

// AcknowledgeOutbox records that the cloud holds every outbox entry up to upTo
// durably (the sync uploader's acknowledgement): one commit deletes them and
// stores upTo as the acknowledged seq. Acknowledgements queued together commit
// once, with the highest seq; a lower one than already stored changes nothing.
func (e *Engine) AcknowledgeOutbox(ctx context.Context, upTo int64) error {
	if upTo <= 0 {
		return fmt.Errorf("acknowledge outbox up to %d: the seq must be positive", upTo)
	}
	_, err := do(ctx, e, func(e *Engine, b *vakt.Batch, _ time.Time) (struct{}, error) {
		b.OutboxAckedUpTo = max(b.OutboxAckedUpTo, upTo)
		return struct{}{}, nil
	})
	return err
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

// healthEvery is how often an unchanged transmitter's health is queued for the
// cloud: a check-in every few minutes would otherwise fill the outbox with
// samples that say nothing new. A change (online, battery, link) is queued at once.
const healthEvery = 15 * time.Minute

// queueHealth adds a health outbox entry for every transmitter of the batch whose
// health changed, or was last queued longer than healthEvery ago: once per
// transmitter and commit.
func (e *Engine) queueHealth(b *vakt.Batch, now time.Time) {
	if e.healthOut == nil {
		e.healthOut = map[vakt.TransmitterID]queuedHealth{}
	}
	for _, h := range b.Health {
		last, ok := e.healthOut[h.Transmitter]
		if ok && last.online == h.Online && eqPtr(last.battery, h.Battery) && eqPtr(last.link, h.LinkQuality) &&
			h.LastSeen.Sub(last.seen) < healthEvery {
			continue
		}
		e.healthOut[h.Transmitter] = queuedHealth{seen: h.LastSeen, online: h.Online,
			battery: clonePtr(h.Battery), link: clonePtr(h.LinkQuality)}
		b.Outbox = append(b.Outbox, healthEntry(h, now))
	}
}

type queuedHealth struct {
	seen          time.Time
	online        bool
	battery, link *int
}

func eqPtr(a, b *int) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }

func clonePtr(p *int) *int {
	if p == nil {
		return nil
	}
	v := *p
	return &v
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

package engine_test

import (
	"context"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	vakt "github.com/vakt/vakt"
	"github.com/vakt/vakt/engine"
	"github.com/vakt/vakt/internal/fakeclock"
	"github.com/vakt/vakt/routing"
)

// fakeTarget is an outside system that holds every delivery until the test answers.
type fakeTarget struct {
	got chan sent
}

type sent struct {
	d      vakt.Delivery
	ack    chan error // nil: ACK
	ctx    context.Context
	target string
}

func newFakeTarget() *fakeTarget { return &fakeTarget{got: make(chan sent, 16)} }

func (f *fakeTarget) Deliver(ctx context.Context, d vakt.Delivery) (string, error) {
	s := sent{d: d, ack: make(chan error, 1), ctx: ctx}
	f.got <- s
	select {
	case err := <-s.ack:
		if err != nil {
			return "", err
		}
		return "ACK", nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

func (f *fakeTarget) next(t *testing.T) sent {
	t.Helper()
	select {
	case s := <-f.got:
		return s
	case <-time.After(5 * time.Second):
		t.Fatal("timed out waiting for a delivery")
	}
	return sent{}
}

func outboundRig(t *testing.T, tiers []routing.Tier, targets map[string]vakt.Outbound) *rig {
	pol := policy()
	pol.Policies[0].Tiers = tiers
	r := &rig{t: t, path: filepath.Join(t.TempDir(), "vakt.db"), clock: fakeclock.New(t0), phones: newPhones(),
		policy: &pol, outbound: targets}
	r.start(false)
	t.Cleanup(func() { r.stop() })
	return r
}

// queueWhen returns the queue once cond holds: a send's result reaches the loop
// from the sender's goroutine, so a round trip through the loop may come first.
func (r *rig) queueWhen(what string, cond func([]vakt.Delivery) bool) []vakt.Delivery {
	r.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		q := r.queued()
		if cond(q) {
			return q
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("queue %+v: timed out waiting for %s", q, what)
		}
		runtime.Gosched()
	}
}

func (r *rig) queued() []vakt.Delivery {
	r.t.Helper()
	r.idle()
	snap, err := r.db.Load(context.Background())
	if err != nil {
		r.t.Fatal(err)
	}
	return snap.Deliveries
}

// TestForwardThenRestore: an alarm nobody takes is forwarded once the nearest tier
// runs out; the ACK marks it delivered (the row stays), completing it on site
// sends the restore with its own sequence number, and the ACK of that empties
// the queue.
func TestForwardThenRestore(t *testing.T) {
	arc := newFakeTarget()
	r := outboundRig(t, []routing.Tier{
		{Target: routing.TargetNearest, Count: 1, Wait: 30 * time.Second},
		{Target: routing.TargetARC},
	}, map[string]vakt.Outbound{engine.TargetARC: arc})
	r.ingest(vakt.Event{Transmitter: "room-101", Kind: vakt.EventCall, Source: "t", SourceID: "1"})
	r.idle() // the engine has re-armed its timer: the fake clock arms at its own now
	r.clock.Advance(31 * time.Second)
	fw := arc.next(t)
	if fw.d.Restore || fw.d.Zone != 101 || fw.d.Seq == 0 {
		t.Fatalf("forward = %+v, want zone 101, a sequence number, no restore", fw.d)
	}
	if q := r.queued(); len(q) != 1 || q[0].Delivered {
		t.Fatalf("queue before the ACK = %+v, want the forward undelivered", q)
	}
	fw.ack <- nil
	r.queueWhen("the forward delivered", func(q []vakt.Delivery) bool { return len(q) == 1 && q[0].Delivered })
	a := r.open()[0]
	if _, err := r.eng.Accept(context.Background(), "near", a.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := r.eng.Complete(context.Background(), "near", a.ID, ""); err != nil {
		t.Fatal(err)
	}
	rs := arc.next(t)
	if !rs.d.Restore || rs.d.Zone != 101 || rs.d.Seq == fw.d.Seq || rs.d.Alarm != a.ID {
		t.Fatalf("restore = %+v, want a restore of %s zone 101 with a new sequence", rs.d, a.ID)
	}
	rs.ack <- nil
	r.queueWhen("an empty queue after the restore's ACK", func(q []vakt.Delivery) bool { return len(q) == 0 })
}

// TestPageWithdrawnWhenTaken: a page still waiting for the paging system's ACK is
// withdrawn (its send cancelled, its row gone) when a phone accepts the alarm;
// no reset follows a page that never arrived.
func TestPageWithdrawnWhenTaken(t *testing.T) {
	pager := newFakeTarget()
	r := outboundRig(t, []routing.Tier{
		{Target: routing.TargetPager, Pager: "dect", CallAddress: "123", Wait: 30 * time.Second},
		{Target: routing.TargetSite, Wait: time.Minute},
	}, map[string]vakt.Outbound{"pager:dect": pager})
	r.ingest(vakt.Event{Transmitter: "room-101", Kind: vakt.EventCall, Source: "t", SourceID: "1"})
	pg := pager.next(t)
	if pg.d.Address != "123" || pg.d.Text != "ROOM 101 CALL" {
		t.Fatalf("page = %+v, want call address 123 and text ROOM 101 CALL", pg.d)
	}
	r.idle()                          // the engine has re-armed its timer: the fake clock arms at its own now
	r.clock.Advance(31 * time.Second) // site tier: phones get it too
	// The timer's tick reaches the loop from its own goroutine: wait for its offer.
	r.phones.wait(t, "the site tier's offer to near", func() bool { return r.phones.count("near", vakt.NoticeOffer) > 0 })
	a := r.open()[0]
	if _, err := r.eng.Accept(context.Background(), "near", a.ID); err != nil {
		t.Fatal(err)
	}
	select {
	case <-pg.ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the page was not withdrawn when the alarm was taken")
	}
	if q := r.queued(); len(q) != 0 {
		t.Fatalf("queue after the accept = %+v, want empty", q)
	}
	select {
	case s := <-pager.got:
		t.Fatalf("unexpected delivery %+v after a withdrawn page", s.d)
	default:
	}
}

// TestPageResetAfterAccept: a page the paging system ACKed gets its reset when
// the alarm is taken on site.
func TestPageResetAfterAccept(t *testing.T) {
	pager := newFakeTarget()
	r := outboundRig(t, []routing.Tier{
		{Target: routing.TargetPager, Pager: "dect", CallAddress: "123", Wait: 30 * time.Second},
		{Target: routing.TargetSite, Wait: time.Minute},
	}, map[string]vakt.Outbound{"pager:dect": pager})
	r.ingest(vakt.Event{Transmitter: "room-101", Kind: vakt.EventCall, Source: "t", SourceID: "1"})
	pager.next(t).ack <- nil
	r.queueWhen("the page delivered", func(q []vakt.Delivery) bool { return len(q) == 1 && q[0].Delivered })
	r.idle() // the engine has re-armed its timer: the fake clock arms at its own now
	r.clock.Advance(31 * time.Second)
	// The timer's tick reaches the loop from its own goroutine: wait for its offer.
	r.phones.wait(t, "the site tier's offer to near", func() bool { return r.phones.count("near", vakt.NoticeOffer) > 0 })
	a := r.open()[0]
	if _, err := r.eng.Accept(context.Background(), "near", a.ID); err != nil {
		t.Fatal(err)
	}
	rs := pager.next(t)
	if !rs.d.Restore || rs.d.Address != "123" {
		t.Fatalf("after the accept got %+v, want the reset of call address 123", rs.d)
	}
	rs.ack <- nil
	r.queueWhen("an empty queue after the reset", func(q []vakt.Delivery) bool { return len(q) == 0 })
}

// TestForwardResentAfterRestart: a forward not ACKed when the engine stops is sent
// again by the next start with the same content and sequence number.
func TestForwardResentAfterRestart(t *testing.T) {
	arc := newFakeTarget()
	r := outboundRig(t, []routing.Tier{
		{Target: routing.TargetNearest, Count: 1, Wait: 30 * time.Second},
		{Target: routing.TargetARC},
	}, map[string]vakt.Outbound{engine.TargetARC: arc})
	r.ingest(vakt.Event{Transmitter: "room-101", Kind: vakt.EventCall, Source: "t", SourceID: "1"})
	r.idle() // the engine has re-armed its timer: the fake clock arms at its own now
	r.clock.Advance(31 * time.Second)
	first := arc.next(t)
	r.stop()
	<-first.ctx.Done()
	r.start(false)
	again := arc.next(t)
	first.d.Created, again.d.Created = time.Time{}, time.Time{}
	if again.d != first.d {
		t.Fatalf("resent %+v, want %+v", again.d, first.d)
	}
}

// TestOutboundLinkTechnicalAlarm: a lost link to an outside system raises one
// technical alarm naming it, a second report does not raise another, and the link
// coming back closes it.
func TestOutboundLinkTechnicalAlarm(t *testing.T) {
	r := outboundRig(t, policy().Policies[0].Tiers, nil)
	techOpen := func() []vakt.Alarm {
		var out []vakt.Alarm
		for _, a := range r.open() {
			if a.Transmitter == "outbound-pager-dect" {
				out = append(out, a)
			}
		}
		return out
	}
	r.eng.OutboundLink("pager:dect", false)
	r.eng.OutboundLink("pager:dect", false)
	r.phones.wait(t, "the technician offered the link alarm", func() bool { return r.phones.count("tech", vakt.NoticeOffer) > 0 })
	r.idle()
	if got := techOpen(); len(got) != 1 || got[0].Kind != vakt.EventOffline || got[0].Priority != vakt.PriorityTechnical {
		t.Fatalf("open link alarms = %+v, want one technical offline alarm", got)
	}
	r.eng.OutboundLink("pager:dect", true)
	r.idle()
	if got := techOpen(); len(got) != 0 {
		t.Fatalf("link alarms after the link came back = %+v, want none", got)
	}
}

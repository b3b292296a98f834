package engine_test

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	vakt "github.com/vakt/vakt"
	"github.com/vakt/vakt/engine"
)

// healthSamples counts the cloud's queued health samples of a transmitter.
func (r *rig) healthSamples(tx vakt.TransmitterID) int {
	r.t.Helper()
	entries, err := r.db.PendingOutbox(context.Background(), 0, 0)
	if err != nil {
		r.t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		if e.Kind == vakt.OutboxKindHealth && strings.Contains(string(e.Body), `"transmitter":"`+string(tx)+`"`) {
			n++
		}
	}
	return n
}

// untilCommits waits until the engine has made n commits (a timer's op runs on
// its own goroutine after the fake clock moved).
func (r *rig) untilCommits(n int64) {
	r.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for r.eng.Stats().Commits < n {
		if time.Now().After(deadline) {
			r.t.Fatalf("%d commits, want %d", r.eng.Stats().Commits, n)
		}
		runtime.Gosched()
	}
}

// TestCheckInHeldUntilHealthWrite (P6): a known transmitter's check-in is
// acknowledged without a commit; the status page's view has its health at once,
// the disk gets it with the health write a quarter of an hour later, in one commit
// for every transmitter heard from, and the cloud a sample at most hourly.
func TestCheckInHeldUntilHealthWrite(t *testing.T) {
	r := newRig(t)
	first := t0.Add(time.Minute)
	r.ingest(vakt.Event{Transmitter: "room-101", Kind: vakt.EventCheckIn, Source: "mqtt",
		Battery: intp(80), LinkQuality: intp(120), ReceivedAt: first})
	r.ingest(vakt.Event{Transmitter: "room-102", Kind: vakt.EventCheckIn, Source: "mqtt",
		Battery: intp(60), LinkQuality: intp(90), ReceivedAt: first})
	if h, ok := r.healthOf("room-101"); !ok || !h.LastSeen.Equal(first) {
		t.Fatalf("a transmitter's first message: health on disk %+v (found %v), want written with it", h, ok)
	}
	r.idle()
	commits, events := r.eng.Stats().Commits, r.eng.Stats().Events

	later := first.Add(3 * time.Minute)
	r.ingest(vakt.Event{Transmitter: "room-101", Kind: vakt.EventCheckIn, Source: "mqtt",
		Battery: intp(79), LinkQuality: intp(131), ReceivedAt: later})
	r.ingest(vakt.Event{Transmitter: "room-102", Kind: vakt.EventCheckIn, Source: "mqtt",
		Battery: intp(60), LinkQuality: intp(95), ReceivedAt: later})
	r.idle()
	if st := r.eng.Stats(); st.Commits != commits || st.Events != events+2 {
		t.Fatalf("two check-ins of known transmitters: %d commits, %d events counted; want 0 commits, 2 events",
			st.Commits-commits, st.Events-events)
	}
	r.waitView("room-101's new health", func(v *engine.View) bool {
		for _, tv := range v.Transmitters {
			if tv.ID == "room-101" {
				return tv.Health.LastSeen.Equal(later) && tv.Health.Battery != nil && *tv.Health.Battery == 79
			}
		}
		return false
	})
	if h, _ := r.healthOf("room-101"); !h.LastSeen.Equal(first) || *h.Battery != 80 {
		t.Fatalf("health on disk before the health write: %+v, want the first message's", h)
	}
	if n := r.healthSamples("room-101"); n != 1 {
		t.Fatalf("%d health samples queued for the cloud before the health write, want 1 (the first message)", n)
	}

	r.clock.Advance(15 * time.Minute) // the health write
	r.untilCommits(commits + 1)
	r.idle()
	if got := r.eng.Stats().Commits - commits; got != 1 {
		t.Fatalf("the health write took %d commits, want 1 for both transmitters", got)
	}
	h, _ := r.healthOf("room-101")
	if !h.LastSeen.Equal(later) || *h.Battery != 79 || *h.LinkQuality != 131 || !h.Online {
		t.Fatalf("health on disk after the health write: %+v", h)
	}
	if h, _ := r.healthOf("room-102"); !h.LastSeen.Equal(later) || *h.LinkQuality != 95 {
		t.Fatalf("room-102 on disk after the health write: %+v", h)
	}
	if n := r.healthSamples("room-101"); n != 1 {
		t.Fatalf("%d health samples queued for the cloud after the health write, want still 1 (hourly)", n)
	}

	// Nothing held: a quarter of an hour more writes nothing.
	r.clock.Advance(15 * time.Minute)
	r.idle()
	if got := r.eng.Stats().Commits - commits; got != 1 {
		t.Fatalf("%d commits after a quiet quarter of an hour, want still 1", got)
	}

	// The first health write an hour after the last sample sends the cloud one.
	r.clock.Advance(30 * time.Minute)
	r.ingest(vakt.Event{Transmitter: "room-101", Kind: vakt.EventCheckIn, Source: "mqtt", Battery: intp(78)})
	r.idle()
	r.clock.Advance(15 * time.Minute)
	// Wait for the health write itself: the hour's position purge commits too.
	deadline := time.Now().Add(5 * time.Second)
	for h, _ := r.healthOf("room-101"); h.Battery == nil || *h.Battery != 78; h, _ = r.healthOf("room-101") {
		if time.Now().After(deadline) {
			t.Fatalf("the health write 75 minutes on never came: %+v", h)
		}
		runtime.Gosched()
	}
	if n := r.healthSamples("room-101"); n != 2 {
		t.Fatalf("%d health samples queued for the cloud 75 minutes on, want 2", n)
	}
}

// TestHeldHealthWrittenAtStop: what the health write holds goes to disk when the
// loop stops, so a service restart shows the true last seen.
func TestHeldHealthWrittenAtStop(t *testing.T) {
	r := newRig(t)
	r.ingest(vakt.Event{Transmitter: "room-101", Kind: vakt.EventCheckIn, Source: "mqtt", Battery: intp(80)})
	later := t0.Add(5 * time.Minute)
	r.ingest(vakt.Event{Transmitter: "room-101", Kind: vakt.EventCheckIn, Source: "mqtt", Battery: intp(77), ReceivedAt: later})
	r.stop()
	r.start(false)
	if h, ok := r.healthOf("room-101"); !ok || !h.LastSeen.Equal(later) || *h.Battery != 77 {
		t.Fatalf("health after a stop and start: %+v (found %v), want the last check-in's", h, ok)
	}
}

// TestOnlineChangeWrittenAtOnce: going offline and coming back are written with
// their own commits, whatever the health write holds.
func TestOnlineChangeWrittenAtOnce(t *testing.T) {
	r := newRig(t)
	r.ingest(vakt.Event{Transmitter: "room-101", Kind: vakt.EventCheckIn, Source: "mqtt"})
	r.ingest(vakt.Event{Transmitter: "room-101", Kind: vakt.EventOffline, Source: "mqtt"})
	if h, _ := r.healthOf("room-101"); h.Online {
		t.Fatalf("health on disk after offline: %+v, want offline", h)
	}
	r.phones.wait(t, "technician offered", func() bool { return r.phones.count("tech", vakt.NoticeOffer) == 1 })
	back := t0.Add(time.Hour)
	r.ingest(vakt.Event{Transmitter: "room-101", Kind: vakt.EventCheckIn, Source: "mqtt", ReceivedAt: back})
	if h, _ := r.healthOf("room-101"); !h.Online || !h.LastSeen.Equal(back) {
		t.Fatalf("health on disk after coming back: %+v, want online at %v", h, back)
	}
	// The cloud hears of both at once: first message, offline, back.
	if n := r.healthSamples("room-101"); n != 3 {
		t.Fatalf("%d health samples queued for the cloud, want 3", n)
	}
}

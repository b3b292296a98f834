package engine_test

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"testing"
	"time"

	vakt "github.com/vakt/vakt"
	"github.com/vakt/vakt/engine"
	"github.com/vakt/vakt/internal/fakeclock"
	"github.com/vakt/vakt/outbound"
	"github.com/vakt/vakt/outbound/dc09"
	"github.com/vakt/vakt/routing"
)

// BenchmarkForwardToARCAck is routing's forward → the centre's DC-09 frame (the receiver answers ACK right after) on
// loopback through the whole seam: the event's commit with the queue row, the
// dispatch, outbound.ARC, dc09.Link and dc09.Receiver (real SQLite file, system
// clock). The floor, measured in the same run over the same link, is a bare
// Link.Send → ACK of the same message: the seam's own cost is the difference.
// Each iteration then cancels the alarm and waits for the queue to empty (the
// restore, if the ACK was in first), so the link is free for the next one.
func BenchmarkForwardToARCAck(b *testing.B) {
	frames := make(chan time.Time, 16)
	rc := &dc09.Receiver{OnFrame: func(dc09.Received) { frames <- time.Now() }}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go rc.Serve(ln)
	defer rc.Close()
	link, err := dc09.NewLink(dc09.LinkConfig{Addr: ln.Addr().String(), Account: "1234", Timeout: 5 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	defer link.Close()

	pol := policy()
	pol.Policies[0].Tiers = []routing.Tier{{Target: routing.TargetARC}, {Target: routing.TargetSite, Wait: time.Minute}}
	r := &rig{t: b, path: filepath.Join(b.TempDir(), "vakt.db"), clock: fakeclock.New(time.Now()), phones: newPhones(),
		policy: &pol, outbound: map[string]vakt.Outbound{engine.TargetARC: &outbound.ARC{Link: link, Group: 1}}}
	r.start(false)
	defer r.stop()

	var seam, floor time.Duration
	n := 0
	for b.Loop() {
		n++
		start := time.Now()
		if err := r.eng.Ingest(vakt.Event{Transmitter: "room-101", Kind: vakt.EventEmergency, Source: "bench",
			SourceID: fmt.Sprint("p", n)}, nil); err != nil {
			b.Fatal(err)
		}
		seam += (<-frames).Sub(start)
		if err := r.eng.Ingest(vakt.Event{Transmitter: "room-101", Kind: vakt.EventCancel, Source: "bench",
			SourceID: fmt.Sprint("c", n)}, nil); err != nil {
			b.Fatal(err)
		}
		// The restore follows if the ACK was in before the cancel; otherwise the
		// forward is over. Either way the queue empties.
		r.queueWhen("an empty queue", func(q []vakt.Delivery) bool { return len(q) == 0 })
		for len(frames) > 0 {
			<-frames
		}

		start = time.Now()
		if _, err := link.Send(context.Background(), dc09.ContactID{Qualifier: 1, Event: 101, Group: 1, Zone: 101}.Message()); err != nil {
			b.Fatal(err)
		}
		floor += (<-frames).Sub(start)
	}
	b.ReportMetric(float64(seam.Microseconds())/float64(n), "µs/forward")
	b.ReportMetric(float64(floor.Microseconds())/float64(n), "µs/floor-send")
	b.ReportMetric(float64(seam)/float64(floor), "x-floor")
}

package engine_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	vakt "github.com/vakt/vakt"
	"github.com/vakt/vakt/internal/fakeclock"
	"github.com/vakt/vakt/store"
)

// BenchmarkStorm measures P2's core: events from 500 transmitters arriving together
// are accepted durably (the driver's done callback, after the fsync'd commit) through
// group commit. In new-alarms every event opens an alarm (alarm row, two audit and
// outbox entries, routing, an offer) — the heaviest case; check-ins are supervision
// messages (event row and health). It reports events/s and the ratio to the single-event
// commit rate measured on the same disk in the same run.
func BenchmarkStorm(b *testing.B) {
	b.Run("new-alarms", func(b *testing.B) { storm(b, vakt.EventCall) })
	b.Run("check-ins", func(b *testing.B) { storm(b, vakt.EventCheckIn) })
}

// storm sends bursts of 500 events of kind, one per transmitter.
func storm(b *testing.B, kind vakt.EventKind) {
	floor := singleCommitRate(b)
	r := &rig{t: b, path: filepath.Join(b.TempDir(), "vakt.db"), clock: fakeclock.New(t0), phones: newPhones()}
	var txs []vakt.Transmitter
	for i := range 500 {
		t := room
		t.ID = vakt.TransmitterID(fmt.Sprintf("btn-%d", i))
		txs = append(txs, t)
	}
	r.transmitters = txs
	r.start(false)
	defer r.stop()

	const burst = 500
	var total int
	for b.Loop() {
		var wg sync.WaitGroup
		wg.Add(burst)
		for i := range burst {
			ev := vakt.Event{Transmitter: txs[i].ID, Kind: kind, Source: "bench"}
			for r.eng.Ingest(ev, func(err error) {
				if err != nil {
					b.Error(err)
				}
				wg.Done()
			}) != nil {
			}
		}
		wg.Wait()
		total += burst
		b.StopTimer()
		if kind != vakt.EventCall {
			b.StartTimer()
			continue
		}
		// Reset every button so the next burst opens new alarms, not repeats.
		wg.Add(burst)
		for i := range burst {
			_ = r.eng.Ingest(vakt.Event{Transmitter: txs[i].ID, Kind: vakt.EventCancel, Source: "bench"}, func(error) { wg.Done() })
		}
		wg.Wait()
		b.StartTimer()
	}
	rate := float64(total) / b.Elapsed().Seconds()
	b.ReportMetric(rate, "events/s")
	b.ReportMetric(floor, "floor-commits/s")
	b.ReportMetric(rate/floor, "x-floor")
	b.ReportMetric(0, "ns/op")
}

// singleCommitRate is how many one-event transactions per second this disk takes.
func singleCommitRate(b *testing.B) float64 {
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(b.TempDir(), "floor.db"), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	const n = 500
	start := time.Now()
	for range n {
		if err := db.Commit(ctx, &vakt.Batch{Events: []vakt.EventRecord{{Event: vakt.Event{Transmitter: "x", Kind: vakt.EventCheckIn, ReceivedAt: start}}}}); err != nil {
			b.Fatal(err)
		}
	}
	return n / time.Since(start).Seconds()
}

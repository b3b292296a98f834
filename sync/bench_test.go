package sync_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	cloudsync "github.com/vakt/vakt/sync"
	"github.com/vakt/vakt/sync/cloudsim"
	"github.com/vakt/vakt/sync/cloudsim/sqlitestore"
	"github.com/vakt/vakt/sync/wire"
)

func benchEntries() int {
	if n, err := strconv.Atoi(os.Getenv("VAKT_SYNC_BENCH_ENTRIES")); err == nil && n > 0 {
		return n // e.g. 1000000 for R3's simulated week
	}
	return 100_000
}

// BenchmarkDrain: a backlog (100,000 entries; VAKT_SYNC_BENCH_ENTRIES=1000000 for
// the week-long outage of R3) drained by the Uploader over loopback HTTP into the
// reference cloud's SQLite file (fsync'd commits). P5 wants ≥ 20,000 entries/s.
// floor_entries/s is the same rows appended straight into the cloud's storage in
// the same run (no HTTP, no gzip, no JSON): the ratio is what the wire costs.
//
//	go test -run xxx -bench Drain -benchtime 1x ./sync
func BenchmarkDrain(b *testing.B) {
	n := benchEntries()
	ctx := context.Background()

	// Floor: storage alone, same batch size.
	floorDB, err := sqlitestore.Open(ctx, filepath.Join(b.TempDir(), "floor.db"))
	if err != nil {
		b.Fatal(err)
	}
	src := newOutbox()
	src.add(n)
	all, _ := src.Pending(ctx, 0, n)
	envs := make([]wire.Envelope, len(all))
	for i, e := range all {
		envs[i] = wire.Envelope{Seq: e.Seq, Kind: e.Kind, V: 1, At: e.At, ClockSynced: true, Boot: e.Boot, Body: e.Body}
	}
	start := time.Now()
	for i := 0; i < len(envs); i += 1000 {
		if _, err := floorDB.Append(ctx, gateway, int64(i), envs[i:min(i+1000, len(envs))], 0); err != nil {
			b.Fatal(err)
		}
	}
	floor := float64(n) / time.Since(start).Seconds()
	floorDB.Close()

	s := startSim(b, cloudsim.Options{})
	ob := newOutbox()
	c, err := cloudsync.NewClient(cloudsync.Config{URL: s.url, Gateway: gateway, Token: token, AllowHTTP: true})
	if err != nil {
		b.Fatal(err)
	}
	u := cloudsync.NewUploader(c, ob, cloudsync.Options{})
	run(b, u)
	var drained time.Duration
	total := 0
	for b.Loop() {
		b.StopTimer()
		last := ob.add(n) // the backlog the outage left
		b.StartTimer()
		t0 := time.Now()
		u.Kick()
		ob.waitAcked(b, last)
		drained += time.Since(t0)
		total += n
	}
	if got := s.count(b); got != int64(total) {
		b.Fatalf("cloud holds %d entries, want %d", got, total)
	}
	rate := float64(total) / drained.Seconds()
	b.ReportMetric(rate, "entries/s")
	b.ReportMetric(floor, "floor_entries/s")
	b.ReportMetric(rate/floor, "ratio_to_floor")
	b.ReportMetric(0, "ns/op")
}

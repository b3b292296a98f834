package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	vakt "github.com/vakt/vakt"
	"github.com/vakt/vakt/store"
)

// BenchmarkCloudDrain measures P5: the drain rate of a backlog to cloudsim on
// loopback through the real gateway path (store read pool → uploader → cloudsim,
// SQLite synchronous=FULL → engine.AcknowledgeOutbox), the press → offer latency
// (MQTT publish to the embedded broker → the nearest nurse's WebSocket) measured
// while that drain runs, and the single-commit fsync floor of the same run. After
// the drain it presses on until no acknowledged row is left in the outbox table (the
// loop deletes them while idle): purged-s is that time from the drain's start,
// purge-press-p99-ms the presses' p99 meanwhile.
// VAKT_BENCH_BACKLOG sets the backlog (default 20,000; the P5 figure uses
// 1,000,000), VAKT_BENCH_BATCH cloud.batch_size [1000]. Run with -benchtime=1x:
// each iteration is one whole drain.
func BenchmarkCloudDrain(b *testing.B) {
	n := 20_000
	if v := os.Getenv("VAKT_BENCH_BACKLOG"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n <= 0 {
			b.Fatalf("VAKT_BENCH_BACKLOG=%q: want a positive number", v)
		}
	}
	floor := commitFloor(b)
	for b.Loop() {
		b.StopTimer()
		drainOnce(b, n, floor)
	}
}

func drainOnce(b *testing.B, n int, floor time.Duration) {
	cl := &cloud{t: b, port: freePort(b), dbPath: filepath.Join(b.TempDir(), "cloud.db")} // away while the backlog builds
	b.Cleanup(cl.stop)
	brokerPort, apiPort := freePort(b), freePort(b)
	extra := ""
	if v := os.Getenv("VAKT_BENCH_BATCH"); v != "" {
		extra = "  batch_size: " + v + "\n" // entries per upload (and per acknowledgement commit)
	}
	cfg := cloudDemoConfig(b, apiPort, brokerPort, cl.url(), extra)
	prefill(b, filepath.Join(filepath.Dir(cfg), "vakt.db"), n)

	m, c := startGateway(b, cfg, nil)
	nurse := c.phone("nurse-1", c.login("nurse-1", "demo"))
	pub := paho.NewClient(paho.NewClientOptions().AddBroker(fmt.Sprintf("tcp://127.0.0.1:%d", brokerPort)).SetClientID("bench-z2m"))
	if tok := pub.Connect(); tok.Wait() && tok.Error() != nil {
		b.Fatal(tok.Error())
	}
	defer pub.Disconnect(100)

	pressOnce := func() time.Duration {
		t0 := time.Now()
		pub.Publish("zigbee2mqtt/room101/sos", 1, false, `{"action":"emergency"}`)
		nurse.expect("offer")
		d := time.Since(t0)
		// Reset the button so its next press is a new alarm (not timed).
		errc := make(chan error, 1)
		if err := m.Engine.Ingest(vakt.Event{Transmitter: "room-101-sos", Kind: vakt.EventCancel, Source: "bench"},
			func(err error) { errc <- err }); err != nil {
			b.Fatal(err)
		}
		if err := <-errc; err != nil {
			b.Fatal(err)
		}
		nurse.expect("withdrawn")
		return d
	}
	// The same presses with the cloud away (no drain): the baseline.
	var quiet []time.Duration
	for range 200 {
		quiet = append(quiet, pressOnce())
	}

	cl.start()
	b.StartTimer()
	start := time.Now()
	m.Cloud.Retry()
	var lat []time.Duration
	for m.Cloud.up.Health().Acked < int64(n) { // Health is cheap; Stats counts the whole outbox
		lat = append(lat, pressOnce())
	}
	elapsed := time.Since(start)
	// The acknowledged rows are deleted after their acknowledgement, while the
	// loop is idle: press on until the last is gone (how long acknowledged entries
	// stay in the file, and what a press sees meanwhile).
	raw, err := sql.Open("sqlite", "file:"+filepath.Join(filepath.Dir(cfg), "vakt.db")+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		b.Fatal(err)
	}
	defer raw.Close()
	leftover := func() bool {
		var left bool
		if err := raw.QueryRow(`SELECT EXISTS (SELECT 1 FROM outbox
			WHERE seq <= (SELECT value FROM meta WHERE key = 'outbox_acked'))`).Scan(&left); err != nil {
			b.Fatal(err)
		}
		return left
	}
	var purging []time.Duration
	for leftover() {
		if time.Since(start) > 30*time.Minute {
			b.Fatal("acknowledged outbox rows still in the file 30 minutes after the drain started")
		}
		purging = append(purging, pressOnce())
	}
	purged := time.Since(start)
	slices.Sort(quiet)
	b.ReportMetric(float64(quiet[len(quiet)*99/100].Microseconds())/1000, "quiet-p99-ms")
	if len(lat) == 0 {
		b.Fatal("the drain ended before one press was measured")
	}
	slices.Sort(lat)
	b.ReportMetric(float64(n)/elapsed.Seconds(), "drain-entries/s")
	b.ReportMetric(elapsed.Seconds(), "drain-s")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "press-offer-p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "press-offer-p99-ms")
	b.ReportMetric(float64(len(lat)), "presses")
	b.ReportMetric(float64(floor.Microseconds())/1000, "floor-commit-ms")
	b.ReportMetric(purged.Seconds(), "purged-s") // from the drain's start until no acknowledged row is left
	if len(purging) > 0 {
		slices.Sort(purging)
		b.ReportMetric(float64(purging[len(purging)*99/100].Microseconds())/1000, "purge-press-p99-ms")
	}
	b.ReportMetric(0, "ns/op")
}

// prefill queues n alarm entries (realistic bodies, about 250 bytes) in the outbox
// of the database at path, 5,000 per commit, as a long cloud outage leaves it.
func prefill(b *testing.B, path string, n int) {
	ctx := context.Background()
	db, err := store.Open(ctx, path, store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	for done := 0; done < n; {
		batch := &vakt.Batch{Origin: vakt.OutboxOrigin{Boot: "b-prefill", ClockSynced: true}}
		for i := 0; i < 5000 && done < n; i++ {
			body, _ := json.Marshal(vakt.OutboxAlarm{ID: fmt.Sprintf("a-%d", done/4), Transition: "alarm.offered",
				Transmitter: "room-101-sos", Kind: "emergency", Priority: 1, State: "offered", Count: 1, Tier: 1,
				RaisedAt: at, At: at.Add(time.Duration(done) * time.Millisecond)})
			batch.Outbox = append(batch.Outbox, vakt.OutboxEntry{Kind: vakt.OutboxKindAlarm, Body: body, At: at})
			done++
		}
		if err := db.Commit(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
}

package main

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	vakt "github.com/vakt/vakt"
	"github.com/vakt/vakt/internal/fakeclock"
)

// R3 suite (scripts/outage-week.sh): the cloud is unreachable for a simulated week.
// The gateway runs in-process through its real path (engine → SQLite outbox →
// uploader → cloudsim over loopback HTTP → acknowledgement commit). A week of a
// site's records is generated at the maximum rate the engine takes: presses that
// raise and cancel alarms (alarm and audit entries) and check-ins with a battery
// level (health samples), while the wall clock (fakeclock.Wall) is stepped forward
// so the entries span seven days. The outbox is capped at half the entries made
// (cloud.backlog_max_entries); the stated policy is that health samples are
// compacted to the newest per transmitter and alarms, audit, visits are never
// dropped. Then the cloud returns and the backlog drains. Checked: every entry the
// outbox held when the cloud returned is in the cloud exactly once (none lost, none
// accepted twice), every alarm and audit entry made during the week among them, and
// the newest health sample of every transmitter. Printed: entries made, what the
// cap compacted, drain time and entries/s. VAKT_SUITE_OUTAGE_ENTRIES sets how many
// outbox entries the week makes (5,000 by default, in CI; 1,000,000 in the script).
func TestSuiteOutageWeek(t *testing.T) {
	target := envInt(t, "VAKT_SUITE_OUTAGE_ENTRIES", 5_000)
	ctx := context.Background()
	cl := &cloud{t: t, port: freePort(t), dbPath: filepath.Join(t.TempDir(), "cloud.db")} // away
	t.Cleanup(cl.stop)
	brokerPort, apiPort := freePort(t), freePort(t)
	cfg := cloudDemoConfig(t, apiPort, brokerPort, cl.url(), fmt.Sprintf("  backlog_max_entries: %d\n", target/2))
	clk := &fakeclock.Wall{}
	m := &Main{ConfigPath: cfg, Log: &lockedBuffer{}, Clock: clk}
	runMain(t, m)
	gwDB, err := sql.Open("sqlite", "file:"+filepath.Join(filepath.Dir(cfg), "vakt.db")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer gwDB.Close()
	outboxSeq := func() int64 {
		var n sql.NullInt64
		if err := gwDB.QueryRow(`SELECT max(seq) FROM outbox`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n.Int64
	}

	// The week, at the maximum rate: up to 256 events in flight.
	buttons := []vakt.TransmitterID{"room-101-sos", "room-102-sos", "room-201-sos", "room-202-fall"}
	checkers := []vakt.TransmitterID{"room-101-sos", "room-102-sos", "room-103-button", "room-104-bed",
		"room-110-button", "room-111-cord", "room-201-sos", "room-202-fall"}
	inflight := make(chan struct{}, 256)
	errc := make(chan error, 1)
	send := func(ev vakt.Event) {
		inflight <- struct{}{}
		for {
			err := m.Engine.Ingest(ev, func(err error) {
				if err != nil {
					select {
					case errc <- err:
					default:
					}
				}
				<-inflight
			})
			if err == nil {
				return
			}
			if err != vakt.ErrBusy {
				t.Fatal(err)
			}
			inflight <- struct{}{} // wait for one to finish, then retry
			<-inflight
		}
	}
	const week = 7 * 24 * time.Hour
	// About 2,500 entries come of each 2,000 events: step the clock so the target
	// spans a week.
	step := max(week*2500/time.Duration(target), time.Minute)
	genStart := time.Now()
	var events, steps int
	for outboxSeq() < int64(target) {
		for i := range 2000 {
			switch n := events + i; {
			case n%5 == 4: // a press, then its cancel: an alarm raised and withdrawn
				tx := buttons[(n/5)%len(buttons)]
				send(vakt.Event{Transmitter: tx, Kind: vakt.EventEmergency, Source: "suite"})
				send(vakt.Event{Transmitter: tx, Kind: vakt.EventCancel, Source: "suite"})
			default: // supervision with a battery level: a health sample
				bat := 100 - n%60
				send(vakt.Event{Transmitter: checkers[n%len(checkers)], Kind: vakt.EventCheckIn, Battery: &bat, Source: "suite"})
			}
		}
		events += 2000
		steps++
		clk.Jump(step) // the simulated week goes by
		select {
		case err := <-errc:
			t.Fatalf("an event was not committed: %v", err)
		default:
		}
	}
	for range cap(inflight) { // every event committed
		inflight <- struct{}{}
	}
	for range cap(inflight) {
		<-inflight
	}
	genTook := time.Since(genStart)
	made := outboxSeq()
	simulated := time.Duration(steps) * step
	if target >= 1_000_000 && simulated < week {
		t.Logf("outage-week: %d entries span %v of simulated time (less than a week: the steps are per 2,000 events)", made, simulated)
	}

	// The cap: compaction of health samples, never of alarms or audit.
	kinds := func(q string) map[string]int64 {
		rows, err := gwDB.Query(q)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		out := map[string]int64{}
		for rows.Next() {
			var k string
			var n int64
			if err := rows.Scan(&k, &n); err != nil {
				t.Fatal(err)
			}
			out[k] = n
		}
		return out
	}
	beforeCap := kinds(`SELECT kind, count(*) FROM outbox GROUP BY kind`)
	m.Cloud.CheckBacklog()
	eventually(t, "the backlog compacted", func() bool {
		st, err := m.DB.OutboxStats(ctx)
		return err == nil && st.HealthEntries == st.HealthTransmitters
	})
	held := kinds(`SELECT kind, count(*) FROM outbox GROUP BY kind`)
	for k, n := range beforeCap {
		if k != vakt.OutboxKindHealth && held[k] < n {
			t.Fatalf("the cap dropped %d %s entries (of %d)", n-held[k], k, n)
		}
	}
	seqs := func(db *sql.DB, q string, args ...any) map[int64]bool {
		rows, err := db.Query(q, args...)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		out := map[int64]bool{}
		for rows.Next() {
			var s int64
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			out[s] = true
		}
		return out
	}
	// The gateway runs on while the outbox is read (a start's audit entries, a
	// technical alarm about the outage): what it holds is what is there up to last.
	last := outboxSeq()
	want := seqs(gwDB, `SELECT seq FROM outbox WHERE seq <= ?`, last)
	newestHealth := seqs(gwDB, `SELECT max(seq) FROM outbox WHERE health_of IS NOT NULL AND seq <= ? GROUP BY health_of`, last)

	// The cloud returns.
	cl.start()
	drainStart := time.Now()
	m.Cloud.Retry()
	eventually2 := func() bool {
		acked, err := m.DB.OutboxAcked(ctx)
		return err == nil && acked >= last
	}
	for deadline := time.Now().Add(time.Duration(target/1000+60) * time.Second); !eventually2(); {
		if time.Now().After(deadline) {
			acked, _ := m.DB.OutboxAcked(ctx)
			t.Fatalf("drain not done: acknowledged up to %d of %d", acked, last)
		}
		<-time.After(20 * time.Millisecond)
	}
	drain := time.Since(drainStart)

	cloudDB, err := sql.Open("sqlite", "file:"+cl.dbPath+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer cloudDB.Close()
	var total, distinct int64
	if err := cloudDB.QueryRow(`SELECT count(*), count(DISTINCT seq) FROM entries WHERE gateway_id = ?`, demoGateway).
		Scan(&total, &distinct); err != nil {
		t.Fatal(err)
	}
	if total != distinct {
		t.Fatalf("the cloud holds %d entries for %d seqs: %d accepted twice", total, distinct, total-distinct)
	}
	got := seqs(cloudDB, `SELECT seq FROM entries WHERE gateway_id = ? AND seq <= ?`, demoGateway, last)
	lost := 0
	for s := range want {
		if !got[s] {
			lost++
		}
	}
	for s := range newestHealth {
		if !got[s] {
			t.Errorf("the newest health sample (seq %d) of a transmitter never reached the cloud", s)
		}
	}
	if lost > 0 || len(got) != len(want) {
		t.Fatalf("%d of the %d entries held when the cloud returned are missing from it; it holds %d up to seq %d", lost, len(want), len(got), last)
	}
	t.Logf("outage-week: %d events → %d outbox entries over %v simulated (%v to generate); by kind %v; "+
		"cap %d: health compacted to %d samples, alarm and audit kept: %v",
		events, made, simulated, genTook.Round(time.Millisecond), beforeCap, target/2, held[vakt.OutboxKindHealth], held)
	t.Logf("outage-week: drained %d entries in %v (%.0f entries/s); lost 0, accepted twice 0",
		len(want), drain.Round(time.Millisecond), float64(len(want))/drain.Seconds())
}

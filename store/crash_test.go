package store

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	vakt "github.com/vakt/vakt"
)

const (
	crashEnvDB    = "VAKT_STORE_CRASH_DB"
	crashEvents   = 10 // events per batch
	crashRounds   = 4
	crashMaxBatch = 1_000_000 // the helper stops by itself if never killed
)

// crashBatch is batch n of the helper: one alarm "a-<n>", its events, an audit entry
// and an outbox entry, as the engine would commit a new alarm.
func crashBatch(n int64) *vakt.Batch {
	id := vakt.AlarmID("a-" + strconv.FormatInt(n, 10))
	a := openAlarm()
	a.ID = id
	b := &vakt.Batch{
		Alarms: []vakt.Alarm{a},
		Audit:  []vakt.AuditRecord{{Actor: "transmitter:room-101-sos", Action: "alarm.raised", Subject: "alarm:" + string(id)}},
		Outbox: []vakt.OutboxEntry{{Kind: "alarm", Body: []byte(`{"id":"` + id + `"}`)}},
	}
	for i := range crashEvents {
		b.Events = append(b.Events, vakt.EventRecord{Alarm: id, Event: vakt.Event{
			Transmitter: "room-101-sos", Kind: vakt.EventEmergency, Source: "crash",
			SourceID: fmt.Sprintf("%d-%d", n, i), Raw: []byte("press"), ReceivedAt: t0}})
	}
	return b
}

// TestHelperProcess is the child of TestCrashSafety: it commits batches from
// NextAlarm on, printing each batch number only after Commit returned, the way a
// driver acknowledges an event only after its commit. It never ends by itself in
// practice; the parent kills it with SIGKILL.
func TestHelperProcess(t *testing.T) {
	path := os.Getenv(crashEnvDB)
	if path == "" {
		t.Skip("helper process of TestCrashSafety")
	}
	ctx := context.Background()
	db, err := Open(ctx, path, Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	s, err := db.Load(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	for n := s.NextAlarm; n < crashMaxBatch; n++ {
		if err := db.Commit(ctx, crashBatch(n)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		// One write(2) per line, unbuffered: a line the parent reads was
		// committed before it was written.
		if _, err := os.Stdout.WriteString(strconv.FormatInt(n, 10) + "\n"); err != nil {
			os.Exit(3)
		}
	}
	os.Exit(0)
}

// TestCrashSafety kills a committing process with SIGKILL at random moments and
// checks that every batch it reported committed is there, whole, after a restart
// (R1 for the store). SIGKILL loses the process, not the OS page cache: power loss
// additionally rests on synchronous=FULL's fsync, which this cannot show.
func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "vakt.db")
	var acked []int64
	for round := range crashRounds {
		cmd, r, stderr := startHelper(t, "TestHelperProcess", crashEnvDB, path)
		killAfter := 5 + rand.IntN(60)
		var got []int64
		killed := false
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				break // EOF after the kill; a partial last line was never acknowledged
			}
			n, err := strconv.ParseInt(strings.TrimSpace(line), 10, 64)
			if err != nil {
				continue // not ours (test framework output)
			}
			got = append(got, n)
			if !killed && len(got) == killAfter {
				if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
				killed = true
			}
		}
		err := cmd.Wait()
		if !killed || err == nil {
			t.Fatalf("round %d: helper ended by itself (%v): %s", round, err, stderr.String())
		}
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("round %d: helper did not die of SIGKILL: %v: %s", round, err, stderr.String())
		}
		t.Logf("round %d: killed after %d acknowledged batches (%d read in all)", round, killAfter, len(got))
		acked = append(acked, got...)

		db := openTest(t, path)
		if err := db.IntegrityCheck(ctx); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if err := db.VerifyAudit(ctx); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		for _, n := range acked {
			id := vakt.AlarmID("a-" + strconv.FormatInt(n, 10))
			if _, err := db.Alarm(ctx, id); err != nil {
				t.Fatalf("round %d: acknowledged batch %d lost: %v", round, n, err)
			}
			evs, err := db.EventsForAlarm(ctx, id)
			if err != nil || len(evs) != crashEvents {
				t.Fatalf("round %d: batch %d has %d of %d events (%v)", round, n, len(evs), crashEvents, err)
			}
		}
		s, err := db.Load(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if last := acked[len(acked)-1]; s.NextAlarm <= last {
			t.Fatalf("round %d: NextAlarm %d after acknowledged batch %d", round, s.NextAlarm, last)
		}
		// Whole batches only: as many audit entries as alarms, nothing half-done.
		var alarms, audits, events int64
		raw := rawDB(t, path)
		if err := raw.QueryRow(`SELECT (SELECT count(*) FROM alarms), (SELECT count(*) FROM audit),
			(SELECT count(*) FROM events)`).Scan(&alarms, &audits, &events); err != nil {
			t.Fatal(err)
		}
		raw.Close()
		if audits != alarms || events != alarms*crashEvents {
			t.Fatalf("round %d: %d alarms, %d audit entries, %d events: a batch was split", round, alarms, audits, events)
		}
		db.Close()
	}
}

// startHelper runs this test binary's test named run as a child process with env=path
// set, and returns it with its stdout to read and its stderr collected.
func startHelper(t *testing.T, run, env, path string) (*exec.Cmd, *bufio.Reader, *strings.Builder) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+run+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), env+"="+path)
	stderr := new(strings.Builder)
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, bufio.NewReader(out), stderr
}

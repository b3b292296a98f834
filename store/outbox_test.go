package store

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	vakt "github.com/vakt/vakt"
)

// purgeAcked deletes every acknowledged outbox row, as the engine's loop does a
// chunk at a time while idle.
func purgeAcked(t *testing.T, db *DB) {
	t.Helper()
	for {
		_, more, err := db.PurgeAckedOutbox(t.Context(), 100)
		if err != nil {
			t.Fatal(err)
		}
		if !more {
			return
		}
	}
}

// outboxMarker is entry i's body marker: text that must leave the files once the
// entry was acknowledged and purged.
func outboxMarker(i int) string { return fmt.Sprintf("outbox-marker-%03d-qz", i) }

// queueEntries commits n outbox entries, one per commit, the i-th (from 1) made at
// t0 + i s and carrying outboxMarker(i).
func queueEntries(t *testing.T, db *DB, n int) {
	t.Helper()
	for i := 1; i <= n; i++ {
		commit(t, db, &vakt.Batch{Outbox: []vakt.OutboxEntry{{Kind: vakt.OutboxKindAlarm,
			At: t0.Add(time.Duration(i) * time.Second), Body: []byte(`{"id":"` + outboxMarker(i) + `"}`)}}})
	}
}

func pendingSeqs(t *testing.T, db *DB, after int64) []int64 {
	t.Helper()
	entries, err := db.PendingOutbox(t.Context(), after, 0)
	if err != nil {
		t.Fatal(err)
	}
	var seqs []int64
	for _, e := range entries {
		seqs = append(seqs, e.Seq)
	}
	return seqs
}

func rawOutboxSeqs(t *testing.T, path string) []int64 {
	t.Helper()
	rows, err := rawDB(t, path).Query(`SELECT seq FROM outbox ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var seqs []int64
	for rows.Next() {
		var s int64
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, s)
	}
	return seqs
}

func seqRange(from, to int64) []int64 {
	var s []int64
	for i := from; i <= to; i++ {
		s = append(s, i)
	}
	return s
}

// TestAckedEntriesLeaveReadsAtOnceAndTheFileByPurge (P5): an acknowledgement is a
// watermark. At once, nothing acknowledged is read again (the uploader, the
// backlog's count and age, the cap's statistics), while the rows are still in the
// table; PurgeAckedOutbox then deletes them oldest first, limit rows per call, and
// says whether any remain; after a checkpoint their bytes are gone from the files.
func TestAckedEntriesLeaveReadsAtOnceAndTheFileByPurge(t *testing.T) {
	ctx := t.Context()
	db, path := newTestDB(t)
	queueEntries(t, db, 10)
	commit(t, db, &vakt.Batch{OutboxAckedUpTo: 6})
	commit(t, db, &vakt.Batch{OutboxAckedUpTo: 3}) // late and lower: changes nothing

	if got := pendingSeqs(t, db, 0); !slices.Equal(got, seqRange(7, 10)) {
		t.Errorf("pending after the ack = %v, want 7..10", got)
	}
	if got := pendingSeqs(t, db, 8); !slices.Equal(got, seqRange(9, 10)) {
		t.Errorf("pending after seq 8 = %v, want 9..10", got)
	}
	if n, _ := db.OutboxLen(ctx); n != 4 {
		t.Errorf("OutboxLen = %d, want 4", n)
	}
	st, err := db.OutboxStats(ctx)
	if err != nil || st.Entries != 4 || !st.Oldest.Equal(t0.Add(7*time.Second)) {
		t.Errorf("OutboxStats = %+v, %v; want 4 entries, the oldest made at t0+7s", st, err)
	}
	if n, _ := db.OutboxAcked(ctx); n != 6 {
		t.Errorf("OutboxAcked = %d, want 6", n)
	}
	if got := rawOutboxSeqs(t, path); !slices.Equal(got, seqRange(1, 10)) {
		t.Fatalf("precondition: the acknowledgement deleted rows itself (table holds %v)", got)
	}

	n, more, err := db.PurgeAckedOutbox(ctx, 4)
	if err != nil || n != 4 || !more {
		t.Fatalf("first purge = %d, %v, %v; want 4 deleted and more", n, more, err)
	}
	if got := rawOutboxSeqs(t, path); !slices.Equal(got, seqRange(5, 10)) {
		t.Errorf("after the first purge the table holds %v, want 5..10 (oldest first)", got)
	}
	if n, more, err = db.PurgeAckedOutbox(ctx, 4); err != nil || n != 2 || more {
		t.Fatalf("second purge = %d, %v, %v; want 2 deleted and none left", n, more, err)
	}
	if n, more, err = db.PurgeAckedOutbox(ctx, 4); err != nil || n != 0 || more {
		t.Fatalf("purge of nothing = %d, %v, %v", n, more, err)
	}
	if got := rawOutboxSeqs(t, path); !slices.Equal(got, seqRange(7, 10)) {
		t.Errorf("after the purge the table holds %v, want 7..10", got)
	}
	if n, _ := db.OutboxLen(ctx); n != 4 {
		t.Errorf("OutboxLen after the purge = %d, want 4 (the purge counts nothing twice)", n)
	}

	// secure_delete zeroed the purged rows; the checkpoint writes those pages back
	// and empties the WAL that held the old ones.
	if err := db.checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	var gone, kept []any
	for i := 1; i <= 10; i++ {
		if i <= 6 {
			gone = append(gone, outboxMarker(i))
		} else {
			kept = append(kept, outboxMarker(i))
		}
	}
	if hits := found(t, path, needles(gone...)); len(hits) > 0 {
		t.Errorf("purged entries still in the files: %v", hits)
	}
	if hits := found(t, path, needles(kept...)); len(hits) != len(kept) {
		t.Errorf("pending entries missing from the files: found only %v", hits)
	}
}

// TestCompactionAndRetentionSkipAckedRows: the health compaction and the
// retention's own outbox deletion (cloud sync off) count only what is above the
// watermark, so the cached backlog stays equal to what the reads see.
func TestCompactionAndRetentionSkipAckedRows(t *testing.T) {
	ctx := t.Context()
	db, _ := newTestDB(t)
	health := func(battery int) vakt.OutboxEntry {
		return vakt.OutboxEntry{Kind: vakt.OutboxKindHealth, At: t0,
			Body: []byte(fmt.Sprintf(`{"transmitter":"room-101-sos","battery":%d}`, battery))}
	}
	for b := range 4 {
		commit(t, db, &vakt.Batch{Outbox: []vakt.OutboxEntry{health(90 - b)}})
	}
	commit(t, db, &vakt.Batch{OutboxAckedUpTo: 2})
	commit(t, db, &vakt.Batch{CompactHealth: true})
	if got := pendingSeqs(t, db, 0); !slices.Equal(got, []int64{4}) {
		t.Errorf("pending after compaction = %v, want [4]", got)
	}
	if n, _ := db.OutboxLen(ctx); n != 1 {
		t.Errorf("OutboxLen after compaction = %d, want 1", n)
	}

	queueEntries(t, db, 3) // seqs 5..7, made at t0+1s..t0+3s
	commit(t, db, &vakt.Batch{OutboxAckedUpTo: 5})
	cut := t0.Add(time.Hour)
	res, err := db.PurgeRetention(ctx, vakt.RetentionPurge{Alarms: cut, Events: cut, Visits: cut, EPR: cut,
		Audit: cut, At: cut})
	if err != nil {
		t.Fatal(err)
	}
	if res.Outbox != 2 {
		t.Errorf("retention deleted %d outbox entries, want 2 (6 and 7; 5 was acknowledged)", res.Outbox)
	}
	if n, _ := db.OutboxLen(ctx); n != 1 { // the retention's own audit entry
		t.Errorf("OutboxLen after retention = %d, want 1", n)
	}
}

const ackCrashEnvDB = "VAKT_STORE_ACK_CRASH_DB"

// TestHelperAckThenHang is the child of TestAckedNotResentAfterKill: it queues
// entries, commits an acknowledgement of the first ones, says so, and waits to be
// killed before any purge.
func TestHelperAckThenHang(t *testing.T) {
	path := os.Getenv(ackCrashEnvDB)
	if path == "" {
		t.Skip("helper process of TestAckedNotResentAfterKill")
	}
	db, err := Open(context.Background(), path, Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	queueEntries(t, db, 10)
	if err := db.Commit(context.Background(), &vakt.Batch{OutboxAckedUpTo: 6}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	os.Stdout.WriteString("acked\n")
	select {} // killed here
}

// TestAckedNotResentAfterKill: a gateway killed with SIGKILL between an
// acknowledgement's commit and the deletion of the rows it covers re-sends none of
// them after the restart: the uploader resumes after the watermark, the backlog
// counts only the rest, and the first purge removes the leftovers.
func TestAckedNotResentAfterKill(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	path := filepath.Join(t.TempDir(), "vakt.db")
	cmd, r, stderr := startHelper(t, "TestHelperAckThenHang", ackCrashEnvDB, path)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("helper ended before acknowledging: %v; stderr: %s", err, stderr.String())
		}
		if strings.TrimSpace(line) == "acked" {
			break
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()

	if got := rawOutboxSeqs(t, path); !slices.Equal(got, seqRange(1, 10)) {
		t.Fatalf("precondition: the kill should leave the acknowledged rows in the table, it holds %v", got)
	}
	db := openTest(t, path)
	ctx := t.Context()
	acked, err := db.OutboxAcked(ctx)
	if err != nil || acked != 6 {
		t.Fatalf("OutboxAcked after the kill = %d, %v; want 6", acked, err)
	}
	// What the uploader reads at its start: after Acked, and after 0 too.
	if got := pendingSeqs(t, db, acked); !slices.Equal(got, seqRange(7, 10)) {
		t.Errorf("pending after the watermark = %v, want 7..10", got)
	}
	if got := pendingSeqs(t, db, 0); !slices.Equal(got, seqRange(7, 10)) {
		t.Errorf("pending from 0 = %v, want 7..10: acknowledged entries would be sent again", got)
	}
	if n, _ := db.OutboxLen(ctx); n != 4 {
		t.Errorf("OutboxLen after the kill = %d, want 4", n)
	}
	purgeAcked(t, db)
	if got := rawOutboxSeqs(t, path); !slices.Equal(got, seqRange(7, 10)) {
		t.Errorf("after the purge the table holds %v, want 7..10", got)
	}
}

// TestLocalOnlyQueuesNothing (P6): with no cloud configured a commit writes its
// rows and chains its audit entries as ever but queues nothing for a cloud — no
// outbox row, no page of one — and entries queued while a cloud was configured
// stay until acknowledged.
func TestLocalOnlyQueuesNothing(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "vakt.db")
	withCloud := openTest(t, path)
	batch := func() *vakt.Batch {
		return &vakt.Batch{
			Alarms: []vakt.Alarm{openAlarm()},
			Audit:  []vakt.AuditRecord{{At: t0, Actor: "system", Action: "alarm.raised", Subject: "alarm:a-1"}},
			Outbox: []vakt.OutboxEntry{{Kind: vakt.OutboxKindAlarm, At: t0, Body: []byte(`{"id":"a-1"}`)}},
		}
	}
	if err := withCloud.Commit(ctx, batch()); err != nil {
		t.Fatal(err)
	}
	withCloud.Close()

	db, err := Open(ctx, path, Options{Now: func() time.Time { return t0 }, LocalOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for range 3 {
		if err := db.Commit(ctx, batch()); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := db.OutboxLen(ctx); err != nil || n != 2 {
		t.Fatalf("OutboxLen = %d, %v; want the 2 entries queued while a cloud was configured", n, err)
	}
	var rows int
	if err := rawDB(t, path).QueryRow(`SELECT count(*) FROM outbox`).Scan(&rows); err != nil || rows != 2 {
		t.Fatalf("%d outbox rows (%v), want 2: a local-only commit queued something", rows, err)
	}
	if n, err := db.VerifyAuditCount(ctx); err != nil || n != 4 {
		t.Fatalf("audit chain: %d entries, %v; want all 4 chained", n, err)
	}
}

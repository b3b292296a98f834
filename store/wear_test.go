package store

import (
	"context"
	"database/sql"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	vakt "github.com/vakt/vakt"
)

// walTables reads the WAL file beside path as SQLite left it (frames of the current
// salt, from the start) and counts the frames by the table or index their page
// belongs to (dbstat, read through raw after the frames were parsed): what the
// commits since the last checkpoint wrote to the SD card. Page 1 is "page1".
func walTables(t *testing.T, path string, raw *sql.DB) map[string]int {
	t.Helper()
	data, err := os.ReadFile(path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	if len(data) < 32 {
		return map[string]int{}
	}
	pageSize := int(binary.BigEndian.Uint32(data[8:12]))
	salt := data[16:24]
	var pages []uint32
	for off := 32; off+24+pageSize <= len(data); off += 24 + pageSize {
		h := data[off : off+24]
		if string(h[8:16]) != string(salt) {
			break // a frame of an earlier WAL generation
		}
		pages = append(pages, binary.BigEndian.Uint32(h[0:4]))
	}
	owner := map[uint32]string{1: "page1"}
	rows, err := raw.Query(`SELECT pageno, name FROM dbstat WHERE pageno <> 1`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var p uint32
		var name string
		if err := rows.Scan(&p, &name); err != nil {
			t.Fatal(err)
		}
		owner[p] = name
	}
	got := map[string]int{}
	for _, p := range pages {
		name, ok := owner[p]
		if !ok {
			name = "free"
		}
		got[name]++
	}
	return got
}

// TestOutboxCommitWritesNoSequencePage: queuing outbox entries (every alarm change
// and audit entry does) no longer rewrites AUTOINCREMENT's sqlite_sequence row, one
// 1 KB page per commit on the SD card and again at the checkpoint (P6).
func TestOutboxCommitWritesNoSequencePage(t *testing.T) {
	ctx := context.Background()
	db, path := newTestDB(t)
	commit(t, db, fullBatch())
	if err := db.checkpoint(ctx); err != nil { // an empty WAL: only the next commit's frames
		t.Fatal(err)
	}
	commit(t, db, &vakt.Batch{
		Outbox: []vakt.OutboxEntry{{Kind: "alarm", Body: []byte(`{"id":"a-9"}`)}},
		Audit:  []vakt.AuditRecord{{Actor: "system", Action: "alarm.raised", Subject: "alarm:a-9"}},
	})
	raw := rawDB(t, path)
	got := walTables(t, path, raw)
	if got["outbox"] == 0 || got["audit"] == 0 {
		t.Fatalf("the commit's frames by table = %v; want the outbox and audit pages", got)
	}
	if n := got["sqlite_sequence"]; n != 0 {
		t.Errorf("the commit wrote %d sqlite_sequence frames (all: %v); want none", n, got)
	}
	var ddl string
	if err := raw.QueryRow(`SELECT sql FROM sqlite_schema WHERE name = 'outbox'`).Scan(&ddl); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(strings.ToUpper(ddl), "AUTOINCREMENT") {
		t.Errorf("outbox is still AUTOINCREMENT: %s", ddl)
	}
}

// oldDB makes a database at schema version 5 (before 0006), as a gateway of the
// previous release left it, by running the first five migrations.
func oldDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	raw := rawDB(t, path)
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(names)
	for _, name := range names[:5] {
		body, err := migrations.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		execSQL(t, raw, string(body))
	}
	execSQL(t, raw, `PRAGMA user_version = 5`)
	return raw
}

// TestOutboxMigrationKeepsSeqs: a database of the previous release, whose outbox was
// AUTOINCREMENT, keeps its entries (every column) across 0006's rebuild, and a seq
// it used before is never handed out again, also when the entries holding the
// highest seqs were deleted without an acknowledgement on record (sync off).
func TestOutboxMigrationKeepsSeqs(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "vakt.db")
	raw := oldDB(t, path)
	for i := 1; i <= 12; i++ {
		execSQL(t, raw, `INSERT INTO outbox (kind, body, at, v, clock_synced, boot, since_boot_ms, health_of)
			VALUES ('health', ?, ?, 2, 1, 'boot-1', ?, ?)`, []byte(fmt.Sprintf(`{"n":%d}`, i)), int64(i), int64(i*10), fmt.Sprintf("t-%d", i%3))
	}
	execSQL(t, raw, `DELETE FROM outbox WHERE seq > 3`) // 4..12 used and gone (retention, sync off)
	raw.Close()

	db := openTest(t, path)
	all, err := db.Outbox(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 3 || all[0].Seq != 1 || all[2].Seq != 3 || string(all[1].Body) != `{"n":2}` || all[1].V != 2 ||
		all[1].Origin.Boot != "boot-1" || !all[1].Origin.ClockSynced || all[1].Origin.SinceBoot.Milliseconds() != 20 {
		t.Errorf("entries after the migration = %+v", all)
	}
	b := &vakt.Batch{Outbox: []vakt.OutboxEntry{{Kind: "alarm", Body: []byte(`{}`)}}}
	commit(t, db, b)
	if b.Outbox[0].Seq != 13 {
		t.Errorf("first seq after the migration = %d, want 13 (12 was used before)", b.Outbox[0].Seq)
	}
	var idx int
	if err := db.r.QueryRow(`SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND name = 'outbox_health'`).Scan(&idx); err != nil || idx != 1 {
		t.Errorf("outbox_health index: %d, %v; want it rebuilt", idx, err)
	}
	// Health compaction still finds its rows through the rebuilt index.
	commit(t, db, &vakt.Batch{CompactHealth: true})
	if n, _ := db.OutboxLen(ctx); n != 4 {
		t.Errorf("OutboxLen after compaction = %d, want 4 (three transmitters' last samples and the alarm)", n)
	}
}

// TestOutboxSeqAfterRetentionEmptied: with sync off, retention may delete every
// queued entry; the seqs it deleted stay used after a restart.
func TestOutboxSeqAfterRetentionEmptied(t *testing.T) {
	ctx := context.Background()
	db, path := newTestDB(t)
	seedHistory(t, db)
	before, err := db.Outbox(ctx, 0, 0)
	if err != nil || len(before) == 0 {
		t.Fatalf("seeded outbox: %d entries, %v", len(before), err)
	}
	last := before[len(before)-1].Seq
	if _, err := db.PurgeRetention(ctx, purgeAll(t0.Add(24*60*60e9), false)); err != nil { // everything is older
		t.Fatal(err)
	}
	left, err := db.Outbox(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 1 || left[0].Seq != last+1 {
		t.Fatalf("after the purge: %+v; want only its own audit entry, seq %d", left, last+1)
	}
	// With that entry gone too (behind the store's back), the seqs the purge
	// deleted stay used after a restart: outbox_floor.
	db.Close()
	raw := rawDB(t, path)
	execSQL(t, raw, `DELETE FROM outbox`)
	raw.Close()
	db = openTest(t, path)
	b := &vakt.Batch{Outbox: []vakt.OutboxEntry{{Kind: "alarm", Body: []byte(`{}`)}}}
	commit(t, db, b)
	if b.Outbox[0].Seq <= last {
		t.Errorf("seq after the purge and a restart = %d; want above %d", b.Outbox[0].Seq, last)
	}
	if err := db.VerifyAudit(ctx); err != nil {
		t.Errorf("VerifyAudit: %v", err)
	}
}

// TestHealthSamplesAppendToTheirIndex (P6): with thousands of health samples queued
// (the cloud away, or sync off), a commit queuing one sample for each of 23
// transmitters writes a few pages of the samples' index (a leaf and its parents),
// not about one per sample (36 before migration 0007): the index is ordered by seq,
// so new samples append to its rightmost leaf.
func TestHealthSamplesAppendToTheirIndex(t *testing.T) {
	ctx := context.Background()
	db, path := newTestDB(t)
	sample := func(tx string, lq int) vakt.OutboxEntry {
		b, _ := json.Marshal(vakt.OutboxHealth{Transmitter: tx, LastSeen: t0, LinkQuality: &lq, Online: true})
		return vakt.OutboxEntry{Kind: vakt.OutboxKindHealth, Body: b}
	}
	for round := range 8 { // 4,000 samples of 500 transmitters
		b := &vakt.Batch{}
		for i := range 500 {
			b.Outbox = append(b.Outbox, sample(fmt.Sprintf("btn-%03d", i), round))
		}
		commit(t, db, b)
	}
	if err := db.checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	b := &vakt.Batch{}
	for i := range 23 {
		b.Outbox = append(b.Outbox, sample(fmt.Sprintf("btn-%03d", (i*211)%500), 99))
	}
	commit(t, db, b)
	got := walTables(t, path, rawDB(t, path))
	if n := got["outbox_health"]; n == 0 || n > 5 {
		t.Errorf("23 samples wrote %d pages of outbox_health (all: %v); want 1 to 5", n, got)
	}
}

package store

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"sync"
	"testing"
	"time"

	vakt "github.com/vakt/vakt"
)

// t0 is the tests' fixed "now"; times carry nanoseconds to prove they survive.
var t0 = time.Date(2025, 3, 14, 9, 26, 53, 589793238, time.UTC)

func openTest(t testing.TB, path string) *DB {
	t.Helper()
	db, err := Open(context.Background(), path, Options{Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func newTestDB(t testing.TB) (*DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "vakt.db")
	return openTest(t, path), path
}

// rawDB opens the file behind the store's back, as an attacker or a test would.
func rawDB(t testing.TB, path string) *sql.DB {
	t.Helper()
	raw, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	return raw
}

func execSQL(t testing.TB, db *sql.DB, query string, args ...any) {
	t.Helper()
	if _, err := db.Exec(query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

func commit(t testing.TB, db *DB, b *vakt.Batch) {
	t.Helper()
	if err := db.Commit(context.Background(), b); err != nil {
		t.Fatal(err)
	}
}

func ptr[T any](v T) *T { return &v }

func openAlarm() vakt.Alarm {
	return vakt.Alarm{
		ID: "a-7", Transmitter: "room-101-sos", Kind: vakt.EventEmergency, Priority: vakt.PriorityEmergency,
		State: vakt.StateOffered, RaisedAt: t0, UpdatedAt: t0.Add(2 * time.Second), Count: 2,
		Policy: "emergency", Tier: 2, TierStartedAt: t0.Add(time.Second), Round: 1,
		Offers: []vakt.Offer{
			{Staff: "s-1", Tier: 1, Status: vakt.OfferRejected, OfferedAt: t0.Add(10 * time.Millisecond), DistanceM: 23.5},
			{Staff: "s-2", Tier: 2, Status: vakt.OfferDelivered, OfferedAt: t0.Add(time.Second), DistanceM: -1},
		},
		Deadline: t0.Add(31*time.Second + 7),
	}
}

func fullBatch() *vakt.Batch {
	done := openAlarm()
	done.ID, done.State, done.Assignee, done.AcceptedAt = "a-3", vakt.StateCompleted, "s-1", t0.Add(-time.Minute)
	done.RaisedAt = t0.Add(-time.Hour)
	return &vakt.Batch{
		Events: []vakt.EventRecord{
			{Event: vakt.Event{Transmitter: "room-101-sos", Kind: vakt.EventEmergency, Source: "mqtt",
				SourceID: "z2m/room-101-sos#1", Raw: []byte(`{"action":"emergency"}`), ReceivedAt: t0,
				Battery: ptr(87), LinkQuality: ptr(120)}, Alarm: "a-7"},
			{Event: vakt.Event{Transmitter: "room-101-sos", Kind: vakt.EventEmergency, Source: "mqtt",
				SourceID: "z2m/room-101-sos#1", ReceivedAt: t0.Add(time.Millisecond)}, Alarm: "a-7", Duplicate: true},
			{Event: vakt.Event{Transmitter: "espa-12", Kind: vakt.EventCheckIn, Source: "espa:/dev/ttyUSB0",
				SourceID: "", Text: "alive", ReceivedAt: t0}},
			{Event: vakt.Event{Transmitter: "door-2", Kind: vakt.EventCheckIn, Source: "mqtt",
				SourceID: "old", ReceivedAt: t0.Add(-48 * time.Hour)}},
		},
		Alarms: []vakt.Alarm{openAlarm(), done},
		Directory: []vakt.Staff{
			{ID: "s-1", Name: "Anna A", Phone: "+4790000001", Email: "anna@example.org", Roles: []string{"nurse"}, SecretHash: "$2a$10$x", Zone: "east"},
			{ID: "s-2", Name: "Bo B", Phone: "+4790000002", Email: "bo@example.org"},
		},
		Staff: []vakt.StaffState{
			{Staff: "s-1", OnDuty: true, Availability: vakt.Available, LastOfferedAt: t0,
				Position: &vakt.Position{Lat: 59.9139123, Lon: 10.7522456, Floor: 1, AccuracyM: 8.5, At: t0}},
			{Staff: "s-2", OnDuty: false, Availability: vakt.Away},
		},
		Health: []vakt.TransmitterHealth{
			{Transmitter: "espa-12", LastSeen: t0},
			{Transmitter: "room-101-sos", LastSeen: t0, Battery: ptr(87), LinkQuality: ptr(120), Online: true},
		},
		Visits: []vakt.Visit{
			{ID: "v-1", Staff: "s-1", Room: "101", Resident: "r-77", Start: t0, Alarm: "a-7"},
			{ID: "v-0", Staff: "s-1", Room: "102", Start: t0.Add(-time.Hour), End: t0.Add(-50 * time.Minute), Note: "assisted"},
		},
		EPR:    []vakt.EPRRecord{{Visit: "v-0", System: "dips", SentAt: t0.Add(-40 * time.Minute), Staff: "s-1"}},
		Audit:  []vakt.AuditRecord{{At: t0, Actor: "transmitter:room-101-sos", Action: "alarm.raised", Subject: "alarm:a-7"}},
		Outbox: []vakt.OutboxEntry{{Kind: "alarm", Body: []byte(`{"id":"a-7"}`), At: t0}},
	}
}

func TestCommitLoadRoundTrip(t *testing.T) {
	ctx := context.Background()
	db, path := newTestDB(t)
	b := fullBatch()
	commit(t, db, b)

	check := func(t *testing.T, db *DB) {
		s, err := db.Load(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if want := []vakt.Alarm{openAlarm()}; !reflect.DeepEqual(s.OpenAlarms, want) {
			t.Errorf("open alarms:\n got %+v\nwant %+v", s.OpenAlarms, want)
		}
		if !reflect.DeepEqual(s.Directory, b.Directory) {
			t.Errorf("directory:\n got %+v\nwant %+v", s.Directory, b.Directory)
		}
		if !reflect.DeepEqual(s.Staff, b.Staff) {
			t.Errorf("staff:\n got %+v\nwant %+v", s.Staff, b.Staff)
		}
		if !reflect.DeepEqual(s.Health, b.Health) {
			t.Errorf("health:\n got %+v\nwant %+v", s.Health, b.Health)
		}
		if want := b.Visits[:1]; !reflect.DeepEqual(s.OpenVisits, want) {
			t.Errorf("open visits:\n got %+v\nwant %+v", s.OpenVisits, want)
		}
		// "old" is outside the 24 h window but among the last events, which count
		// whatever the clock says.
		wantSeen := map[string]vakt.AlarmID{"mqtt\x00z2m/room-101-sos#1": "a-7", "mqtt\x00old": ""}
		if !reflect.DeepEqual(s.SeenSources, wantSeen) {
			t.Errorf("seen sources: got %q, want %q", s.SeenSources, wantSeen)
		}
		if s.NextAlarm != 8 {
			t.Errorf("next alarm = %d, want 8", s.NextAlarm)
		}

		done, err := db.Alarm(ctx, "a-3")
		if err != nil || done.State != vakt.StateCompleted || done.Assignee != "s-1" || !done.AcceptedAt.Equal(t0.Add(-time.Minute)) {
			t.Errorf("Alarm(a-3) = %+v, %v", done, err)
		}
		if _, err := db.Alarm(ctx, "a-404"); !errors.Is(err, vakt.ErrNotFound) {
			t.Errorf("Alarm(a-404) err = %v, want ErrNotFound", err)
		}
		hist, err := db.AlarmHistory(ctx, time.Time{}, 0)
		if err != nil || len(hist) != 2 || hist[0].ID != "a-7" || hist[1].ID != "a-3" {
			t.Errorf("AlarmHistory(all) = %v, %v", hist, err)
		}
		if hist, _ := db.AlarmHistory(ctx, t0.Add(-time.Minute), 10); len(hist) != 1 || hist[0].ID != "a-7" {
			t.Errorf("AlarmHistory(since) = %v", hist)
		}
		if hist, _ := db.AlarmHistory(ctx, time.Time{}, 1); len(hist) != 1 {
			t.Errorf("AlarmHistory(limit 1) = %d alarms", len(hist))
		}
		evs, err := db.EventsForAlarm(ctx, "a-7")
		if err != nil {
			t.Fatal(err)
		}
		if want := b.Events[:2]; !reflect.DeepEqual(evs, want) {
			t.Errorf("events:\n got %+v\nwant %+v", evs, want)
		}
		visits, err := db.Visits(ctx, "s-1")
		if err != nil || len(visits) != 2 || visits[0].ID != "v-0" || visits[0].Note != "assisted" {
			t.Errorf("Visits(s-1) = %+v, %v", visits, err)
		}
	}
	t.Run("open", func(t *testing.T) { check(t, db) })
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	t.Run("reopened", func(t *testing.T) { check(t, openTest(t, path)) })
}

func TestAlarmUpsertKeepsIdentity(t *testing.T) {
	ctx := context.Background()
	db, _ := newTestDB(t)
	a := openAlarm()
	commit(t, db, &vakt.Batch{Alarms: []vakt.Alarm{a}})
	a.State, a.Assignee, a.AcceptedAt, a.Deadline, a.Offers = vakt.StateAccepted, "s-2", t0.Add(5*time.Second), time.Time{}, nil
	a.Count, a.Priority = 3, vakt.PriorityHigh
	moved := a
	moved.RaisedAt = t0.Add(time.Hour) // an engine bug must not rewrite history
	commit(t, db, &vakt.Batch{Alarms: []vakt.Alarm{moved}})
	got, err := db.Alarm(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, a) {
		t.Errorf("after update:\n got %+v\nwant %+v", got, a)
	}
}

func TestCompletedAlarmsNotLoaded(t *testing.T) {
	ctx := context.Background()
	db, _ := newTestDB(t)
	var alarms []vakt.Alarm
	for i, st := range []vakt.AlarmState{vakt.StateRaised, vakt.StateOffered, vakt.StateAccepted,
		vakt.StatePresent, vakt.StateCompleted, vakt.StateCancelled, vakt.StateForwarded} {
		a := openAlarm()
		a.ID, a.State, a.RaisedAt = vakt.AlarmID("a-"+string(rune('1'+i))), st, t0.Add(time.Duration(i)*time.Second)
		alarms = append(alarms, a)
	}
	commit(t, db, &vakt.Batch{Alarms: alarms})
	s, err := db.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []vakt.AlarmState
	for _, a := range s.OpenAlarms {
		got = append(got, a.State)
	}
	want := []vakt.AlarmState{vakt.StateRaised, vakt.StateOffered, vakt.StateAccepted, vakt.StatePresent, vakt.StateForwarded}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("open states = %v, want %v", got, want)
	}
	// Completing an open alarm takes it out.
	a := alarms[0]
	a.State = vakt.StateCompleted
	commit(t, db, &vakt.Batch{Alarms: []vakt.Alarm{a}})
	if s, _ := db.Load(ctx); len(s.OpenAlarms) != 4 {
		t.Errorf("after completing one: %d open, want 4", len(s.OpenAlarms))
	}
}

func TestNextAlarmSurvivesDeletion(t *testing.T) {
	ctx := context.Background()
	db, path := newTestDB(t)
	s, err := db.Load(ctx)
	if err != nil || s.NextAlarm != 1 {
		t.Fatalf("empty: NextAlarm = %v, %v; want 1", s.NextAlarm, err)
	}
	var alarms []vakt.Alarm
	for _, id := range []vakt.AlarmID{"a-41", "a-9", "tech-x", "a-40"} {
		a := openAlarm()
		a.ID = id
		alarms = append(alarms, a)
	}
	commit(t, db, &vakt.Batch{Alarms: alarms})
	execSQL(t, rawDB(t, path), `DELETE FROM alarms`) // retention
	db.Close()
	db = openTest(t, path)
	if s, _ := db.Load(ctx); s.NextAlarm != 42 {
		t.Errorf("NextAlarm = %d, want 42", s.NextAlarm)
	}
	a := openAlarm()
	a.ID = "a-42"
	commit(t, db, &vakt.Batch{Alarms: []vakt.Alarm{a}})
	if s, _ := db.Load(ctx); s.NextAlarm != 43 {
		t.Errorf("NextAlarm = %d, want 43", s.NextAlarm)
	}
}

func TestFailedCommitLeavesNothing(t *testing.T) {
	ctx := context.Background()
	db, path := newTestDB(t)
	good := fullBatch()
	commit(t, db, good)
	seq, hash := db.AuditHead()
	outbox, _ := db.OutboxLen(ctx)
	before, _ := db.Load(ctx)

	bad := fullBatch()
	bad.Alarms[0].ID = "a-99"
	bad.Alarms[1].State = "bogus" // violates the CHECK constraint after the events went in
	bad.Events[0].SourceID = "new"
	bad.Audit = append(bad.Audit, bad.Audit[0], bad.Audit[0])
	if err := db.Commit(ctx, bad); err == nil {
		t.Fatal("Commit of a bad batch succeeded")
	}
	if bad.Outbox[0].Seq != 0 {
		t.Errorf("failed commit assigned outbox seq %d", bad.Outbox[0].Seq)
	}
	if s, h := db.AuditHead(); s != seq || h != hash {
		t.Errorf("audit head moved to %d after a failed commit (was %d)", s, seq)
	}
	if n, _ := db.OutboxLen(ctx); n != outbox {
		t.Errorf("outbox len %d after failed commit, want %d", n, outbox)
	}
	after, _ := db.Load(ctx)
	if !reflect.DeepEqual(after, before) {
		t.Errorf("state changed by a failed commit:\n got %+v\nwant %+v", after, before)
	}
	var events int
	if err := rawDB(t, path).QueryRow(`SELECT count(*) FROM events`).Scan(&events); err != nil || events != len(good.Events) {
		t.Errorf("events = %d, %v; want %d", events, err, len(good.Events))
	}

	// The chain continues from the committed head, without a gap.
	commit(t, db, &vakt.Batch{Audit: []vakt.AuditRecord{{Actor: "system", Action: "test", Subject: "x"}}})
	if s, _ := db.AuditHead(); s != seq+1 {
		t.Errorf("next audit seq = %d, want %d", s, seq+1)
	}
	if err := db.VerifyAudit(ctx); err != nil {
		t.Error(err)
	}
}

func TestOutbox(t *testing.T) {
	ctx := context.Background()
	db, path := newTestDB(t)
	b1 := &vakt.Batch{
		Outbox: []vakt.OutboxEntry{{Kind: "alarm", Body: []byte(`1`)}, {Kind: "visit", Body: []byte(`2`), At: t0.Add(time.Second)}},
		Audit:  []vakt.AuditRecord{{Actor: "system", Action: "a", Subject: "alarm:a-1"}},
	}
	commit(t, db, b1)
	if b1.Outbox[0].Seq != 1 || b1.Outbox[1].Seq != 2 {
		t.Errorf("assigned seqs %d, %d; want 1, 2", b1.Outbox[0].Seq, b1.Outbox[1].Seq)
	}
	commit(t, db, &vakt.Batch{Outbox: []vakt.OutboxEntry{{Kind: "health", Body: []byte(`4`)}}})

	all, err := db.Outbox(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for i, e := range all {
		if e.Seq != int64(i+1) {
			t.Errorf("entry %d has seq %d", i, e.Seq)
		}
		kinds = append(kinds, e.Kind)
	}
	if want := []string{"alarm", "visit", "audit", "health"}; !reflect.DeepEqual(kinds, want) {
		t.Errorf("kinds = %v, want %v", kinds, want)
	}
	if !all[0].At.Equal(t0) || !all[1].At.Equal(t0.Add(time.Second)) {
		t.Errorf("times = %v, %v", all[0].At, all[1].At)
	}
	head, hash := db.AuditHead()
	if want := `{"seq":1,"at":"2025-03-14T09:26:53.589793238Z","actor":"system","action":"a","subject":"alarm:a-1","prev":"","hash":"` + hash + `"}`; head != 1 || string(all[2].Body) != want {
		t.Errorf("audit body = %s\nwant %s", all[2].Body, want)
	}
	if page, _ := db.Outbox(ctx, 1, 2); len(page) != 2 || page[0].Seq != 2 || page[1].Seq != 3 {
		t.Errorf("Outbox(1, 2) = %+v", page)
	}
	if n, _ := db.OutboxLen(ctx); n != 4 {
		t.Errorf("OutboxLen = %d, want 4", n)
	}

	if st, err := db.OutboxStats(ctx); err != nil || st.Entries != 4 || !st.Oldest.Equal(t0) || st.Bytes == 0 {
		t.Errorf("OutboxStats = %+v, %v; want 4 entries, oldest at t0", st, err)
	}
	commit(t, db, &vakt.Batch{OutboxAckedUpTo: 2})
	if rest, _ := db.PendingOutbox(ctx, 0, 0); len(rest) != 2 || rest[0].Seq != 3 {
		t.Errorf("after acknowledging up to 2: %+v", rest)
	}
	if n, _ := db.OutboxLen(ctx); n != 2 {
		t.Errorf("OutboxLen = %d, want 2", n)
	}
	if n, _ := db.OutboxAcked(ctx); n != 2 {
		t.Errorf("OutboxAcked = %d, want 2", n)
	}
	commit(t, db, &vakt.Batch{OutboxAckedUpTo: 4})
	commit(t, db, &vakt.Batch{OutboxAckedUpTo: 3}) // a late, lower acknowledgement does not move it back
	if n, _ := db.OutboxAcked(ctx); n != 4 {
		t.Errorf("OutboxAcked = %d, want 4", n)
	}
	if st, _ := db.OutboxStats(ctx); st.Entries != 0 || !st.Oldest.IsZero() {
		t.Errorf("OutboxStats of the empty outbox = %+v", st)
	}
	cursor := "c-17"
	commit(t, db, &vakt.Batch{DirectoryCursor: &cursor})
	if c, _ := db.DirectoryCursor(ctx); c != cursor {
		t.Errorf("DirectoryCursor = %q, want %q", c, cursor)
	}

	// Drained empty and reopened, seqs still never repeat: the cloud drops repeats.
	db.Close()
	db = openTest(t, path)
	if n, _ := db.OutboxLen(ctx); n != 0 {
		t.Errorf("OutboxLen after reopen = %d, want 0", n)
	}
	b := &vakt.Batch{Outbox: []vakt.OutboxEntry{{Kind: "alarm"}}}
	commit(t, db, b)
	if b.Outbox[0].Seq != 5 {
		t.Errorf("seq after drain = %d, want 5", b.Outbox[0].Seq)
	}
}

func TestOpenCreatesPrivateFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "var", "vakt")
	db := openTest(t, filepath.Join(dir, "vakt.db"))
	commit(t, db, fullBatch())
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("folder: %v, %v; want 0700", fi.Mode(), err)
	}
	for _, name := range []string{"vakt.db", "vakt.db-wal", "vakt.db-shm"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, %v; want 0600", name, fi.Mode(), err)
		}
	}
}

func TestPragmas(t *testing.T) {
	ctx := context.Background()
	db, _ := newTestDB(t)
	for q, want := range map[string]string{
		"journal_mode": "wal", "synchronous": "2", "foreign_keys": "1", "secure_delete": "1",
		"busy_timeout": "5000", "user_version": "7", // the number of migrations
		"page_size":          "1024", // P6: a new file gets small pages (fewer bytes per commit)
		"wal_autocheckpoint": "4096",
	} {
		var got string
		if err := db.w.QueryRowContext(ctx, "PRAGMA "+q).Scan(&got); err != nil || got != want {
			t.Errorf("writer %s = %q, %v; want %q", q, got, err, want)
		}
	}
	// Every reader connection is read-only, not just the first.
	var conns []*sql.Conn
	for range 4 {
		c, err := db.r.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		if _, err := c.ExecContext(ctx, `DELETE FROM outbox`); err == nil {
			t.Errorf("reader connection %d could write", len(conns))
		}
	}
	for _, c := range conns {
		c.Close()
	}
}

// A database made before page_size 1024 (4096-byte pages, already in WAL mode)
// keeps its page size: Open neither fails on it nor rewrites it, and it still
// commits and reopens with its data.
func TestExistingPageSizeKept(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "vakt.db")
	old, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.ExecContext(ctx, `CREATE TABLE scratch (x INTEGER); DROP TABLE scratch`); err != nil {
		t.Fatal(err)
	}
	old.Close()
	db := openTest(t, path)
	commit(t, db, fullBatch())
	var size int
	if err := db.w.QueryRowContext(ctx, `PRAGMA page_size`).Scan(&size); err != nil || size != 4096 {
		t.Errorf("page_size of the existing file = %d, %v; want 4096 kept", size, err)
	}
	if err := db.w.QueryRowContext(ctx, `PRAGMA wal_autocheckpoint`).Scan(&size); err != nil || size != 1024 {
		t.Errorf("wal_autocheckpoint on 4096-byte pages = %d, %v; want 1024 (a 4 MB WAL)", size, err)
	}
	before, err := db.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openTest(t, path)
	after, err := db.Load(ctx)
	if err != nil || after.NextAlarm != before.NextAlarm || len(after.Directory) != len(before.Directory) ||
		len(after.Directory) == 0 {
		t.Errorf("reopened 4096-page file: next alarm %d, %d staff, %v; want %d, %d",
			after.NextAlarm, len(after.Directory), err, before.NextAlarm, len(before.Directory))
	}
}

func TestSchemaNewerThanGateway(t *testing.T) {
	db, path := newTestDB(t)
	db.Close()
	execSQL(t, rawDB(t, path), `PRAGMA user_version = 99`)
	if db, err := Open(context.Background(), path, Options{}); err == nil {
		db.Close()
		t.Fatal("Open accepted a newer schema")
	}
}

func TestClosed(t *testing.T) {
	ctx := context.Background()
	db, _ := newTestDB(t)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Commit(ctx, fullBatch()); !errors.Is(err, vakt.ErrClosed) {
		t.Errorf("Commit after Close: %v, want ErrClosed", err)
	}
	if _, err := db.PurgePositions(ctx, t0); !errors.Is(err, vakt.ErrClosed) {
		t.Errorf("PurgePositions after Close: %v, want ErrClosed", err)
	}
	if err := db.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestIntegrityCheck(t *testing.T) {
	ctx := context.Background()
	db, path := newTestDB(t)
	b := &vakt.Batch{}
	for i := range 2000 {
		a := openAlarm()
		a.ID = vakt.AlarmID("a-" + strconv.Itoa(i+1))
		a.RaisedAt = t0.Add(time.Duration(i) * time.Second)
		b.Alarms = append(b.Alarms, a)
	}
	commit(t, db, b)
	if err := db.IntegrityCheck(ctx); err != nil {
		t.Fatal(err)
	}
	var root, pageSize int64
	raw := rawDB(t, path)
	if err := raw.QueryRow(`SELECT rootpage FROM sqlite_schema WHERE name = 'alarms_raised'`).Scan(&root); err != nil {
		t.Fatal(err)
	}
	if err := raw.QueryRow(`PRAGMA page_size`).Scan(&pageSize); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	db.Close()

	// Scribble over the index's root page, as a bad SD card would.
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	junk := make([]byte, pageSize-200)
	for i := range junk {
		junk[i] = byte(i*7 + 3)
	}
	if _, err := f.WriteAt(junk, (root-1)*pageSize+100); err != nil {
		t.Fatal(err)
	}
	f.Close()

	db = openTest(t, path)
	if err := db.IntegrityCheck(ctx); err == nil {
		t.Error("IntegrityCheck passed a corrupted file")
	} else {
		t.Logf("reported: %v", err)
	}
}

func TestSeenSourcesWindow(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "vakt.db")
	db, err := Open(ctx, path, Options{Now: func() time.Time { return t0 }, SeenWindow: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ev := func(id string, at time.Time, alarm vakt.AlarmID) vakt.EventRecord {
		return vakt.EventRecord{Alarm: alarm, Event: vakt.Event{Transmitter: "t", Kind: vakt.EventCall,
			Source: "mqtt", SourceID: id, ReceivedAt: at}}
	}
	var events []vakt.EventRecord
	for i := range 40 {
		events = append(events, ev("old-"+strconv.Itoa(i), t0.Add(-2*time.Hour), "a-1"))
	}
	for i := range seenMinEvents + 10 {
		events = append(events, ev("fresh-"+strconv.Itoa(i), t0.Add(-time.Minute), "a-1"))
	}
	// After a reboot without an RTC the clock reads 1970 for a while.
	for i := range 10 {
		events = append(events, ev("unsynced-"+strconv.Itoa(i), time.Unix(int64(i), 0), "a-1"))
	}
	events = append(events, ev("fresh-0", time.Unix(20, 0), "a-2"), ev("", t0, ""))
	for len(events) > 0 {
		n := min(len(events), 1000)
		commit(t, db, &vakt.Batch{Events: events[:n]})
		events = events[n:]
	}
	s, err := db.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := seenMinEvents + 20; len(s.SeenSources) != want {
		t.Errorf("%d seen sources, want %d", len(s.SeenSources), want)
	}
	for key, want := range map[string]vakt.AlarmID{"fresh-0": "a-2", "fresh-10009": "a-1", "unsynced-9": "a-1"} {
		if got, ok := s.SeenSources["mqtt\x00"+key]; !ok || got != want {
			t.Errorf("seen %s = %q, %v; want %q", key, got, ok, want)
		}
	}
	if _, ok := s.SeenSources["mqtt\x00old-39"]; ok {
		t.Error("an event older than the window and beyond the last 10,000 was kept")
	}
}

// Batches larger than one multi-row INSERT keep their order, and outbox entries
// get the seqs of their rows.
func TestCommitManyRows(t *testing.T) {
	ctx := context.Background()
	db, _ := newTestDB(t)
	commit(t, db, &vakt.Batch{Outbox: []vakt.OutboxEntry{{Kind: "first"}}})
	b := &vakt.Batch{}
	for i := range 3*rowsPerInsert + 7 {
		b.Events = append(b.Events, vakt.EventRecord{Alarm: "a-1", Event: vakt.Event{
			Transmitter: "t", Kind: vakt.EventCall, Source: "s", SourceID: strconv.Itoa(i)}})
		b.Outbox = append(b.Outbox, vakt.OutboxEntry{Kind: "alarm", Body: []byte(strconv.Itoa(i))})
	}
	for i := range 2*rowsPerInsert + 1 {
		a := openAlarm()
		a.ID = vakt.AlarmID("a-" + strconv.Itoa(i+1))
		b.Alarms = append(b.Alarms, a)
		b.Audit = append(b.Audit, vakt.AuditRecord{Actor: "system", Action: "alarm.raised", Subject: "alarm:" + string(a.ID)})
	}
	// The same alarm twice in one batch: the later row wins.
	last := openAlarm()
	last.ID, last.Count = "a-1", 99
	b.Alarms = append(b.Alarms, last)
	commit(t, db, b)

	evs, err := db.EventsForAlarm(ctx, "a-1")
	if err != nil || len(evs) != len(b.Events) {
		t.Fatalf("%d events, %v", len(evs), err)
	}
	for i, e := range evs {
		if e.SourceID != strconv.Itoa(i) {
			t.Fatalf("event %d has source id %s", i, e.SourceID)
		}
	}
	if a, _ := db.Alarm(ctx, "a-1"); a.Count != 99 {
		t.Errorf("a-1 count = %d, want 99 (later row)", a.Count)
	}
	if s, _ := db.Load(ctx); len(s.OpenAlarms) != 2*rowsPerInsert+1 || s.NextAlarm != 2*rowsPerInsert+2 {
		t.Errorf("%d open alarms, NextAlarm %d", len(s.OpenAlarms), s.NextAlarm)
	}
	out, err := db.Outbox(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if want := 1 + len(b.Outbox) + len(b.Audit); len(out) != want {
		t.Fatalf("%d outbox entries, want %d", len(out), want)
	}
	for i, o := range b.Outbox {
		if o.Seq != int64(i+2) || string(out[i+1].Body) != strconv.Itoa(i) || out[i+1].Seq != o.Seq {
			t.Fatalf("outbox entry %d: assigned seq %d, stored %d %s", i, o.Seq, out[i+1].Seq, out[i+1].Body)
		}
	}
	if n, _ := db.OutboxLen(ctx); n != int64(len(out)) {
		t.Errorf("OutboxLen = %d, want %d", n, len(out))
	}
	if err := db.VerifyAudit(ctx); err != nil {
		t.Error(err)
	}
}

func TestOpenOddPath(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "we?ird #dir%20", "vakt db")
	db := openTest(t, path)
	commit(t, db, fullBatch())
	if s, err := db.Load(ctx); err != nil || len(s.OpenAlarms) != 1 {
		t.Fatalf("Load = %v, %v", s, err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("database not at its path: %v", err)
	}
}

// TestSessionsSurviveReopen: a phone's login (its token hash) is there after a
// restart; a logout and an expired login are not; only the hash is stored.
func TestSessionsSurviveReopen(t *testing.T) {
	ctx := context.Background()
	db, path := newTestDB(t)
	now := time.Now()
	if err := db.Commit(ctx, &vakt.Batch{Sessions: []vakt.Session{
		{TokenHash: "aa11", Staff: "nurse-1", Expires: now.Add(time.Hour)},
		{TokenHash: "bb22", Staff: "nurse-2", Expires: now.Add(time.Hour)},
		{TokenHash: "cc33", Staff: "nurse-3", Expires: now.Add(-time.Minute)},
	}}); err != nil {
		t.Fatal(err)
	}
	if err := db.Commit(ctx, &vakt.Batch{Logouts: []string{"bb22"}}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	snap, err := db.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Sessions) != 1 || snap.Sessions[0].TokenHash != "aa11" || snap.Sessions[0].Staff != "nurse-1" {
		t.Fatalf("sessions after reopen: %+v", snap.Sessions)
	}
}

// Load reads a bounded number of the newest events for redelivery detection,
// however many the window holds, so a long history does not delay the start (R1,
// P4); the keys come oldest first so the engine forgets the oldest first.
func TestSeenSourcesBounded(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, filepath.Join(t.TempDir(), "vakt.db"), Options{Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if seenMaxEvents < 65535 {
		t.Fatalf("seenMaxEvents %d is less than one MQTT session's window of unacknowledged messages", seenMaxEvents)
	}
	const seenMaxEvents, extra = seenMinEvents + 2000, 1000 // smaller, so the test is quick
	db.seenMax = seenMaxEvents
	for i := 0; i < seenMaxEvents+extra; {
		b := &vakt.Batch{}
		for ; len(b.Events) < 5000 && i < seenMaxEvents+extra; i++ {
			b.Events = append(b.Events, vakt.EventRecord{Event: vakt.Event{Transmitter: "t", Kind: vakt.EventCall,
				Source: "mqtt", SourceID: strconv.Itoa(i), ReceivedAt: t0.Add(-time.Minute)}})
		}
		commit(t, db, b)
	}
	s, err := db.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.SeenSources) != seenMaxEvents || len(s.SeenOrder) != seenMaxEvents {
		t.Fatalf("%d seen sources (%d ordered), want the newest %d", len(s.SeenSources), len(s.SeenOrder), seenMaxEvents)
	}
	if _, ok := s.SeenSources["mqtt\x00"+strconv.Itoa(extra-1)]; ok {
		t.Error("an event older than the newest seenMaxEvents was read")
	}
	if first, last := s.SeenOrder[0], s.SeenOrder[len(s.SeenOrder)-1]; first != "mqtt\x00"+strconv.Itoa(extra) ||
		last != "mqtt\x00"+strconv.Itoa(seenMaxEvents+extra-1) {
		t.Errorf("order runs %q … %q, want oldest first", first, last)
	}
}

// TestOutboxCountedAfterOpen: Open counts a long outbox in the background (a
// million-entry count held the gateway's readiness for half a second), and commits
// made meanwhile — new entries, acknowledgements — still leave OutboxLen exact.
func TestOutboxCountedAfterOpen(t *testing.T) {
	ctx := context.Background()
	db, path, release := reopenWithCountHeld(t, 50)
	// Committed after Open's snapshot and before its count is known.
	commit(t, db, fullBatch())
	commit(t, db, &vakt.Batch{OutboxAckedUpTo: 10})
	release()
	<-db.OutboxCounted()
	commit(t, db, fullBatch())
	var want int64
	if err := rawDB(t, path).QueryRow(`SELECT count(*) FROM outbox WHERE seq > ` + ackedSeq).Scan(&want); err != nil {
		t.Fatal(err)
	}
	if n, _ := db.OutboxLen(ctx); n != want {
		t.Errorf("OutboxLen %d, outbox holds %d", n, want)
	}
}

// TestPurgePositionsDuringOutboxCount: a TRUNCATE checkpoint waits for every
// reader, and the start's outbox count is one: a position purge asked for while it
// runs must not hold the engine's loop for it (nor fail), and the checkpoint still
// happens once the count is done — the WAL emptied.
func TestPurgePositionsDuringOutboxCount(t *testing.T) {
	ctx := context.Background()
	db, path, release := reopenWithCountHeld(t, 5)
	if _, err := db.Load(ctx); err != nil { // the count starts after the first Load
		t.Fatal(err)
	}
	commit(t, db, fullBatch()) // something in the WAL
	if _, err := db.PurgePositions(ctx, time.Now()); err != nil {
		t.Fatalf("purge during the count: %v", err)
	}
	release()
	<-db.OutboxCounted()
	if fi, err := os.Stat(path + "-wal"); err != nil || fi.Size() != 0 {
		t.Errorf("WAL after the deferred checkpoint: %v bytes, %v; want emptied", fi.Size(), err)
	}
}

// reopenWithCountHeld commits n full batches, closes the database and opens it again
// with Open's background outbox count held until release is called (also at the
// test's end, before Close, which waits for the count).
func reopenWithCountHeld(t *testing.T, n int) (*DB, string, func()) {
	t.Helper()
	db, path := newTestDB(t)
	for range n {
		commit(t, db, fullBatch())
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	hold := make(chan struct{})
	beforeCount = func() { <-hold }
	t.Cleanup(func() { beforeCount = nil })
	db = openTest(t, path)
	var once sync.Once
	release := func() { once.Do(func() { close(hold) }) }
	t.Cleanup(release)
	return db, path, release
}

package engine_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	vakt "github.com/vakt/vakt"
	"github.com/vakt/vakt/engine"
	"github.com/vakt/vakt/internal/fakeclock"
	"github.com/vakt/vakt/routing"
	"github.com/vakt/vakt/store"
)

// phones records every notice per staff member, like their WebSocket would.
type phones struct {
	mu  sync.Mutex
	got map[vakt.StaffID][]vakt.Notice
	all []vakt.Notice // every notice to anyone, in the order sent
	ch  chan struct{}
}

func newPhones() *phones {
	return &phones{got: map[vakt.StaffID][]vakt.Notice{}, ch: make(chan struct{}, 1024)}
}

func (p *phones) Notify(s vakt.StaffID, n vakt.Notice) {
	p.mu.Lock()
	p.got[s] = append(p.got[s], n)
	p.all = append(p.all, n)
	p.mu.Unlock()
	select {
	case p.ch <- struct{}{}:
	default:
	}
}

func (p *phones) count(s vakt.StaffID, t vakt.NoticeType) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, x := range p.got[s] {
		if x.Type == t {
			n++
		}
	}
	return n
}

// wait blocks until cond holds, woken by each notice; bounded so a bug fails fast.
func (p *phones) wait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for !cond() {
		select {
		case <-p.ch:
		case <-timeout:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

type rig struct {
	t            testing.TB
	transmitters []vakt.Transmitter // default: the one room button
	wrap         func(vakt.Store) vakt.Store
	queue        engine.Queue // zero: the engine makes its own
	linger       time.Duration
	purgeQuiet   time.Duration            // Options.OutboxPurgeQuiet
	logs         io.Writer                // default: discarded
	noNearest    bool                     // start with nearest-staff routing off
	policy       *routing.Config          // default policy()
	outbound     map[string]vakt.Outbound // Options.Outbound
	disk         *failingStore
	boot         string      // Options.Boot
	synced       func() bool // Options.ClockSynced
	retention    engine.Retention
	path         string
	pins         map[vakt.StaffID]vakt.Position // Options.PinnedPositions (demo)
	clock        *fakeclock.Clock
	phones       *phones
	db           *store.DB
	eng          *engine.Engine
	stop         func()
}

var (
	t0   = time.Date(2026, 11, 28, 22, 0, 0, 0, time.UTC)
	room = vakt.Transmitter{ID: "room-101", Location: vakt.Location{Room: "101", Zone: "east", Floor: 1, Lat: 59.9139, Lon: 10.7522}}
)

func policy() routing.Config {
	return routing.Config{
		OfferConfirm: 10 * time.Second, FloorPenaltyM: 30, NearestEnabled: true, PositionTTL: time.Hour,
		Policies: []routing.Policy{{Name: "care", ReAlarmAfter: 5 * time.Minute, Tiers: []routing.Tier{
			{Target: routing.TargetNearest, Count: 1, Wait: 30 * time.Second},
			{Target: routing.TargetSite, Wait: time.Minute},
		}}, {Name: "technical", Kinds: []vakt.EventKind{vakt.EventLowBattery, vakt.EventTamper, vakt.EventOffline},
			Tiers: []routing.Tier{{Target: routing.TargetRole, Roles: []string{"technician"}, Wait: 10 * time.Minute}}}},
	}
}

// start opens (or reopens) the engine on the rig's database file.
func (r *rig) start(walkTest bool) {
	r.t.Helper()
	if r.transmitters == nil {
		r.transmitters = []vakt.Transmitter{room}
	}
	ctx, cancel := context.WithCancel(context.Background())
	db, err := store.Open(ctx, r.path, store.Options{})
	if err != nil {
		r.t.Fatal(err)
	}
	pol := policy()
	if r.policy != nil {
		pol = *r.policy
	}
	router, err := routing.New(pol)
	if err != nil {
		r.t.Fatal(err)
	}
	near := vakt.Position{Lat: 59.91391, Lon: 10.7522, Floor: 1}
	far := vakt.Position{Lat: 59.9150, Lon: 10.7522, Floor: 1}
	var st vakt.Store = db
	if r.wrap != nil {
		st = r.wrap(db)
	}
	logs := r.logs
	if logs == nil {
		logs = io.Discard
	}
	eng, err := engine.New(ctx, engine.Options{
		Store: st, Router: router, Notifier: r.phones, Clock: r.clock, Queue: r.queue,
		Logger:        slog.New(slog.NewTextHandler(logs, nil)),
		CheckInLinger: r.linger, OutboxPurgeQuiet: r.purgeQuiet, Boot: r.boot, ClockSynced: r.synced, Outbound: r.outbound,
		Retention:    r.retention,
		Transmitters: r.transmitters, NearestRouting: !r.noNearest, PositionTTL: time.Hour, WalkTest: walkTest,
		PinnedPositions: r.pins,
		Directory: []vakt.Staff{
			{ID: "near", Roles: []string{"nurse"}}, {ID: "far", Roles: []string{"nurse"}}, {ID: "tech", Roles: []string{"technician"}},
		},
		InitialStaff: []vakt.StaffState{
			{Staff: "near", OnDuty: true, Availability: vakt.Available, Position: &near},
			{Staff: "far", OnDuty: true, Availability: vakt.Available, Position: &far},
			{Staff: "tech", OnDuty: true, Availability: vakt.Available},
		},
	})
	if err != nil {
		r.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = eng.Run(ctx); close(done) }()
	r.db, r.eng = db, eng
	r.stop = func() { cancel(); <-done; _ = db.Close() }
}

func newRig(t *testing.T) *rig {
	r := &rig{t: t, path: filepath.Join(t.TempDir(), "vakt.db"), clock: fakeclock.New(t0), phones: newPhones()}
	r.start(false)
	t.Cleanup(func() { r.stop() })
	return r
}

// ingest submits ev and waits for its commit.
func (r *rig) ingest(ev vakt.Event) {
	r.t.Helper()
	errc := make(chan error, 1)
	if err := r.eng.Ingest(ev, func(err error) { errc <- err }); err != nil {
		r.t.Fatal(err)
	}
	if err := <-errc; err != nil {
		r.t.Fatal(err)
	}
	r.idle()
}

// idle returns once the engine has finished the work queued so far, timers re-armed
// included (one round trip through its loop). Move the fake clock only after it: a
// timer is armed as "now + delay", and a clock moved in between would arm it late.
func (r *rig) idle() {
	r.t.Helper()
	if _, err := r.eng.Members(context.Background()); err != nil {
		r.t.Fatal(err)
	}
}

// open lists every open alarm, as the union of what each staff member sees.
func (r *rig) open() []vakt.Alarm {
	r.t.Helper()
	seen := map[vakt.AlarmID]bool{}
	var all []vakt.Alarm
	for _, s := range []vakt.StaffID{"near", "far", "tech"} {
		list, err := r.eng.Alarms(context.Background(), s)
		if err != nil {
			r.t.Fatal(err)
		}
		for _, a := range list {
			if !seen[a.ID] {
				seen[a.ID] = true
				all = append(all, a)
			}
		}
	}
	return all
}

// TestAckOnlyAfterCommit: when a driver is told "done", the alarm is already in the
// database file — the source may acknowledge and nothing is lost.
func TestAckOnlyAfterCommit(t *testing.T) {
	r := newRig(t)
	found := make(chan error, 1)
	err := r.eng.Ingest(vakt.Event{Transmitter: "room-101", Kind: vakt.EventEmergency, Source: "mqtt"}, func(err error) {
		if err != nil {
			found <- err
			return
		}
		_, qerr := r.db.Alarm(context.Background(), "a-1")
		found <- qerr
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := <-found; err != nil {
		t.Fatalf("alarm not in the database when the source was told done: %v", err)
	}
	r.phones.wait(t, "offer to the nearest nurse", func() bool { return r.phones.count("near", vakt.NoticeOffer) == 1 })
	if r.phones.count("far", vakt.NoticeOffer) != 0 {
		t.Fatal("tier 1 is nearest-one: far must not be offered yet")
	}
}

// TestRestartResumesOverdueDeadline: the gateway is down while tier 1's wait runs
// out; on restart the escalation fires at once.
func TestRestartResumesOverdueDeadline(t *testing.T) {
	r := newRig(t)
	r.ingest(vakt.Event{Transmitter: "room-101", Kind: vakt.EventEmergency, Source: "mqtt"})
	if err := r.eng.Delivered(context.Background(), "near", "a-1"); err != nil {
		t.Fatal(err)
	}
	r.stop()
	r.clock.Advance(45 * time.Second) // while down
	r.start(false)
	r.phones.wait(t, "tier 2 offer to far after restart", func() bool { return r.phones.count("far", vakt.NoticeOffer) == 1 })
}

// TestGroupCommit: a burst of presses from many transmitters is committed in far
// fewer transactions than events, and every source is told done.
func TestGroupCommit(t *testing.T) {
	r := newRig(t)
	const n = 2000
	var wg sync.WaitGroup
	wg.Add(n)
	for i := range n {
		ev := vakt.Event{Transmitter: vakt.TransmitterID(fmt.Sprintf("btn-%d", i%500)), Kind: vakt.EventCheckIn, Source: "mqtt"}
		for r.eng.Ingest(ev, func(err error) {
			if err != nil {
				t.Error(err)
			}
			wg.Done()
		}) == vakt.ErrBusy {
			t.Fatal("queue full at 2000 events")
		}
	}
	wg.Wait()
	st := r.eng.Stats()
	if st.Events < n || st.Batches >= n/4 {
		t.Fatalf("%d events in %d batches: group commit is not batching", st.Events, st.Batches)
	}
}

// TestResetBeforeAcceptCancels: the resident resets the call before anyone accepted:
// the alarm is cancelled and the offer withdrawn from the phone.
func TestResetBeforeAcceptCancels(t *testing.T) {
	r := newRig(t)
	r.ingest(vakt.Event{Transmitter: "room-101", Kind: vakt.EventCall, Source: "espa"})
	r.ingest(vakt.Event{Transmitter: "room-101", Kind: vakt.EventCancel, Source: "espa"})
	r.phones.wait(t, "withdrawn", func() bool { return r.phones.count("near", vakt.NoticeWithdrawn) == 1 })
	if len(r.open()) != 0 {
		t.Fatal("cancelled alarm still open")
	}
	a, err := r.db.Alarm(context.Background(), "a-1")
	if err != nil || a.State != vakt.StateCancelled {
		t.Fatalf("stored alarm %+v %v", a, err)
	}
}

// TestLowBatteryOnceGoesToTechnician: repeated low-battery reports make one technical
// alarm for the technician, not one per message and not to the nurses.
func TestLowBatteryOnceGoesToTechnician(t *testing.T) {
	r := newRig(t)
	bat := 9
	for range 3 {
		r.ingest(vakt.Event{Transmitter: "room-101", Kind: vakt.EventLowBattery, Battery: &bat, Source: "mqtt"})
	}
	r.phones.wait(t, "technician offered", func() bool { return r.phones.count("tech", vakt.NoticeOffer) == 1 })
	open := r.open()
	if len(open) != 1 || open[0].Count != 3 || open[0].Priority != vakt.PriorityTechnical {
		t.Fatalf("open alarms %+v", open)
	}
	if r.phones.count("near", vakt.NoticeOffer) != 0 {
		t.Fatal("a nurse was offered a technical alarm")
	}
}

// TestWalkTestAlarmsNobody: in commissioning mode presses are recorded, nobody rings.
func TestWalkTestAlarmsNobody(t *testing.T) {
	r := &rig{t: t, path: filepath.Join(t.TempDir(), "vakt.db"), clock: fakeclock.New(t0), phones: newPhones()}
	r.start(true)
	t.Cleanup(func() { r.stop() })
	r.ingest(vakt.Event{Transmitter: "room-101", Kind: vakt.EventEmergency, Source: "mqtt"})
	if len(r.open()) != 0 || r.phones.count("near", vakt.NoticeOffer) != 0 {
		t.Fatal("walk test raised an alarm")
	}
}

// TestOfflineClearedWhenHeardAgain: a transmitter that went offline and comes back
// closes its own technical alarm; the technician's phone is told.
func TestOfflineClearedWhenHeardAgain(t *testing.T) {
	r := newRig(t)
	r.ingest(vakt.Event{Transmitter: "room-101", Kind: vakt.EventOffline, Source: "espa:line"})
	r.phones.wait(t, "technician offered", func() bool { return r.phones.count("tech", vakt.NoticeOffer) == 1 })
	r.ingest(vakt.Event{Transmitter: "room-101", Kind: vakt.EventCheckIn, Source: "espa:line"})
	r.phones.wait(t, "offer withdrawn", func() bool { return r.phones.count("tech", vakt.NoticeWithdrawn) == 1 })
	if open := r.open(); len(open) != 0 {
		t.Fatalf("offline alarm still open: %+v", open)
	}
}

// TestRedeliveryRecognisedOnlyWhileRecent: the same source message id within minutes
// is a redelivery (no second alarm); the same id much later is a new press, since
// sources reuse ids (MQTT packet ids wrap).
func TestRedeliveryRecognisedOnlyWhileRecent(t *testing.T) {
	r := newRig(t)
	press := vakt.Event{Transmitter: "room-101", Kind: vakt.EventCall, Source: "mqtt", SourceID: "mqtt:7:abc/0"}
	r.ingest(press)
	r.ingest(press) // redelivered: PUBACK lost
	list := r.open()
	if len(list) != 1 || list[0].Count != 1 {
		t.Fatalf("redelivery counted: %+v", list)
	}
	if _, err := r.eng.Accept(context.Background(), "near", list[0].ID); err != nil {
		t.Fatal(err)
	}
	if _, err := r.eng.Complete(context.Background(), "near", list[0].ID, ""); err != nil {
		t.Fatal(err)
	}
	r.clock.Advance(time.Hour)
	r.ingest(press) // a new press that happens to reuse the id
	if list = r.open(); len(list) != 1 || list[0].ID == "a-1" {
		t.Fatalf("a later press with a reused id raised no new alarm: %+v", list)
	}
}

// TestSupervisionMissedCheckIn: a supervised button silent for its period raises a
// technical alarm for the technician; hearing from it again closes the alarm.
func TestSupervisionMissedCheckIn(t *testing.T) {
	r := &rig{t: t, path: filepath.Join(t.TempDir(), "vakt.db"), clock: fakeclock.New(t0), phones: newPhones()}
	supervised := room
	supervised.Supervision = time.Hour
	r.transmitters = []vakt.Transmitter{supervised}
	r.start(false)
	t.Cleanup(func() { r.stop() })

	r.idle()
	r.clock.Advance(59 * time.Minute)
	r.ingest(vakt.Event{Transmitter: "room-101", Kind: vakt.EventCheckIn, Source: "mqtt"})
	r.clock.Advance(59 * time.Minute) // 118 min since start, 59 since the check-in
	if r.phones.count("tech", vakt.NoticeOffer) != 0 {
		t.Fatal("technical alarm although the button checked in within its period")
	}
	r.clock.Advance(2 * time.Minute)
	r.phones.wait(t, "offline alarm to the technician", func() bool { return r.phones.count("tech", vakt.NoticeOffer) == 1 })
	if open := r.open(); len(open) != 1 || open[0].Kind != vakt.EventOffline {
		t.Fatalf("open alarms %+v", open)
	}
	r.ingest(vakt.Event{Transmitter: "room-101", Kind: vakt.EventCheckIn, Source: "mqtt"})
	r.phones.wait(t, "offline alarm withdrawn", func() bool { return r.phones.count("tech", vakt.NoticeWithdrawn) == 1 })
}

// failingStore stands in for a full or worn-out SD card: commits fail while broken.
type failingStore struct {
	vakt.Store
	broken atomic.Bool
}

func (f *failingStore) Commit(ctx context.Context, b *vakt.Batch) error {
	if f.broken.Load() {
		return errors.New("disk I/O error")
	}
	return f.Store.Commit(ctx, b)
}

// TestStorageFailureStillAlarms (R6): with the database unwritable the press still
// reaches the nurse from memory, the source is not acknowledged, the technician gets
// a technical alarm, and it closes once the disk works again.
func TestStorageFailureStillAlarms(t *testing.T) {
	r := &rig{t: t, path: filepath.Join(t.TempDir(), "vakt.db"), clock: fakeclock.New(t0), phones: newPhones()}
	r.wrap = func(s vakt.Store) vakt.Store { f := &failingStore{Store: s}; r.disk = f; return f }
	r.start(false)
	t.Cleanup(func() { r.stop() })

	r.disk.broken.Store(true)
	errc := make(chan error, 1)
	if err := r.eng.Ingest(vakt.Event{Transmitter: "room-101", Kind: vakt.EventEmergency, Source: "mqtt"}, func(err error) { errc <- err }); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err == nil {
		t.Fatal("source told the press is durable while the disk fails")
	}
	r.phones.wait(t, "offer from memory", func() bool { return r.phones.count("near", vakt.NoticeOffer) == 1 })
	r.phones.wait(t, "storage alarm to the technician", func() bool { return r.phones.count("tech", vakt.NoticeOffer) == 1 })

	r.disk.broken.Store(false)
	r.ingest(vakt.Event{Transmitter: "room-101", Kind: vakt.EventCheckIn, Source: "mqtt"})
	r.phones.wait(t, "storage alarm closed", func() bool { return r.phones.count("tech", vakt.NoticeWithdrawn) == 1 })
}

// TestExpiredPositionGoneFromDisk (G1): a position older than the TTL is gone not just
// from the rows but from the database file and its write-ahead log.
func TestExpiredPositionGoneFromDisk(t *testing.T) {
	r := newRig(t)
	lat := 59.9123456789
	if err := r.eng.SetPosition(context.Background(), "near", vakt.Position{Lat: lat, Lon: 10.7654321, Floor: 1}); err != nil {
		t.Fatal(err)
	}
	r.idle()
	needle := binary.BigEndian.AppendUint64(nil, math.Float64bits(lat))
	if !onDisk(t, r.path, needle) {
		t.Fatal("the position never reached the disk: the test would prove nothing")
	}
	r.clock.Advance(time.Hour + time.Minute)
	// The timer fires on its own goroutine: poll until the purge (and the disk purge
	// that follows its commit) has run.
	deadline := time.Now().Add(5 * time.Second)
	for onDisk(t, r.path, needle) {
		if time.Now().After(deadline) {
			t.Fatal("an expired position is still in the database file or its WAL")
		}
		r.idle()
	}
}

// onDisk reports whether b occurs in the database file or its WAL.
func onDisk(t *testing.T, path string, b []byte) bool {
	t.Helper()
	for _, p := range []string{path, path + "-wal"} {
		data, err := os.ReadFile(p)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		if bytes.Contains(data, b) {
			return true
		}
	}
	return false
}

// TestCheckInsShareCommitsAlarmsDoNot (P6): check-ins wait for company up to the
// linger time and then share one commit; a press arriving meanwhile is committed at
// once, taking the waiting check-ins along. Nothing is acknowledged before its commit.
func TestCheckInsShareCommitsAlarmsDoNot(t *testing.T) {
	r := &rig{t: t, path: filepath.Join(t.TempDir(), "vakt.db"), clock: fakeclock.New(t0), phones: newPhones(), linger: 2 * time.Second}
	r.start(false)
	t.Cleanup(func() { r.stop() })
	r.idle()

	submit := func(kind vakt.EventKind) chan error {
		done := make(chan error, 1)
		if err := r.eng.Ingest(vakt.Event{Transmitter: "room-101", Kind: kind, Source: "mqtt"}, func(err error) { done <- err }); err != nil {
			t.Fatal(err)
		}
		return done
	}
	before, timers := r.eng.Stats().Batches, r.clock.Pending()
	checkins := []chan error{submit(vakt.EventCheckIn), submit(vakt.EventCheckIn), submit(vakt.EventCheckIn)}
	// Move the clock only once the engine is lingering (its timer armed): a timer is
	// armed as now+delay, so moving the clock first would arm it late.
	deadline := time.Now().Add(5 * time.Second)
	for r.clock.Pending() == timers {
		if time.Now().After(deadline) {
			t.Fatal("the engine never started to linger")
		}
		runtime.Gosched()
	}
	r.clock.Advance(2 * time.Second) // the linger ends
	for _, c := range checkins {
		if err := <-c; err != nil {
			t.Fatal(err)
		}
	}
	if n := r.eng.Stats().Batches - before; n != 1 {
		t.Fatalf("3 check-ins took %d commits, want 1", n)
	}

	// A press never waits: it ends the linger (the clock does not move here).
	waiting := submit(vakt.EventCheckIn)
	press := submit(vakt.EventEmergency)
	if err := <-press; err != nil {
		t.Fatal(err)
	}
	if err := <-waiting; err != nil {
		t.Fatal(err)
	}
	r.phones.wait(t, "offer", func() bool { return r.phones.count("near", vakt.NoticeOffer) == 1 })
}

// TestClosedAlarmKeepsNoDistances (G1): distances are derived from staff positions;
// the stored history of a completed alarm has none.
func TestClosedAlarmKeepsNoDistances(t *testing.T) {
	r := newRig(t)
	r.ingest(vakt.Event{Transmitter: "room-101", Kind: vakt.EventCall, Source: "mqtt"})
	ctx := context.Background()
	if a, err := r.db.Alarm(ctx, "a-1"); err != nil || len(a.Offers) == 0 || a.Offers[0].DistanceM < 0 {
		t.Fatalf("open alarm should carry the offer distance: %+v %v", a, err)
	}
	if _, err := r.eng.Accept(ctx, "near", "a-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.eng.Complete(ctx, "near", "a-1", ""); err != nil {
		t.Fatal(err)
	}
	a, err := r.db.Alarm(ctx, "a-1")
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range a.Offers {
		if o.DistanceM >= 0 {
			t.Fatalf("completed alarm still stores a distance: %+v", a.Offers)
		}
	}
}

// TestDemoPinsNeverGoStale: a demo site's pinned positions route alarms however long
// it runs, also after an offer (which copies the staff member's stored state, where
// no pin is, into the routing view); a real position report replaces the pin.
func TestDemoPinsNeverGoStale(t *testing.T) {
	r := &rig{t: t, path: filepath.Join(t.TempDir(), "vakt.db"), clock: fakeclock.New(t0), phones: newPhones(),
		pins: map[vakt.StaffID]vakt.Position{"far": {Lat: 59.9150, Lon: 10.7522, Floor: 1}}} // where far starts
	r.start(false)
	t.Cleanup(func() { r.stop() })
	ctx := context.Background()
	n := 0
	press := func(want vakt.StaffID) {
		t.Helper()
		n++
		offers := map[vakt.StaffID]int{"near": r.phones.count("near", vakt.NoticeOffer), "far": r.phones.count("far", vakt.NoticeOffer)}
		r.ingest(vakt.Event{Transmitter: "room-101", Kind: vakt.EventEmergency, Source: "mqtt"})
		r.phones.wait(t, "an offer", func() bool {
			return r.phones.count("near", vakt.NoticeOffer) > offers["near"] || r.phones.count("far", vakt.NoticeOffer) > offers["far"]
		})
		if got := r.phones.count(want, vakt.NoticeOffer); got != offers[want]+1 {
			t.Fatalf("press %d: %s not offered first", n, want)
		}
		id := vakt.FormatAlarmID(int64(n))
		if _, err := r.eng.Accept(ctx, want, id); err != nil {
			t.Fatal(err)
		}
		if _, err := r.eng.Complete(ctx, want, id, ""); err != nil {
			t.Fatal(err)
		}
		r.idle()
	}
	press("near") // both known: near is nearer
	r.clock.Advance(2 * time.Hour)
	r.idle()
	press("far") // two position TTLs later near's position is gone, far's pin is not
	press("far") // and after an offer to far it still is
	r.clock.Advance(2 * time.Hour)
	r.idle()
	press("far")
	if err := r.eng.SetPosition(ctx, "far", vakt.Position{Lat: 59.93, Lon: 10.7522, Floor: 1}); err != nil {
		t.Fatal(err)
	}
	if err := r.eng.SetPosition(ctx, "near", vakt.Position{Lat: 59.91391, Lon: 10.7522, Floor: 1}); err != nil {
		t.Fatal(err)
	}
	press("near") // far's own report, 1.7 km away, replaced the pin
}

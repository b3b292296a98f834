package engine_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	vakt "github.com/vakt/vakt"
	"github.com/vakt/vakt/engine"
	"github.com/vakt/vakt/internal/fakeclock"
)

// rigDirectory is the rig's configured staff (engine_test.go start).
func rigDirectory(extra ...vakt.Staff) []vakt.Staff {
	return append([]vakt.Staff{
		{ID: "near", Roles: []string{"nurse"}}, {ID: "far", Roles: []string{"nurse"}}, {ID: "tech", Roles: []string{"technician"}},
	}, extra...)
}

// TestApplyConfigSupervision: supervision switched on by a reload starts a full
// period at the reload and raises the offline alarm when it runs out; switched
// off, the transmitter is no longer supervised.
func TestApplyConfigSupervision(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	r.clock.Advance(3 * time.Hour) // long before the reload: not counted
	r.idle()
	supervised := room
	supervised.Supervision = time.Hour
	ch, err := r.eng.ApplyConfig(ctx, "config", engine.LiveConfig{Transmitters: []vakt.Transmitter{supervised}, Directory: rigDirectory()})
	if err != nil || !slices.Equal(ch.TransmittersChanged, []vakt.TransmitterID{"room-101"}) {
		t.Fatalf("ApplyConfig: %+v, %v", ch, err)
	}
	r.idle()
	r.clock.Advance(59 * time.Minute)
	r.idle()
	if n := len(r.alarmsOf("room-101", vakt.EventOffline)); n != 0 {
		t.Fatalf("%d offline alarms before the first period since the reload ended", n)
	}
	r.clock.Advance(2 * time.Minute)
	r.phones.wait(t, "offline alarm to the technician", func() bool { return r.phones.count("tech", vakt.NoticeOffer) == 1 })
	r.idle()
	r.episode("room-101", vakt.EventOffline, 1, true)

	// Off again, and the open offline alarm closed by a message: no new one.
	if _, err := r.eng.ApplyConfig(ctx, "config", engine.LiveConfig{Transmitters: []vakt.Transmitter{room}, Directory: rigDirectory()}); err != nil {
		t.Fatal(err)
	}
	newZ2MFeed(t, r).send("zigbee2mqtt/room101", `{"linkquality":50}`)
	r.episode("room-101", vakt.EventOffline, 1, false)
	r.clock.Advance(3 * time.Hour)
	r.idle()
	r.episode("room-101", vakt.EventOffline, 1, false)
}

// TestApplyConfigDirectoryRules: a person a reload adds to the file wins over the
// cloud's feed and cannot be erased; taken out of the file they keep their entry
// (as after a restart), the cloud's feed applies to them again and they can be
// erased; later reloads and a restart do not bring them back.
func TestApplyConfigDirectoryRules(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	hired := vakt.Staff{ID: "s-new", Name: "From the file", Roles: []string{"nurse"}}
	ch, err := r.eng.ApplyConfig(ctx, "config", engine.LiveConfig{Transmitters: []vakt.Transmitter{room}, Directory: rigDirectory(hired)})
	if err != nil || !slices.Equal(ch.StaffAdded, []vakt.StaffID{"s-new"}) {
		t.Fatalf("ApplyConfig: %+v, %v", ch, err)
	}
	cloudCopy := hired
	cloudCopy.Name = "From the cloud"
	if err := r.eng.ApplyDirectory(ctx, engine.DirectoryChange{Ops: []engine.DirectoryOp{{Kind: engine.DirectoryUpsert, Staff: cloudCopy}}}); err != nil {
		t.Fatal(err)
	}
	if m, err := r.eng.Staff(ctx, "s-new"); err != nil || m.Name != hired.Name {
		t.Fatalf("the cloud's upsert of a person of the file: %+v, %v; want the file's entry", m, err)
	}
	if _, err := r.eng.EraseStaff(ctx, "technician", "s-new"); !errors.Is(err, engine.ErrConfigStaff) {
		t.Fatalf("erase a person the reload added to the file: %v, want ErrConfigStaff", err)
	}

	ch, err = r.eng.ApplyConfig(ctx, "config", engine.LiveConfig{Transmitters: []vakt.Transmitter{room}, Directory: rigDirectory()})
	if err != nil || !slices.Equal(ch.StaffUnlisted, []vakt.StaffID{"s-new"}) {
		t.Fatalf("ApplyConfig without s-new: %+v, %v", ch, err)
	}
	if m, err := r.eng.Staff(ctx, "s-new"); err != nil || m.Name != hired.Name {
		t.Fatalf("a person taken out of the file: %+v, %v; want the stored entry kept", m, err)
	}
	if err := r.eng.ApplyDirectory(ctx, engine.DirectoryChange{Ops: []engine.DirectoryOp{{Kind: engine.DirectoryUpsert, Staff: cloudCopy}}}); err != nil {
		t.Fatal(err)
	}
	if m, _ := r.eng.Staff(ctx, "s-new"); m.Name != cloudCopy.Name {
		t.Fatalf("the cloud's upsert after the reload: %+v; want the cloud's entry", m)
	}
	if _, err := r.eng.EraseStaff(ctx, "technician", "s-new"); err != nil {
		t.Fatalf("erase after the reload: %v", err)
	}
	if ch, err := r.eng.ApplyConfig(ctx, "config", engine.LiveConfig{Transmitters: []vakt.Transmitter{room}, Directory: rigDirectory()}); err != nil || ch.Summary() != "unchanged" {
		t.Fatalf("reload after the erasure: %s, %v", ch.Summary(), err)
	}
	r.stop()
	r.start(false)
	for _, id := range []vakt.StaffID{"s-new"} {
		if _, err := r.eng.Staff(ctx, id); !errors.Is(err, vakt.ErrNotFound) {
			t.Fatalf("the erased person after a reload and a restart: %v", err)
		}
	}
	seq, _ := r.db.AuditHead()
	audit, _ := r.db.AuditRange(ctx, 1, int(seq))
	var reloaded int
	for _, e := range audit {
		if e.Action == engine.AuditConfigReloaded && e.Actor == "config" {
			reloaded++
		}
	}
	if reloaded != 3 {
		t.Fatalf("%d config.reloaded audit entries, want 3", reloaded)
	}
}

// BenchmarkApplyConfig measures a reload of a large site in the engine: 2000
// transmitters and 500 people, one person's entry changed each time (one directory
// row and the audit entries in one commit; the loop is busy for the diff). It
// reports ms per reload beside the single-event commit of the same disk in the
// same run: the reload holds the loop about that long, plus the diff.
func BenchmarkApplyConfig(b *testing.B) {
	floor := singleCommitRate(b)
	r := &rig{t: b, path: filepath.Join(b.TempDir(), "vakt.db"), clock: fakeclock.New(t0), phones: newPhones()}
	var txs []vakt.Transmitter
	for i := range 2000 {
		t := room
		t.ID = vakt.TransmitterID(fmt.Sprintf("btn-%d", i))
		t.Supervision = 25 * time.Hour
		txs = append(txs, t)
	}
	r.transmitters = txs
	r.start(false)
	defer r.stop()
	dir := rigDirectory()
	for i := range 500 {
		dir = append(dir, vakt.Staff{ID: vakt.StaffID(fmt.Sprintf("s-%d", i)), Roles: []string{"nurse"}})
	}
	ctx := context.Background()
	n := 0
	for b.Loop() {
		n++
		dir[3].Name = fmt.Sprintf("v%d", n)
		if _, err := r.eng.ApplyConfig(ctx, "config", engine.LiveConfig{Transmitters: txs, Directory: dir}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(b.Elapsed().Seconds()*1000/float64(n), "ms/reload")
	b.ReportMetric(1000/floor, "floor-ms/commit")
	b.ReportMetric(0, "ns/op")
}

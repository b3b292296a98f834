package engine_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	vakt "github.com/vakt/vakt"
	"github.com/vakt/vakt/engine"
	"github.com/vakt/vakt/store/storetest"
)

// The person erased in these tests comes from the cloud directory (the rig's
// configured staff cannot be erased). The markers are unusual enough not to occur
// by chance in a database file.
var marked = vakt.Staff{ID: "s-9131", Name: "Zq7 Markerperson Yxw", Phone: "+4790417263",
	Email: "zq7.marker@pleie.example", Roles: []string{"nurse"}, SecretHash: "$2a$10$markermarkermarkermarkr"}

// where the marked person last stood: nearer the room than anyone else, so the
// nearest tier offers to them.
const lastLat, lastLon = 59.91390012345, 10.75220054321

func addMarked(t *testing.T, r *rig) {
	t.Helper()
	ctx := context.Background()
	if err := r.eng.ApplyDirectory(ctx, engine.DirectoryChange{Ops: []engine.DirectoryOp{{Kind: engine.DirectoryUpsert, Staff: marked}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.eng.SetDuty(ctx, marked.ID, true); err != nil {
		t.Fatal(err)
	}
	for _, p := range [][2]float64{{59.9137111, 10.7520111}, {lastLat, lastLon}} {
		if err := r.eng.SetPosition(ctx, marked.ID, vakt.Position{Lat: p[0], Lon: p[1], Floor: 1}); err != nil {
			t.Fatal(err)
		}
	}
}

func press(t *testing.T, r *rig, n int) vakt.AlarmID {
	t.Helper()
	r.ingest(vakt.Event{Transmitter: room.ID, Kind: vakt.EventCall, Source: "test", SourceID: "press-" + string(rune('a'+n))})
	all, err := r.eng.Alarms(context.Background(), "near", "nurse") // a nurse sees every alarm
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range all {
		if a.Transmitter == room.ID {
			return a.ID
		}
	}
	t.Fatal("the press opened no alarm")
	return ""
}

func markers() map[string][]byte {
	return storetest.Needles(marked.Name, marked.Phone, marked.Email, marked.SecretHash, lastLat, lastLon)
}

// G4 and issue 7: a staff member with an open offer, a position and an open
// visit, who handled an alarm and registered a visit and an EPR record, is erased
// through the engine. Afterwards nothing of theirs is in the engine's memory, in
// the database file, its WAL or the outbox, and no later offer, tick or restart
// brings a row back. (Before, store.EraseStaff wrote beside the engine, which
// wrote the staff_state row back with the next offer and re-added the person.)
func TestEraseStaffLeavesNothing(t *testing.T) {
	ctx := context.Background()
	r, _ := newWatchedRig(t, false)
	addMarked(t, r)

	// They handle an alarm: accept, presence, complete (a visit is recorded).
	id := press(t, r, 0)
	if r.phones.count(marked.ID, vakt.NoticeOffer) != 1 {
		t.Fatalf("the nearest person was not offered the alarm: %+v", r.open())
	}
	for _, step := range []func() (vakt.Alarm, error){
		func() (vakt.Alarm, error) { return r.eng.Accept(ctx, marked.ID, id) },
		func() (vakt.Alarm, error) { return r.eng.Presence(ctx, marked.ID, id) },
		func() (vakt.Alarm, error) { return r.eng.Complete(ctx, marked.ID, id, "assisted") },
	} {
		if _, err := step(); err != nil {
			t.Fatal(err)
		}
	}
	// A visit of their own, still open, with an EPR record.
	v, err := r.eng.StartVisit(ctx, marked.ID, "102", "r-5")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.eng.EPRSent(ctx, marked.ID, v.ID, "dips"); err != nil {
		t.Fatal(err)
	}
	// And an offer out to them right now.
	open := press(t, r, 1)
	if r.phones.count(marked.ID, vakt.NoticeOffer) != 2 {
		t.Fatal("no open offer to the person before the erasure: the test would prove nothing")
	}
	if hits, _ := storetest.Found(r.path, markers()); len(hits) == 0 {
		t.Fatal("precondition: the markers are not in the files before the erasure")
	}

	got, err := r.eng.EraseStaff(ctx, "staff:admin", marked.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Staff != marked.ID || !strings.HasPrefix(string(got.Pseudonym), "erased-") || got.OffersWithdrawn != 1 ||
		got.VisitsEnded != 1 || !got.Scrubbed || got.AuditSubject != "staff:"+string(marked.ID) {
		t.Errorf("confirmation = %+v", got)
	}

	// The alarm moved on to the next nearest, and the phone sessions ended.
	r.phones.wait(t, "the alarm offered to the next person", func() bool { return r.phones.count("near", vakt.NoticeOffer) >= 1 })
	if r.phones.count(marked.ID, vakt.NoticeRevoked) != 1 {
		t.Error("the person's sessions were not told to end")
	}
	nothingLeft := func(when string) {
		t.Helper()
		where, err := engine.Holds(ctx, r.eng, marked.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(where) > 0 {
			t.Errorf("%s: still in the engine's memory: %v", when, where)
		}
		if _, err := r.eng.Staff(ctx, marked.ID); !errors.Is(err, vakt.ErrNotFound) {
			t.Errorf("%s: Staff = %v, want not found", when, err)
		}
		hits, err := storetest.Found(r.path, markers())
		if err != nil {
			t.Fatal(err)
		}
		if len(hits) > 0 {
			t.Errorf("%s: in the files: %v", when, hits)
		}
		entries, err := r.db.PendingOutbox(ctx, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			for what, n := range markers() {
				if bytes.Contains(e.Body, n) {
					t.Errorf("%s: %s in outbox entry %d (%s)", when, what, e.Seq, e.Kind)
				}
			}
		}
		x, err := r.db.ExportStaff(ctx, marked.ID)
		if err != nil {
			t.Fatal(err) // audit entries about the id remain (ids only)
		}
		if x.Directory != nil || x.State != nil || len(x.Visits)+len(x.EPR)+len(x.Alarms) != 0 {
			t.Errorf("%s: rows under the id: %+v", when, x)
		}
	}
	nothingLeft("after the erasure")
	if x, err := r.db.ExportStaff(ctx, got.Pseudonym); err != nil || len(x.Visits) != 2 || len(x.EPR) != 1 || len(x.Alarms) != 2 {
		t.Errorf("the room and time facts under the pseudonym: %+v, %v", x, err)
	}

	// Later offers and ticks: the alarm escalates, another press, time passes
	// past the position TTL.
	if _, err := r.eng.Accept(ctx, "near", open); err != nil {
		t.Fatal(err)
	}
	if _, err := r.eng.Complete(ctx, "near", open, "assisted"); err != nil {
		t.Fatal(err)
	}
	press(t, r, 2)
	r.clock.Advance(2 * time.Hour)
	r.idle()
	if err := r.eng.SetPosition(ctx, marked.ID, vakt.Position{Lat: lastLat, Lon: lastLon}); !errors.Is(err, vakt.ErrNotFound) {
		t.Errorf("SetPosition of the erased person = %v, want not found", err)
	}
	nothingLeft("after later offers and ticks")

	// A restart loads nothing of theirs.
	r.stop()
	r.start(false)
	r.idle()
	nothingLeft("after a restart")
	if err := r.db.VerifyAudit(ctx); err != nil {
		t.Errorf("audit chain after the erasure: %v", err)
	}
}

// A person from the configuration file is refused: the next start would bring
// them back.
func TestEraseConfiguredStaffRefused(t *testing.T) {
	r := newRig(t)
	_, err := r.eng.EraseStaff(context.Background(), "staff:admin", "near")
	if !errors.Is(err, engine.ErrConfigStaff) || !strings.Contains(err.Error(), "remove them from the file") {
		t.Fatalf("EraseStaff(near) = %v, want ErrConfigStaff saying to remove them from the file", err)
	}
	if _, err := r.eng.Staff(context.Background(), "near"); err != nil {
		t.Errorf("the refused erasure changed the directory: %v", err)
	}
}

// The cloud's directory page is one operation: upserts, a removal, an erasure with
// its request id audited, and the cursor, all in one commit.
func TestApplyDirectory(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	other := vakt.Staff{ID: "s-2", Name: "Other", Roles: []string{"nurse"}}
	c1 := "c-1"
	if err := r.eng.ApplyDirectory(ctx, engine.DirectoryChange{Ops: []engine.DirectoryOp{
		{Kind: engine.DirectoryUpsert, Staff: marked}, {Kind: engine.DirectoryUpsert, Staff: other}}, Cursor: &c1}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.eng.Staff(ctx, other.ID); err != nil {
		t.Fatal(err)
	}
	c2 := "c-2"
	err := r.eng.ApplyDirectory(ctx, engine.DirectoryChange{Ops: []engine.DirectoryOp{
		{Kind: engine.DirectoryRemove, Staff: vakt.Staff{ID: other.ID}},
		{Kind: engine.DirectoryErase, Staff: vakt.Staff{ID: marked.ID}, RequestID: "req-7"}}, Cursor: &c2})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []vakt.StaffID{other.ID, marked.ID} {
		if _, err := r.eng.Staff(ctx, id); !errors.Is(err, vakt.ErrNotFound) {
			t.Errorf("Staff(%s) after the page = %v", id, err)
		}
	}
	if c, _ := r.db.DirectoryCursor(ctx); c != c2 {
		t.Errorf("cursor = %q, want %q", c, c2)
	}
	seq, _ := r.db.AuditHead()
	audit, _ := r.db.AuditRange(ctx, 1, int(seq))
	var erased bool
	for _, e := range audit {
		erased = erased || (e.Action == "staff.erased" && e.Subject == "erasure:req-7" && e.Actor == "cloud")
	}
	if !erased {
		t.Error(`no "staff.erased" audit entry with subject "erasure:req-7"`)
	}
	// An erasure of a configured person refuses the whole page.
	c3 := "c-3"
	err = r.eng.ApplyDirectory(ctx, engine.DirectoryChange{Ops: []engine.DirectoryOp{
		{Kind: engine.DirectoryUpsert, Staff: other},
		{Kind: engine.DirectoryErase, Staff: vakt.Staff{ID: "near"}, RequestID: "req-8"}}, Cursor: &c3})
	if !errors.Is(err, engine.ErrConfigStaff) {
		t.Errorf("erasing a configured person from the cloud = %v, want ErrConfigStaff", err)
	}
	if _, err := r.eng.Staff(ctx, other.ID); !errors.Is(err, vakt.ErrNotFound) {
		t.Error("a refused page was applied in part")
	}
	if c, _ := r.db.DirectoryCursor(ctx); c != c2 {
		t.Errorf("a refused page moved the cursor to %q", c)
	}
	// In the page's order: erased, then hired again under the same id.
	err = r.eng.ApplyDirectory(ctx, engine.DirectoryChange{Ops: []engine.DirectoryOp{
		{Kind: engine.DirectoryErase, Staff: vakt.Staff{ID: other.ID}, RequestID: "req-9"},
		{Kind: engine.DirectoryUpsert, Staff: other}}})
	if err != nil {
		t.Fatal(err)
	}
	if m, err := r.eng.Staff(ctx, other.ID); err != nil || m.Name != other.Name {
		t.Errorf("erase then upsert: %+v, %v; want the new entry", m, err)
	}
	if x, err := r.db.ExportStaff(ctx, other.ID); err != nil || x.Directory == nil || x.Directory.Name != other.Name {
		t.Errorf("erase then upsert, on disk: %+v, %v; want the new entry", x.Directory, err)
	}
	if err := r.eng.ApplyDirectory(ctx, engine.DirectoryChange{Ops: []engine.DirectoryOp{{Kind: "rename", Staff: other}}}); err == nil {
		t.Error("an unknown kind was accepted")
	}
}

// The uploader's acknowledgement goes through the engine: entries up to the seq
// leave the outbox and the seq is kept.
func TestAcknowledgeOutbox(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	press(t, r, 0)
	all, err := r.db.PendingOutbox(ctx, 0, 0)
	if err != nil || len(all) < 3 {
		t.Fatalf("outbox = %d entries, %v", len(all), err)
	}
	upTo := all[1].Seq
	if err := r.eng.AcknowledgeOutbox(ctx, upTo); err != nil {
		t.Fatal(err)
	}
	rest, _ := r.db.PendingOutbox(ctx, 0, 0)
	if len(rest) != len(all)-2 || rest[0].Seq != all[2].Seq {
		t.Errorf("after acknowledging %d: %d entries left, first %d", upTo, len(rest), rest[0].Seq)
	}
	if n, _ := r.db.OutboxAcked(ctx); n != upTo {
		t.Errorf("OutboxAcked = %d, want %d", n, upTo)
	}
	if err := r.eng.AcknowledgeOutbox(ctx, 0); err == nil {
		t.Error("AcknowledgeOutbox(0) succeeded")
	}
}

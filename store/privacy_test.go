package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	vakt "github.com/vakt/vakt"
	"github.com/vakt/vakt/store/storetest"
)

// needles are the forms a value can take in the files (storetest.Needles).
func needles(values ...any) map[string][]byte { return storetest.Needles(values...) }

// found lists which needles occur anywhere in the files.
func found(t *testing.T, path string, needles map[string][]byte) []string {
	t.Helper()
	hits, err := storetest.Found(path, needles)
	if err != nil {
		t.Fatal(err)
	}
	return hits
}

func contains(t *testing.T, path string, needle []byte) bool {
	t.Helper()
	return len(found(t, path, map[string][]byte{"needle": needle})) > 0
}

func position(lat, lon float64, at time.Time) *vakt.Position {
	return &vakt.Position{Lat: lat, Lon: lon, Floor: 2, AccuracyM: 4.25, At: at}
}

func TestPurgePositionsLeavesNoTrace(t *testing.T) {
	ctx := context.Background()
	db, path := newTestDB(t)
	// s-1 moved three times (the first two are superseded), s-2's position is old.
	moves := [][2]float64{{59.91391234, 10.75224561}, {59.91402468, 10.75301357}, {59.91419753, 10.75386429}}
	for i, m := range moves {
		commit(t, db, &vakt.Batch{Staff: []vakt.StaffState{
			{Staff: "s-1", OnDuty: true, Availability: vakt.Available, Position: position(m[0], m[1], t0.Add(time.Duration(i)*time.Second))},
			{Staff: "s-2", OnDuty: true, Availability: vakt.Busy, Position: position(60.39299871, 5.32415192, t0.Add(-time.Hour))},
		}})
		if i == 0 {
			// Get the first positions into the main file too, not only the WAL.
			if err := db.checkpoint(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	gone := needles(moves[0][0], moves[0][1], moves[1][0], moves[1][1], 60.39299871, 5.32415192)
	for _, v := range []float64{moves[0][0], 60.39299871} {
		if !contains(t, path, binary.BigEndian.AppendUint64(nil, math.Float64bits(v))) {
			t.Fatalf("precondition: %v not in the files before the purge", v)
		}
	}

	n, err := db.PurgePositions(ctx, t0.Add(-time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("purged %d, want 1", n)
	}
	if hits := found(t, path, gone); len(hits) > 0 {
		t.Errorf("purged or superseded positions still in the files: %v", hits)
	}
	s, err := db.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.Staff[1].Position != nil || !s.Staff[1].OnDuty || s.Staff[1].Availability != vakt.Busy {
		t.Errorf("s-2 after purge: %+v", s.Staff[1])
	}
	if p := s.Staff[0].Position; p == nil || p.Lat != moves[2][0] {
		t.Errorf("s-1's current position was purged: %+v", p)
	}

	// Nearest-staff routing off: the engine commits the cleared row, then purges
	// everything (olderThan in the future).
	cleared := s.Staff[0]
	cleared.Position = nil
	commit(t, db, &vakt.Batch{Staff: []vakt.StaffState{cleared}})
	if _, err := db.PurgePositions(ctx, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if hits := found(t, path, needles(moves[2][0], moves[2][1])); len(hits) > 0 {
		t.Errorf("cleared position still in the files: %v", hits)
	}
	if s, _ := db.Load(ctx); s.Staff[0].Position != nil {
		t.Errorf("position after clearing: %+v", s.Staff[0].Position)
	}
	db.Close()
	if hits := found(t, path, gone); len(hits) > 0 {
		t.Errorf("after close: %v", hits)
	}
}

// personal is the directory entry erased in the tests; its strings are unusual
// enough not to occur by chance.
var personal = vakt.Staff{ID: "s-4711", Name: "Ingeborg Quistgaard-Vetlesen", Phone: "+4791357913",
	Email: "ingeborg.qv@pleie.example", Roles: []string{"nurse"}, SecretHash: "$2a$10$abcdefghijklmnopqrstuv", Zone: "west"}

func personalBatch() *vakt.Batch {
	a := openAlarm()
	a.ID, a.State, a.Assignee, a.AcceptedAt = "a-20", vakt.StateCompleted, personal.ID, t0.Add(time.Minute)
	a.Offers = []vakt.Offer{
		{Staff: "s-1", Tier: 1, Status: vakt.OfferRejected, OfferedAt: t0, DistanceM: 12},
		{Staff: personal.ID, Tier: 1, Status: vakt.OfferAccepted, OfferedAt: t0, DistanceM: 30.5},
	}
	other := openAlarm()
	other.ID = "a-21"
	other.Offers = []vakt.Offer{{Staff: personal.ID, Tier: 1, Status: vakt.OfferRejected, OfferedAt: t0, DistanceM: 8}}
	return &vakt.Batch{
		Alarms:    []vakt.Alarm{a, other, openAlarm()},
		Directory: []vakt.Staff{personal, {ID: "s-1", Name: "Anna A"}},
		Staff: []vakt.StaffState{{Staff: personal.ID, OnDuty: true, Availability: vakt.Available, LastOfferedAt: t0,
			Position: position(63.43049871, 10.39506913, t0)}},
		Visits: []vakt.Visit{{ID: "v-9", Staff: personal.ID, Room: "101", Resident: "r-77", Start: t0, End: t0.Add(time.Hour), Alarm: "a-20", Note: "assisted"}},
		EPR:    []vakt.EPRRecord{{Visit: "v-9", System: "dips", SentAt: t0.Add(time.Hour), Staff: personal.ID}},
		Audit: []vakt.AuditRecord{
			{At: t0, Actor: "staff:" + string(personal.ID), Action: "alarm.accepted", Subject: "alarm:a-20"},
			{At: t0, Actor: "technician", Action: "staff.exported", Subject: "staff:" + string(personal.ID)},
			{At: t0, Actor: "staff:s-1", Action: "alarm.rejected", Subject: "alarm:a-20"},
		},
	}
}

func TestExportStaff(t *testing.T) {
	ctx := context.Background()
	db, _ := newTestDB(t)
	commit(t, db, personalBatch())
	x, err := db.ExportStaff(ctx, personal.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := StaffExport{
		Format: StaffExportFormat, StaffID: personal.ID, ExportedAt: t0,
		Directory: &ExportedStaff{Name: personal.Name, Phone: personal.Phone, Email: personal.Email,
			Roles: []string{"nurse"}, Zone: "west", CredentialSet: true},
		State: &ExportedState{OnDuty: true, Availability: "available", LastOfferedAt: t0,
			Position: &ExportedPosition{Lat: 63.43049871, Lon: 10.39506913, Floor: 2, AccuracyM: 4.25, At: t0}},
		Visits: []ExportedVisit{{ID: "v-9", Room: "101", Resident: "r-77", Start: t0, End: t0.Add(time.Hour), Alarm: "a-20", Note: "assisted"}},
		EPR:    []ExportedEPR{{Visit: "v-9", System: "dips", SentAt: t0.Add(time.Hour)}},
		Alarms: []ExportedAlarm{
			{ID: "a-20", Kind: "emergency", Priority: 1, State: "completed", RaisedAt: t0, Accepted: true, AcceptedAt: t0.Add(time.Minute),
				Offers: []ExportedOffer{{Tier: 1, Status: "accepted", OfferedAt: t0, DistanceM: 30.5}}},
			{ID: "a-21", Kind: "emergency", Priority: 1, State: "offered", RaisedAt: t0,
				Offers: []ExportedOffer{{Tier: 1, Status: "rejected", OfferedAt: t0, DistanceM: 8}}},
		},
		Audit: []ExportedAudit{
			{Seq: 1, At: t0, Actor: "staff:s-4711", Action: "alarm.accepted", Subject: "alarm:a-20"},
			{Seq: 2, At: t0, Actor: "technician", Action: "staff.exported", Subject: "staff:s-4711"},
		},
	}
	if !reflect.DeepEqual(x, want) {
		t.Errorf("export:\n got %+v\nwant %+v", x, want)
	}
	doc, err := json.MarshalIndent(x, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(doc, []byte(personal.SecretHash)) {
		t.Error("export discloses the credential hash")
	}
	for _, key := range []string{`"format": "vakt-staff-export/1"`, `"epr_records"`, `"credential_set": true`, `"exported_at": "2025-03-14T09:26:53.589793238Z"`} {
		if !bytes.Contains(doc, []byte(key)) {
			t.Errorf("export JSON lacks %s:\n%s", key, doc)
		}
	}

	// Someone with only an empty state row, and someone unknown.
	commit(t, db, &vakt.Batch{Staff: []vakt.StaffState{{Staff: "s-new"}}})
	if x, err := db.ExportStaff(ctx, "s-new"); err != nil || x.Directory != nil || x.State == nil || x.Visits == nil {
		t.Errorf("ExportStaff(s-new) = %+v, %v", x, err)
	}
	if _, err := db.ExportStaff(ctx, "s-nobody"); !errors.Is(err, vakt.ErrNotFound) {
		t.Errorf("ExportStaff(unknown) = %v, want ErrNotFound", err)
	}
}

func TestEraseStaffLeavesNoTrace(t *testing.T) {
	ctx := context.Background()
	db, path := newTestDB(t)
	commit(t, db, personalBatch())
	if err := db.checkpoint(ctx); err != nil { // the main file holds the row too
		t.Fatal(err)
	}
	// An earlier phone number lingers in old WAL frames unless erasure removes them.
	moved := personal
	moved.Phone = "+4792468024"
	commit(t, db, &vakt.Batch{Directory: []vakt.Staff{moved}})

	gone := needles(personal.Name, personal.Phone, moved.Phone, personal.Email, personal.SecretHash, 63.43049871, 10.39506913)
	for name, n := range gone {
		if strings.Contains(name, "big-endian") || strings.HasPrefix(name, `"`) {
			if !contains(t, path, n) {
				t.Fatalf("precondition: %s not in the files before erasure", name)
			}
		}
	}

	eraseStaff(t, db, personal.ID, "erased-1")
	if hits := found(t, path, gone); len(hits) > 0 {
		t.Errorf("erased data still in the files: %v", hits)
	}

	s, err := db.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range s.Directory {
		if st.ID == personal.ID {
			t.Error("directory row survived")
		}
	}
	if len(s.Staff) != 0 {
		t.Errorf("staff state survived: %+v", s.Staff)
	}
	if v, _ := db.Visits(ctx, "erased-1"); len(v) != 1 || v[0].Room != "101" {
		t.Errorf("visits under the pseudonym: %+v", v)
	}
	if v, _ := db.Visits(ctx, personal.ID); len(v) != 0 {
		t.Errorf("visits still under the id: %+v", v)
	}
	a, _ := db.Alarm(ctx, "a-20")
	if a.Assignee != "erased-1" || a.Offers[1].Staff != "erased-1" || a.Offers[0].Staff != "s-1" {
		t.Errorf("alarm a-20 after erasure: assignee %s, offers %+v", a.Assignee, a.Offers)
	}
	if a, _ := db.Alarm(ctx, "a-21"); a.Offers[0].Staff != "erased-1" {
		t.Errorf("alarm a-21 offers: %+v", a.Offers)
	}
	if x, err := db.ExportStaff(ctx, "erased-1"); err != nil || len(x.EPR) != 1 || len(x.Alarms) != 2 {
		t.Errorf("export under the pseudonym: %+v, %v", x, err)
	}
	// The audit chain is untouched and still holds only the id.
	if err := db.VerifyAudit(ctx); err != nil {
		t.Error(err)
	}
	if x, err := db.ExportStaff(ctx, personal.ID); err != nil || x.Directory != nil || x.State != nil ||
		len(x.Visits)+len(x.EPR)+len(x.Alarms) != 0 || len(x.Audit) != 2 {
		t.Errorf("export after erasure: %+v, %v", x, err)
	}
	// Erasing again is fine.
	eraseStaff(t, db, personal.ID, "erased-1")
	db.Close()
	if hits := found(t, path, gone); len(hits) > 0 {
		t.Errorf("after close: %v", hits)
	}
	if err := openTest(t, path).IntegrityCheck(ctx); err != nil {
		t.Error(err)
	}
}

// eraseStaff commits an erasure and scrubs the files, as the engine's loop does.
func eraseStaff(t *testing.T, db *DB, id vakt.StaffID, pseudonym vakt.StaffID) {
	t.Helper()
	commit(t, db, &vakt.Batch{Erasures: []vakt.Erasure{{Staff: id, Pseudonym: pseudonym}}})
	if _, err := db.PurgePositions(context.Background(), time.Now()); err != nil {
		t.Fatal(err)
	}
}

func TestEraseStaffNeedsPseudonym(t *testing.T) {
	db, _ := newTestDB(t)
	commit(t, db, personalBatch())
	for _, p := range []vakt.StaffID{"", personal.ID} {
		err := db.Commit(context.Background(), &vakt.Batch{Erasures: []vakt.Erasure{{Staff: personal.ID, Pseudonym: p}}})
		if err == nil {
			t.Errorf("erasure with pseudonym %q committed", p)
		}
	}
	if x, _ := db.ExportStaff(context.Background(), personal.ID); x.Directory == nil {
		t.Error("a refused erasure removed the directory entry: the batch must fail whole")
	}
}

package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	vakt "github.com/vakt/vakt"
	"github.com/vakt/vakt/api"
	"github.com/vakt/vakt/engine"
	"github.com/vakt/vakt/routing"
	"github.com/vakt/vakt/store"
	"golang.org/x/crypto/bcrypt"
)

// fixture is a real engine on a real SQLite file behind the API: two nurses on
// duty, one SOS button, nearest-one routing so only nurse-a is offered.
type fixture struct {
	t     testing.TB
	srv   *httptest.Server
	api   *api.Server
	eng   *engine.Engine
	db    *store.DB
	alarm string
}

func newFixture(t *testing.T) *fixture { return newFixtureWith(t, nil) }

// newFixtureWith lets a test change the API's options (clock, logger, limits).
func newFixtureWith(t testing.TB, tweak func(*api.Options)) *fixture {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "vakt.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	router, err := routing.New(routing.Config{
		OfferConfirm: 10 * time.Second, FloorPenaltyM: 30, NearestEnabled: true, PositionTTL: time.Hour,
		Policies: []routing.Policy{{Name: "all", Tiers: []routing.Tier{{Target: routing.TargetNearest, Count: 1, Wait: time.Minute}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	hash, _ := bcrypt.GenerateFromPassword([]byte("s3cret-a"), bcrypt.MinCost)
	hashB, _ := bcrypt.GenerateFromPassword([]byte("s3cret-b"), bcrypt.MinCost)
	tx := []vakt.Transmitter{{ID: "room-1-sos", Location: vakt.Location{Room: "1", Zone: "east", Floor: 1, Lat: 59.9139, Lon: 10.7522}}}
	opt := api.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		VisitNotes: []string{"assisted", "false alarm", "round", "done"}}
	if tweak != nil {
		tweak(&opt)
	}
	hub := api.NewHub(api.HubOptions{Transmitters: tx, Logger: opt.Logger, Clock: opt.Clock})
	opt.Hub = hub
	near := vakt.Position{Lat: 59.91391, Lon: 10.7522, Floor: 1}
	far := vakt.Position{Lat: 59.9150, Lon: 10.7522, Floor: 1}
	eng, err := engine.New(ctx, engine.Options{
		Store: db, Router: router, Notifier: hub, Transmitters: tx, NearestRouting: true, PositionTTL: time.Hour,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Directory: []vakt.Staff{
			{ID: "nurse-a", Name: "A", Roles: []string{"nurse"}, SecretHash: string(hash)},
			{ID: "nurse-b", Name: "B", Phone: "+4790000002", Email: "b@example.org", Roles: []string{"nurse"}, SecretHash: string(hashB)},
		},
		InitialStaff: []vakt.StaffState{
			{Staff: "nurse-a", OnDuty: true, Availability: vakt.Available, Position: &near},
			{Staff: "nurse-b", OnDuty: true, Availability: vakt.Available, Position: &far},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	opt.Service = eng
	srv, err := api.New(opt)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = eng.Run(ctx); close(done) }()
	hs := httptest.NewServer(srv)
	t.Cleanup(func() { hs.Close(); srv.Close(); cancel(); <-done; _ = db.Close() })

	f := &fixture{t: t, srv: hs, api: srv, eng: eng, db: db}
	committed := make(chan error, 1)
	if err := eng.Ingest(vakt.Event{Transmitter: "room-1-sos", Kind: vakt.EventEmergency, Source: "test"}, func(err error) { committed <- err }); err != nil {
		t.Fatal(err)
	}
	if err := <-committed; err != nil {
		t.Fatal(err)
	}
	list, err := eng.Alarms(ctx, "nurse-a")
	if err != nil || len(list) != 1 {
		t.Fatalf("alarm not offered to nurse-a: %v %v", list, err)
	}
	f.alarm = string(list[0].ID)
	return f
}

func (f *fixture) do(method, path, token, body string) (int, string) {
	f.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, f.srv.URL+path, rd)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (f *fixture) login(staff, secret string) string {
	f.t.Helper()
	code, body := f.do("POST", "/api/v1/sessions", "", `{"staff_id":"`+staff+`","secret":"`+secret+`"}`)
	if code != http.StatusCreated {
		f.t.Fatalf("login %s: %d %s", staff, code, body)
	}
	var r struct{ Token string }
	_ = json.Unmarshal([]byte(body), &r)
	return r.Token
}

// TestStaffActOnlyOnTheirAlarms is S2's second half: nurse-b was not offered the
// alarm, so may not take it; nurse-a may, and then nurse-b may not complete it.
func TestStaffActOnlyOnTheirAlarms(t *testing.T) {
	f := newFixture(t)
	a, b := f.login("nurse-a", "s3cret-a"), f.login("nurse-b", "s3cret-b")
	base := "/api/v1/alarms/" + f.alarm
	steps := []struct {
		token, verb string
		want        int
	}{
		{b, "accept", http.StatusForbidden},
		{b, "reject", http.StatusForbidden},
		{b, "presence", http.StatusForbidden},
		{a, "presence", http.StatusConflict}, // not accepted yet
		{a, "accept", http.StatusOK},
		{a, "accept", http.StatusOK}, // twice is harmless
		{b, "complete", http.StatusForbidden},
		{a, "presence", http.StatusOK},
		{a, "complete", http.StatusOK},
		// A closed alarm is a conflict with what happened, not an unknown one.
		{a, "complete", http.StatusConflict},
		{a, "presence", http.StatusConflict},
	}
	for i, s := range steps {
		if code, body := f.do("POST", base+"/"+s.verb, s.token, ""); code != s.want {
			t.Fatalf("step %d %s: %d %s, want %d", i, s.verb, code, body, s.want)
		}
	}
	if code, body := f.do("POST", base+"/presence", a, ""); !strings.Contains(body, "this alarm is already completed") {
		t.Errorf("presence after completion: %d %s, want a message saying it is already completed", code, body)
	}
	if code, _ := f.do("POST", "/api/v1/alarms/a-999/presence", a, ""); code != http.StatusNotFound {
		t.Errorf("presence on an alarm that never was: %d, want 404", code)
	}
	if code, body := f.do("GET", "/api/v1/alarms", b, ""); code != 200 || body != "[]\n" {
		t.Fatalf("nurse-b sees %d %s", code, body)
	}
}

// TestLoginRefusalsLookAlikeAndThrottle covers S3: a wrong id and a wrong secret get
// the same answer, and repeated failures get 429 even with the right secret.
func TestLoginRefusalsLookAlikeAndThrottle(t *testing.T) {
	f := newFixture(t)
	_, unknown := f.do("POST", "/api/v1/sessions", "", `{"staff_id":"nobody","secret":"x"}`)
	code, wrong := f.do("POST", "/api/v1/sessions", "", `{"staff_id":"nurse-a","secret":"x"}`)
	if code != 401 || unknown != wrong {
		t.Fatalf("unknown id %q vs wrong secret %q (%d)", unknown, wrong, code)
	}
	for range 4 {
		f.do("POST", "/api/v1/sessions", "", `{"staff_id":"nurse-a","secret":"x"}`)
	}
	code, body := f.do("POST", "/api/v1/sessions", "", `{"staff_id":"nurse-a","secret":"s3cret-a"}`)
	if code != http.StatusTooManyRequests || !strings.Contains(body, "rate_limited") {
		t.Fatalf("after 5 failures: %d %s, want 429", code, body)
	}
}

// TestBadBodiesAreClearErrors: unknown fields, wrong types, oversize bodies, and
// positions that must not be stored.
func TestBadBodiesAreClearErrors(t *testing.T) {
	f := newFixture(t)
	a := f.login("nurse-a", "s3cret-a")
	cases := []struct {
		name, method, path, body string
		want                     int
		msg                      string
	}{
		{"unknown field", "PUT", "/api/v1/me/duty", `{"on_duty":true,"x":1}`, 400, `unknown field \"x\"`},
		{"wrong type", "PUT", "/api/v1/me/duty", `{"on_duty":"yes"}`, 400, "on_duty has the wrong type"},
		{"missing", "PUT", "/api/v1/me/duty", `{}`, 400, "on_duty is required"},
		{"bad availability", "PUT", "/api/v1/me/availability", `{"availability":"sleeping"}`, 400, "availability must be"},
		{"bad latitude", "PUT", "/api/v1/me/position", `{"lat":99,"lon":10}`, 400, "lat is required and must be within -90..90"},
		{"oversize", "PUT", "/api/v1/me/duty", `{"on_duty":true,"pad":"` + strings.Repeat("x", 20<<10) + `"}`, 413, "too large"},
		{"epr content refused", "POST", "/api/v1/visits/v-1/epr", `{"system":"x","content":"patient notes"}`, 400, `unknown field \"content\"`},
		{"trailing data", "PUT", "/api/v1/me/duty", `{"on_duty":true} {}`, 400, "trailing data"},
	}
	for _, c := range cases {
		code, body := f.do(c.method, c.path, a, c.body)
		if code != c.want || !strings.Contains(body, c.msg) {
			t.Errorf("%s: %d %s, want %d with %q", c.name, code, body, c.want, c.msg)
		}
	}
	// Off duty: the position is refused and nothing is kept (G1).
	if code, body := f.do("PUT", "/api/v1/me/duty", a, `{"on_duty":false}`); code != 200 || !strings.Contains(body, `"has_position":false`) {
		t.Fatalf("off duty: %d %s", code, body)
	}
	if code, body := f.do("PUT", "/api/v1/me/position", a, `{"lat":59.9,"lon":10.7}`); code != http.StatusConflict {
		t.Fatalf("position off duty: %d %s, want 409", code, body)
	}
}

// TestVisitAndEPRRecord: a home-care visit with an EPR-sent mark, metadata only.
func TestVisitAndEPRRecord(t *testing.T) {
	f := newFixture(t)
	a, b := f.login("nurse-a", "s3cret-a"), f.login("nurse-b", "s3cret-b")
	code, body := f.do("POST", "/api/v1/visits", a, `{"room":"204","resident":"r-7f3a"}`)
	if code != 201 {
		t.Fatalf("start visit: %d %s", code, body)
	}
	var v struct{ ID string }
	_ = json.Unmarshal([]byte(body), &v)
	if code, body := f.do("GET", "/api/v1/visits", a, ""); code != 200 || !strings.Contains(body, v.ID) {
		t.Fatalf("open visits of nurse-a: %d %s", code, body)
	}
	if code, body := f.do("GET", "/api/v1/visits", b, ""); code != 200 || body != "[]\n" {
		t.Fatalf("nurse-b sees another's visit: %d %s", code, body)
	}
	if code, _ := f.do("POST", "/api/v1/visits/"+v.ID+"/end", b, ""); code != http.StatusForbidden {
		t.Fatalf("someone else ended the visit: %d", code)
	}
	if code, body := f.do("POST", "/api/v1/visits/"+v.ID+"/end", a, `{"note":"round"}`); code != 200 || !strings.Contains(body, `"end":"`) {
		t.Fatalf("end visit: %d %s", code, body)
	}
	if code, body := f.do("POST", "/api/v1/visits/"+v.ID+"/epr", a, `{"system":"CosDoc"}`); code != 201 || !strings.Contains(body, `"system":"CosDoc"`) {
		t.Fatalf("epr: %d %s", code, body)
	}
	if code, body := f.do("GET", "/api/v1/visits", a, ""); code != 200 || body != "[]\n" {
		t.Fatalf("ended visit still open: %d %s", code, body)
	}
}

// TestMeSaysWhetherPositionsAreWanted: a phone learns from GET /me whether the site
// routes to the nearest staff, so it shares no position where none would be kept.
func TestMeSaysWhetherPositionsAreWanted(t *testing.T) {
	for _, on := range []bool{true, false} {
		f := newFixtureWith(t, func(o *api.Options) { o.NearestRouting = on })
		code, body := f.do("GET", "/api/v1/me", f.login("nurse-a", "s3cret-a"), "")
		want := fmt.Sprintf(`"nearest_routing":%v`, on)
		if code != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("nearest routing %v: GET /me = %d %s, want %s", on, code, body, want)
		}
	}
}

// TestColleaguesOnDutyWithPhone: a nurse sees the colleagues on duty with their phone
// numbers (the policy's purpose for holding them) and nothing else about them: no
// position, no e-mail; a colleague who goes off duty leaves the list.
func TestColleaguesOnDutyWithPhone(t *testing.T) {
	f := newFixture(t)
	a := f.login("nurse-a", "s3cret-a")
	code, body := f.do("GET", "/api/v1/colleagues", a, "")
	if code != 200 || !strings.Contains(body, `{"id":"nurse-b","name":"B","phone":"+4790000002","roles":["nurse"],"availability":"available"}`) {
		t.Fatalf("colleagues: %d %s", code, body)
	}
	for _, never := range []string{`"nurse-a"`, "59.91", "lat", "example.org"} {
		if strings.Contains(body, never) {
			t.Errorf("colleagues shows %q: %s", never, body)
		}
	}
	b := f.login("nurse-b", "s3cret-b")
	if code, _ := f.do("PUT", "/api/v1/me/duty", b, `{"on_duty":false}`); code != 200 {
		t.Fatalf("off duty: %d", code)
	}
	if code, body := f.do("GET", "/api/v1/colleagues", a, ""); code != 200 || body != `{"colleagues":[]}`+"\n" && body != `{"colleagues":[]}` {
		t.Fatalf("after nurse-b went off duty: %d %q", code, body)
	}
}

// TestLoginsFailuresAndLogoutsAreAudited (S7): a login, a failed login (of a known
// and of an unknown id: the stranger's typing is not written) and a logout each
// leave an audit entry in the chain.
func TestLoginsFailuresAndLogoutsAreAudited(t *testing.T) {
	f := newFixture(t)
	f.do("POST", "/api/v1/sessions", "", `{"staff_id":"nurse-a","secret":"wrong"}`)
	f.do("POST", "/api/v1/sessions", "", `{"staff_id":"Robert'); DROP TABLE","secret":"x"}`)
	a := f.login("nurse-a", "s3cret-a")
	if code, _ := f.do("DELETE", "/api/v1/sessions/current", a, ""); code != http.StatusNoContent {
		t.Fatalf("logout: %d", code)
	}
	entries, err := f.db.AuditRange(context.Background(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		if strings.HasPrefix(e.Action, "session.") {
			got = append(got, e.Action+" "+e.Subject)
		}
		if strings.Contains(e.Subject+e.Actor, "DROP") {
			t.Errorf("an unknown id was written to the audit: %+v", e)
		}
	}
	want := []string{"session.login_failed staff:nurse-a", "session.login_failed staff:unknown",
		"session.login staff:nurse-a", "session.logout staff:nurse-a"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("audit:\n got %q\nwant %q", got, want)
	}
	if err := f.db.VerifyAudit(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestVisitNotesFromTheVocabularyOnly: a visit record carries one of the site's notes
// (privacy.visit_notes) or none; free text — where a resident's health could be typed
// — is refused with the choices, and the refused request changes nothing.
func TestVisitNotesFromTheVocabularyOnly(t *testing.T) {
	f := newFixture(t)
	a := f.login("nurse-a", "s3cret-a")
	if code, body := f.do("GET", "/api/v1/me", a, ""); code != 200 || !strings.Contains(body, `"visit_notes":["assisted","false alarm","round","done"]`) {
		t.Fatalf("GET /me: %d %s, want the choices", code, body)
	}

	code, body := f.do("POST", "/api/v1/visits", a, `{"room":"204"}`)
	if code != 201 {
		t.Fatalf("start visit: %d %s", code, body)
	}
	var v struct{ ID string }
	_ = json.Unmarshal([]byte(body), &v)
	end := "/api/v1/visits/" + v.ID + "/end"
	code, body = f.do("POST", end, a, `{"note":"insulin given, blood sugar 4.1"}`)
	if code != http.StatusBadRequest || !strings.Contains(body, "note must be one of: assisted, false alarm, round, done") {
		t.Fatalf("free-text note: %d %s, want 400 with the choices", code, body)
	}
	if code, body := f.do("GET", "/api/v1/visits", a, ""); !strings.Contains(body, v.ID) {
		t.Fatalf("a refused end ended the visit: %d %s", code, body)
	}
	if code, body := f.do("POST", end, a, `{"note":"round"}`); code != 200 || !strings.Contains(body, `"note":"round"`) {
		t.Fatalf("note from the list: %d %s", code, body)
	}

	base := "/api/v1/alarms/" + f.alarm
	if code, body := f.do("POST", base+"/accept", a, ""); code != 200 {
		t.Fatalf("accept: %d %s", code, body)
	}
	if code, body := f.do("POST", base+"/complete", a, `{"visit":{"note":"fell, bleeding from the head"}}`); code != http.StatusBadRequest || !strings.Contains(body, "visit.note must be one of") {
		t.Fatalf("free-text visit note on completion: %d %s, want 400", code, body)
	}
	if code, body := f.do("GET", base, a, ""); !strings.Contains(body, `"state":"accepted"`) {
		t.Fatalf("a refused completion completed the alarm: %d %s", code, body)
	}
	if code, body := f.do("POST", base+"/complete", a, `{"visit":{"note":"assisted"}}`); code != 200 {
		t.Fatalf("completion with a note from the list: %d %s", code, body)
	}
}

// TestVisitNotesOff: privacy.visit_notes: [] keeps no notes at all.
func TestVisitNotesOff(t *testing.T) {
	f := newFixtureWith(t, func(o *api.Options) { o.VisitNotes = []string{} })
	a := f.login("nurse-a", "s3cret-a")
	if code, body := f.do("GET", "/api/v1/me", a, ""); strings.Contains(body, "visit_notes") {
		t.Fatalf("GET /me offers notes where none are kept: %d %s", code, body)
	}
	code, body := f.do("POST", "/api/v1/visits", a, `{"room":"204"}`)
	if code != 201 {
		t.Fatalf("start visit: %d %s", code, body)
	}
	var v struct{ ID string }
	_ = json.Unmarshal([]byte(body), &v)
	if code, body := f.do("POST", "/api/v1/visits/"+v.ID+"/end", a, `{"note":"round"}`); code != http.StatusBadRequest || !strings.Contains(body, "keeps no visit notes") {
		t.Fatalf("note where none are kept: %d %s", code, body)
	}
	if code, body := f.do("POST", "/api/v1/visits/"+v.ID+"/end", a, ""); code != 200 {
		t.Fatalf("end without a note: %d %s", code, body)
	}
}

package status_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	vakt "github.com/vakt/vakt"
	"github.com/vakt/vakt/engine"
	"github.com/vakt/vakt/status"
)

type audits struct {
	mu   sync.Mutex
	list []string
}

func (a *audits) record(_ context.Context, reader vakt.StaffID, what string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.list = append(a.list, string(reader)+" "+what)
	return nil
}

func server(a *audits) *status.Server {
	bat := 5
	at := time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)
	low := vakt.Alarm{ID: "a-1", Transmitter: "room-101", Kind: vakt.EventLowBattery, State: vakt.StateOffered, Priority: vakt.PriorityTechnical, RaisedAt: at}
	v := &engine.View{At: at,
		Transmitters: []engine.TransmitterView{{
			Transmitter: vakt.Transmitter{ID: "room-101", Location: vakt.Location{Room: "101", Lat: 59.9139, Lon: 10.7522}, Supervision: time.Hour},
			Configured:  true, Health: vakt.TransmitterHealth{Transmitter: "room-101", LastSeen: at, Battery: &bat},
			SilentFor: 40 * time.Minute, Technical: []vakt.Alarm{low}}},
		Staff: []engine.StaffView{
			{ID: "nurse-1", Name: "Ingrid", Roles: []string{"nurse"}, State: vakt.StaffState{OnDuty: true, Position: &vakt.Position{Lat: 59.91395, Lon: 10.7523}}},
			{ID: "tech-1", Name: "Tore", Roles: []string{"technician"}, State: vakt.StaffState{OnDuty: true}}},
		Alarms: []vakt.Alarm{low}}
	return status.New(status.Options{
		Site: "test", View: func() *engine.View { return v }, Audit: a.record,
		Caller: func(r *http.Request) (vakt.StaffID, bool) {
			id, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			return vakt.StaffID(id), ok && id != "stale"
		},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
}

func load(t *testing.T, h http.Handler, token string) (*httptest.ResponseRecorder, status.Data) {
	t.Helper()
	return loadPath(t, h, token, "/status/data?names=1")
}

func loadPath(t *testing.T, h http.Handler, token, path string) (*httptest.ResponseRecorder, status.Data) {
	t.Helper()
	req := httptest.NewRequest("GET", path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	var d status.Data
	if w.Code == http.StatusOK {
		if err := json.Unmarshal(w.Body.Bytes(), &d); err != nil {
			t.Fatal(err)
		}
	}
	return w, d
}

// TestStatusDataRolesAndAudit (G6): every technician load that carries staff names
// is one audit entry, a refresh without names is none; a nurse gets 403 and a stale
// token 401, neither audited nor shown any name.
func TestStatusDataRolesAndAudit(t *testing.T) {
	a := &audits{}
	h := server(a)
	for range 2 {
		w, d := load(t, h, "tech-1")
		if w.Code != http.StatusOK {
			t.Fatalf("technician: %d %s", w.Code, w.Body)
		}
		tx := d.Transmitters[0]
		if tx.Supervision != "late" || *tx.Battery != 5 || len(tx.Technical) != 1 || tx.Technical[0].Kind != "low-battery" {
			t.Errorf("transmitter row %+v", tx)
		}
		if len(d.Plan.Points) != 2 || d.Plan.Points[1].Type != "staff" || !d.Plan.Points[0].Alert {
			t.Errorf("plan %+v", d.Plan)
		}
	}
	for tok, want := range map[string]int{"nurse-1": http.StatusForbidden, "stale": http.StatusUnauthorized, "": http.StatusUnauthorized} {
		w, _ := load(t, h, tok)
		if w.Code != want {
			t.Errorf("token %q: %d, want %d", tok, w.Code, want)
		}
		if strings.Contains(w.Body.String(), "Ingrid") {
			t.Errorf("token %q: a name in the refusal", tok)
		}
	}
	if len(a.list) != 2 || a.list[0] != "tech-1 status:staff" {
		t.Fatalf("audit entries %q, want one per technician load", a.list)
	}
	// The page's refreshes without names: no name in them, nothing audited.
	w, d := loadPath(t, h, "tech-1", "/status/data")
	if w.Code != http.StatusOK || strings.Contains(w.Body.String(), "Ingrid") || len(d.Staff) != 2 || d.Staff[0].Availability == "" {
		t.Fatalf("refresh without names: %d %s", w.Code, w.Body)
	}
	if len(a.list) != 2 {
		t.Fatalf("a refresh without names was audited: %q", a.list)
	}
}

// TestStatusPageServesOwnAssets: the shell and its script come from the gateway,
// with a policy that forbids anything from elsewhere.
func TestStatusPageServesOwnAssets(t *testing.T) {
	h := server(&audits{})
	for _, p := range []string{"/status", "/status/static/status.js", "/status/static/status.css"} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", p, nil))
		if w.Code != http.StatusOK {
			t.Errorf("%s: %d", p, w.Code)
		}
		if csp := w.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
			t.Errorf("%s: CSP %q", p, csp)
		}
		body := strings.ReplaceAll(w.Body.String(), "http://www.w3.org/2000/svg", "") // a namespace, not a fetch
		if strings.Contains(body, "http://") || strings.Contains(body, "https://") {
			t.Errorf("%s refers to another site", p)
		}
	}
}

// TestReadyz: 503 naming what is missing until every part reports ready.
func TestReadyz(t *testing.T) {
	hl := status.NewHealth(status.PartStore, status.PartDrivers)
	get := func() (int, string) {
		w := httptest.NewRecorder()
		hl.Readyz(w, httptest.NewRequest("GET", "/readyz", nil))
		return w.Code, strings.TrimSpace(w.Body.String())
	}
	hl.Ready(status.PartStore)
	if c, b := get(); c != http.StatusServiceUnavailable || b != "starting: waiting for drivers" {
		t.Fatalf("%d %q", c, b)
	}
	hl.Ready(status.PartDrivers)
	<-hl.Done()
	if c, b := get(); c != http.StatusOK || b != "ready" {
		t.Fatalf("%d %q", c, b)
	}
}

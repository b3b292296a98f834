// Package status serves the technician's status page and the gateway's health
// endpoints. The page is one embedded HTML shell (page.go, no internet assets,
// made for a phone) that logs in through the phone API and then fetches
// /status/data with the bearer token; the data comes from the engine's published
// View, never from queries queued on the write loop. Only technicians and admins may
// read it, and every read of staff data is audited through the engine (G6).
package status

import (
	"cmp"
	"context"
	"embed"
	"encoding/json"
	"io/fs"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"time"

	vakt "github.com/vakt/vakt"
	"github.com/vakt/vakt/engine"
)

//go:embed assets
var assets embed.FS

// pageShell is the embedded page, filled per request by renderPage.
var pageShell = mustRead("assets/status.html")

func mustRead(name string) []byte {
	b, err := assets.ReadFile(name)
	if err != nil {
		panic(err) // embedded at build time
	}
	return b
}

// DefaultRoles may read the status page.
var DefaultRoles = []string{"technician", "admin"}

// Options configures the status server.
type Options struct {
	Site    string
	Version string
	// View returns the engine's latest published view.
	View func() *engine.View
	// Caller resolves the bearer token of a request to a staff id (the phone API's
	// sessions); ok is false for no or an invalid token.
	Caller func(r *http.Request) (vakt.StaffID, bool)
	// Audit records that reader loaded the page's staff data.
	Audit func(ctx context.Context, reader vakt.StaffID, what string) error
	// History returns the events of an alarm (read-only pool); nil: none shown.
	History func(ctx context.Context, id vakt.AlarmID) ([]vakt.EventRecord, error)
	// Drivers returns the drivers' health; nil: none shown.
	Drivers func() Drivers
	Roles   []string // who may read; default DefaultRoles
	Logger  *slog.Logger
}

// Server serves /status and /status/data.
type Server struct {
	opt Options
	mux *http.ServeMux
}

// New builds the server.
func New(opt Options) *Server {
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	if len(opt.Roles) == 0 {
		opt.Roles = DefaultRoles
	}
	s := &Server{opt: opt, mux: http.NewServeMux()}
	static, _ := fs.Sub(assets, "assets")
	s.mux.HandleFunc("GET /status", s.page)
	s.mux.HandleFunc("GET /status/{$}", s.page)
	s.mux.Handle("GET /status/static/", http.StripPrefix("/status/static/", http.FileServerFS(static)))
	s.mux.HandleFunc("GET /status/data", s.data)
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Nothing from elsewhere: no CDN, no inline script, not framed.
	w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Referrer-Policy", "no-referrer")
	s.mux.ServeHTTP(w, r)
}

func (s *Server) page(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if _, err := w.Write(renderPage(pageShell, s.opt.Site, s.opt.Version)); err != nil {
		s.opt.Logger.Warn("status page", "err", err)
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, kind, msg string) {
	writeJSON(w, code, map[string]any{"error": map[string]string{"code": kind, "message": msg}})
}

func (s *Server) data(w http.ResponseWriter, r *http.Request) {
	id, ok := s.opt.Caller(r)
	if !ok {
		writeError(w, http.StatusUnauthorized, "unauthorized", "missing or invalid token")
		return
	}
	v := s.opt.View()
	if v == nil {
		writeError(w, http.StatusServiceUnavailable, "starting", "the gateway is starting")
		return
	}
	if !s.allowed(v, id) {
		s.opt.Logger.Warn("status page refused", "staff", id)
		writeError(w, http.StatusForbidden, "forbidden", "the status page is for technicians and admins")
		return
	}
	// Staff names are personal data: they come only with ?names=1, and every such
	// load is one audit entry (G6). The page asks for them when it opens and every
	// few minutes; its 5-second refreshes in between carry ids only and write
	// nothing, so an open tab does not fsync the card every 5 seconds.
	names := r.URL.Query().Get("names") == "1"
	if names {
		if err := s.opt.Audit(r.Context(), id, "status:staff"); err != nil {
			s.opt.Logger.Error("status read not audited: refused", "staff", id, "err", err)
			writeError(w, http.StatusServiceUnavailable, "unavailable", "the read could not be audited; try again")
			return
		}
	}
	d := s.build(r.Context(), v, names)
	writeJSON(w, http.StatusOK, d)
}

func (s *Server) allowed(v *engine.View, id vakt.StaffID) bool {
	i, ok := slices.BinarySearchFunc(v.Staff, id, func(sv engine.StaffView, id vakt.StaffID) int { return cmp.Compare(sv.ID, id) })
	if !ok {
		return false
	}
	return vakt.Staff{Roles: v.Staff[i].Roles}.HasRole(s.opt.Roles...)
}

// Data is what /status/data returns (docs/status.md).
type Data struct {
	Site         string        `json:"site"`
	Version      string        `json:"version"`
	At           time.Time     `json:"at"`
	WalkTest     bool          `json:"walk_test"`
	Degraded     bool          `json:"degraded"`
	Transmitters []Transmitter `json:"transmitters"`
	Staff        []Staff       `json:"staff"`
	Alarms       []Alarm       `json:"alarms"`
	Drivers      *Drivers      `json:"drivers,omitempty"`
	Plan         Plan          `json:"plan"`
}

// Transmitter is one row of the transmitters table.
type Transmitter struct {
	ID         string     `json:"id"`
	Kind       string     `json:"kind"`
	Room       string     `json:"room"`
	Zone       string     `json:"zone"`
	Floor      int        `json:"floor"`
	Driver     string     `json:"driver"`
	Configured bool       `json:"configured"`
	LastSeen   *time.Time `json:"last_seen"`
	Battery    *int       `json:"battery"`
	Link       *int       `json:"link"`
	// Supervision is "off" (not supervised), "ok", "late" (past half its period)
	// or "missed" (an offline alarm is open).
	Supervision string  `json:"supervision"`
	Technical   []Alarm `json:"technical"`
}

// Staff is one staff member. Name is set only on an audited load (?names=1).
type Staff struct {
	ID           string   `json:"id"`
	Name         string   `json:"name,omitempty"`
	Roles        []string `json:"roles"`
	OnDuty       bool     `json:"on_duty"`
	Availability string   `json:"availability"`
}

// Alarm is an open alarm with its history.
type Alarm struct {
	ID          string    `json:"id"`
	Transmitter string    `json:"transmitter"`
	Room        string    `json:"room,omitempty"`
	Kind        string    `json:"kind"`
	Priority    int       `json:"priority"`
	State       string    `json:"state"`
	RaisedAt    time.Time `json:"raised_at"`
	Count       int       `json:"count"`
	Tier        int       `json:"tier"`
	Assignee    string    `json:"assignee,omitempty"`
	Offers      []Offer   `json:"offers,omitempty"`
	Events      []Event   `json:"events,omitempty"`
}

// Offer is one offer of an alarm.
type Offer struct {
	Staff     string    `json:"staff"`
	Tier      int       `json:"tier"`
	Status    string    `json:"status"`
	OfferedAt time.Time `json:"offered_at"`
}

// Event is one event of an alarm's history.
type Event struct {
	At     time.Time `json:"at"`
	Kind   string    `json:"kind"`
	Source string    `json:"source"`
}

// Plan is the plan view: points in a viewBox Width × Height, metres to scale.
type Plan struct {
	Width  float64 `json:"width"`
	Height float64 `json:"height"`
	Points []Point `json:"points"`
}

// Point is a transmitter or an on-duty staff member on the plan.
type Point struct {
	X     float64 `json:"x"`
	Y     float64 `json:"y"`
	Floor int     `json:"floor"`
	Type  string  `json:"type"` // "transmitter" | "staff"
	ID    string  `json:"id"`
	Label string  `json:"label"`
	Alert bool    `json:"alert"` // an open alarm on the transmitter
}

// maxHistory bounds how many open alarms get their event history per load.
const maxHistory = 50

func (s *Server) build(ctx context.Context, v *engine.View, names bool) Data {
	d := Data{Site: s.opt.Site, Version: s.opt.Version, At: v.At, WalkTest: v.WalkTest, Degraded: v.Degraded,
		Transmitters: []Transmitter{}, Staff: []Staff{}, Alarms: []Alarm{}}
	rooms := map[vakt.TransmitterID]string{}
	alert := map[vakt.TransmitterID]bool{}
	for _, t := range v.Transmitters {
		rooms[t.ID] = t.Location.Room
	}
	for i, a := range v.Alarms {
		al := alarmOf(a, rooms[a.Transmitter])
		if s.opt.History != nil && i < maxHistory {
			if evs, err := s.opt.History(ctx, a.ID); err == nil {
				for _, e := range evs {
					al.Events = append(al.Events, Event{At: e.Event.ReceivedAt, Kind: string(e.Event.Kind), Source: e.Event.Source})
				}
			}
		}
		d.Alarms = append(d.Alarms, al)
		alert[a.Transmitter] = true
	}
	for _, t := range v.Transmitters {
		row := Transmitter{ID: string(t.ID), Kind: string(t.Kind), Room: t.Location.Room, Zone: t.Location.Zone,
			Floor: t.Location.Floor, Driver: t.Driver, Configured: t.Configured,
			Battery: t.Health.Battery, Link: t.Health.LinkQuality, Supervision: "off", Technical: []Alarm{}}
		if !t.Health.LastSeen.IsZero() {
			ls := t.Health.LastSeen
			row.LastSeen = &ls
		}
		if t.Supervision > 0 {
			row.Supervision = "ok"
			if t.SilentFor > t.Supervision/2 {
				row.Supervision = "late"
			}
		}
		for _, a := range t.Technical {
			row.Technical = append(row.Technical, alarmOf(a, t.Location.Room))
			if a.Kind == vakt.EventOffline {
				row.Supervision = "missed"
			}
		}
		d.Transmitters = append(d.Transmitters, row)
	}
	for _, st := range v.Staff {
		row := Staff{ID: string(st.ID), Roles: st.Roles,
			OnDuty: st.State.OnDuty, Availability: string(cmp.Or(st.State.Availability, vakt.Available))}
		if names {
			row.Name = st.Name
		}
		d.Staff = append(d.Staff, row)
	}
	if s.opt.Drivers != nil {
		dr := s.opt.Drivers()
		d.Drivers = &dr
	}
	d.Plan = plan(v, alert)
	return d
}

func alarmOf(a vakt.Alarm, room string) Alarm {
	al := Alarm{ID: string(a.ID), Transmitter: string(a.Transmitter), Room: room, Kind: string(a.Kind),
		Priority: int(a.Priority), State: string(a.State), RaisedAt: a.RaisedAt, Count: a.Count, Tier: a.Tier,
		Assignee: string(a.Assignee)}
	for _, o := range a.Offers {
		al.Offers = append(al.Offers, Offer{Staff: string(o.Staff), Tier: o.Tier, Status: string(o.Status), OfferedAt: o.OfferedAt})
	}
	return al
}

// plan projects the configured coordinates (and the positions of staff on duty) onto
// a flat plan in metres: equirectangular around the site, fine for a building.
func plan(v *engine.View, alert map[vakt.TransmitterID]bool) Plan {
	type geo struct {
		lat, lon float64
		p        Point
	}
	var pts []geo
	for _, t := range v.Transmitters {
		if t.Location.Lat == 0 && t.Location.Lon == 0 {
			continue
		}
		pts = append(pts, geo{t.Location.Lat, t.Location.Lon, Point{Type: "transmitter", ID: string(t.ID),
			Label: cmp.Or(t.Location.Room, string(t.ID)), Floor: t.Location.Floor, Alert: alert[t.ID]}})
	}
	for _, st := range v.Staff {
		if p := st.State.Position; st.State.OnDuty && p != nil {
			pts = append(pts, geo{p.Lat, p.Lon, Point{Type: "staff", ID: string(st.ID), Label: string(st.ID), Floor: p.Floor}})
		}
	}
	pl := Plan{Width: 100, Height: 100, Points: []Point{}}
	if len(pts) == 0 {
		return pl
	}
	minLat, maxLat, minLon, maxLon := pts[0].lat, pts[0].lat, pts[0].lon, pts[0].lon
	for _, g := range pts {
		minLat, maxLat = min(minLat, g.lat), max(maxLat, g.lat)
		minLon, maxLon = min(minLon, g.lon), max(maxLon, g.lon)
	}
	const mPerDegLat = 111_320.0
	mPerDegLon := mPerDegLat * math.Cos((minLat+maxLat)/2*math.Pi/180)
	const pad = 5.0 // metres around the outermost points
	pl.Width = max((maxLon-minLon)*mPerDegLon, 10) + 2*pad
	pl.Height = max((maxLat-minLat)*mPerDegLat, 10) + 2*pad
	for _, g := range pts {
		p := g.p
		p.X = math.Round(((g.lon-minLon)*mPerDegLon+pad)*10) / 10
		p.Y = math.Round(((maxLat-g.lat)*mPerDegLat+pad)*10) / 10 // north up
		pl.Points = append(pl.Points, p)
	}
	pl.Width, pl.Height = math.Round(pl.Width*10)/10, math.Round(pl.Height*10)/10
	return pl
}

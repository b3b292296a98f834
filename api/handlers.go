package api

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
	"time"

	vakt "github.com/vakt/vakt"
)

type stateView struct {
	ID           string   `json:"id"`
	Name         string   `json:"name"`
	Roles        []string `json:"roles"`
	OnDuty       bool     `json:"on_duty"`
	Availability string   `json:"availability"`
	// HasPosition says whether a position is held, never the position itself.
	HasPosition bool `json:"has_position"`
	// NearestRouting says whether the site routes to the nearest staff, i.e.
	// whether a phone should share positions at all (G1: none is kept otherwise).
	NearestRouting bool `json:"nearest_routing"`
	// VisitNotes are the notes a visit record may carry (privacy.visit_notes): the
	// phone offers them as choices; any other text is refused.
	VisitNotes []string `json:"visit_notes,omitempty"`
}

func viewState(m vakt.Member) stateView {
	return stateView{
		ID: string(m.ID), Name: m.Name, Roles: nonNil(m.Roles), OnDuty: m.State.OnDuty,
		Availability: string(m.State.Availability), HasPosition: m.State.Position != nil,
	}
}

func (s *Server) me(w http.ResponseWriter, r *http.Request) {
	m, err := s.opt.Service.Staff(r.Context(), who(r).staff)
	if err != nil {
		s.serviceError(w, r, err)
		return
	}
	v := viewState(m)
	v.NearestRouting = s.opt.NearestRouting
	v.VisitNotes = s.opt.VisitNotes
	writeJSON(w, http.StatusOK, v)
}

// colleague is what a phone shows to reach a colleague on duty: the privacy
// policy's purpose "convey the phone's phone number to get in touch with
// colleagues". Never a position or e-mail address.
type colleague struct {
	ID           string   `json:"id"`
	Name         string   `json:"name"`
	Phone        string   `json:"phone,omitempty"`
	Roles        []string `json:"roles"`
	Availability string   `json:"availability"`
}

// colleagues lists the staff on duty other than the caller, by id. Off-duty staff
// are left out: nobody needs their number to answer an alarm.
func (s *Server) colleagues(w http.ResponseWriter, r *http.Request) {
	members, err := s.opt.Service.Members(r.Context())
	if err != nil {
		s.serviceError(w, r, err)
		return
	}
	me := who(r).staff
	out := []colleague{}
	for _, m := range members {
		if m.ID == me || !m.State.OnDuty {
			continue
		}
		out = append(out, colleague{ID: string(m.ID), Name: m.Name, Phone: m.Phone,
			Roles: nonNil(m.Roles), Availability: string(m.State.Availability)})
	}
	writeJSON(w, http.StatusOK, map[string]any{"colleagues": out})
}

func (s *Server) meAfter(w http.ResponseWriter, r *http.Request, err error) {
	if err != nil {
		s.serviceError(w, r, err)
		return
	}
	s.me(w, r)
}

func (s *Server) duty(w http.ResponseWriter, r *http.Request) {
	var req struct {
		OnDuty *bool `json:"on_duty"`
	}
	if !s.decode(w, r, &req) {
		return
	}
	if req.OnDuty == nil {
		writeError(w, http.StatusBadRequest, "bad_request", "on_duty is required")
		return
	}
	_, err := s.opt.Service.SetDuty(r.Context(), who(r).staff, *req.OnDuty)
	s.meAfter(w, r, err)
}

func (s *Server) availability(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Availability vakt.Availability `json:"availability"`
	}
	if !s.decode(w, r, &req) {
		return
	}
	if !req.Availability.Valid() {
		writeError(w, http.StatusBadRequest, "bad_request", `availability must be "available", "busy" or "away"`)
		return
	}
	_, err := s.opt.Service.SetAvailability(r.Context(), who(r).staff, req.Availability)
	s.meAfter(w, r, err)
}

func (s *Server) position(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Lat       *float64 `json:"lat"`
		Lon       *float64 `json:"lon"`
		Floor     int      `json:"floor"`
		AccuracyM float64  `json:"accuracy_m"`
	}
	if !s.decode(w, r, &req) {
		return
	}
	if msg := positionProblem(req.Lat, req.Lon, req.Floor, req.AccuracyM); msg != "" {
		writeError(w, http.StatusBadRequest, "bad_request", msg)
		return
	}
	err := s.opt.Service.SetPosition(r.Context(), who(r).staff, vakt.Position{Lat: *req.Lat, Lon: *req.Lon, Floor: req.Floor, AccuracyM: req.AccuracyM})
	if err != nil {
		s.serviceError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// Bounds of a position report; anything outside is a broken or hostile phone.
const (
	minFloor, maxFloor = -20, 300
	maxAccuracyM       = 100_000
)

// positionProblem names the first field of a position report that is missing or out
// of range, or returns "".
func positionProblem(lat, lon *float64, floor int, acc float64) string {
	switch {
	case lat == nil || math.IsNaN(*lat) || *lat < -90 || *lat > 90:
		return "lat is required and must be within -90..90"
	case lon == nil || math.IsNaN(*lon) || *lon < -180 || *lon > 180:
		return "lon is required and must be within -180..180"
	case floor < minFloor || floor > maxFloor:
		return fmt.Sprintf("floor must be within %d..%d", minFloor, maxFloor)
	case math.IsNaN(acc) || acc < 0 || acc > maxAccuracyM:
		return fmt.Sprintf("accuracy_m must be within 0..%d", maxAccuracyM)
	}
	return ""
}

// alarmView is the alarm object of docs/api.md.
type alarmView struct {
	ID          string          `json:"id"`
	Kind        string          `json:"kind"`
	Priority    int             `json:"priority"`
	State       string          `json:"state"`
	Transmitter transmitterView `json:"transmitter"`
	RaisedAt    time.Time       `json:"raised_at"`
	Count       int             `json:"count"`
	Tier        int             `json:"tier"`
	Assignee    *string         `json:"assignee"`
	DistanceM   *float64        `json:"distance_m,omitempty"`
	// Text is the display text of the call that raised it (where to go when no
	// mapping rule knew the call), omitted when empty.
	Text string `json:"text,omitempty"`
}

type transmitterView struct {
	ID    string `json:"id"`
	Room  string `json:"room"`
	Zone  string `json:"zone"`
	Floor int    `json:"floor"`
}

// view renders an alarm for one staff member: the distance is theirs, from the
// position they had when it was offered to them.
func (s *Server) view(a vakt.Alarm, viewer vakt.StaffID) alarmView {
	return viewOf(s.hub.transmitters(), a, viewer)
}

func viewOf(tx map[vakt.TransmitterID]vakt.Transmitter, a vakt.Alarm, viewer vakt.StaffID) alarmView {
	t := tx[a.Transmitter]
	v := alarmView{
		ID: string(a.ID), Kind: string(a.Kind), Priority: int(a.Priority), State: string(a.State),
		Transmitter: transmitterView{ID: string(a.Transmitter), Room: t.Location.Room, Zone: t.Location.Zone, Floor: t.Location.Floor},
		RaisedAt:    a.RaisedAt.UTC(), Count: a.Count, Tier: a.Tier, Text: a.Text,
	}
	if a.Assignee != "" {
		id := string(a.Assignee)
		v.Assignee = &id
	}
	for _, o := range a.Offers {
		if o.Staff == viewer && o.DistanceM >= 0 {
			// Rounded: a phone needs decimetres at most, and less precision leaks less.
			d := math.Round(o.DistanceM*10) / 10
			v.DistanceM = &d
		}
	}
	return v
}

func (s *Server) alarms(w http.ResponseWriter, r *http.Request) {
	c := who(r)
	list, err := s.opt.Service.Alarms(r.Context(), c.staff, s.opt.SeeAllRoles...)
	if err != nil {
		s.serviceError(w, r, err)
		return
	}
	out := make([]alarmView, 0, len(list))
	for _, a := range list {
		out = append(out, s.view(a, c.staff))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) alarm(w http.ResponseWriter, r *http.Request) {
	c := who(r)
	list, err := s.opt.Service.Alarms(r.Context(), c.staff, s.opt.SeeAllRoles...)
	if err != nil {
		s.serviceError(w, r, err)
		return
	}
	for _, a := range list {
		if string(a.ID) == r.PathValue("id") {
			writeJSON(w, http.StatusOK, s.view(a, c.staff))
			return
		}
	}
	writeError(w, http.StatusNotFound, "not_found", "no such open alarm for this staff member")
}

type verb int

const (
	verbAccept verb = iota
	verbReject
	verbPresence
	verbComplete
)

func (s *Server) alarmVerb(v verb) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c := who(r)
		id := vakt.AlarmID(r.PathValue("id"))
		var req struct {
			// Visit is the short visit record a completion may carry
			// ("assisted", "false alarm"): a kind of outcome, never health data.
			Visit *struct {
				Note string `json:"note"`
			} `json:"visit"`
		}
		if v == verbComplete && r.ContentLength != 0 {
			if !s.decode(w, r, &req) {
				return
			}
		}
		var a vakt.Alarm
		var err error
		switch v {
		case verbAccept:
			a, err = s.opt.Service.Accept(r.Context(), c.staff, id)
		case verbReject:
			a, err = s.opt.Service.Reject(r.Context(), c.staff, id)
		case verbPresence:
			a, err = s.opt.Service.Presence(r.Context(), c.staff, id)
		case verbComplete:
			note := ""
			if req.Visit != nil {
				note = req.Visit.Note
			}
			if !s.noteAllowed(w, "visit.note", note) {
				return
			}
			a, err = s.opt.Service.Complete(r.Context(), c.staff, id, note)
		}
		if err != nil {
			if ce := (*vakt.AlarmClosedError)(nil); errors.As(err, &ce) {
				writeError(w, http.StatusConflict, "conflict", "this alarm is already "+string(ce.State))
				return
			}
			if errors.Is(err, vakt.ErrConflict) {
				writeError(w, http.StatusConflict, "conflict", conflictText[v])
				return
			}
			s.serviceError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, s.view(a, c.staff))
	}
}

// noteAllowed answers 400 unless note is empty or one of the site's visit notes
// (privacy.visit_notes). Free text is refused on purpose: a note typed at the bedside
// could carry a resident's health data, which the privacy policy never stores.
func (s *Server) noteAllowed(w http.ResponseWriter, field, note string) bool {
	if note == "" || slices.Contains(s.opt.VisitNotes, note) {
		return true
	}
	if len(s.opt.VisitNotes) == 0 {
		writeError(w, http.StatusBadRequest, "bad_request", field+": this site keeps no visit notes (privacy.visit_notes is empty); send none")
		return false
	}
	writeError(w, http.StatusBadRequest, "bad_request", field+" must be one of: "+strings.Join(s.opt.VisitNotes, ", ")+" (free text is not kept: privacy.visit_notes)")
	return false
}

// conflictText says, per verb, what state conflict a phone ran into.
var conflictText = map[verb]string{
	verbAccept:   "someone else has accepted this alarm",
	verbReject:   "you have accepted this alarm; complete it instead",
	verbPresence: "the alarm has not been accepted yet",
	verbComplete: "the alarm has not been accepted yet",
}

type visitView struct {
	ID       string     `json:"id"`
	Staff    string     `json:"staff"`
	Room     string     `json:"room,omitempty"`
	Resident string     `json:"resident,omitempty"`
	Start    time.Time  `json:"start"`
	End      *time.Time `json:"end"`
	Alarm    string     `json:"alarm,omitempty"`
	Note     string     `json:"note,omitempty"`
}

func viewVisit(v vakt.Visit) visitView {
	out := visitView{ID: string(v.ID), Staff: string(v.Staff), Room: v.Room, Resident: v.Resident,
		Start: v.Start.UTC(), Alarm: string(v.Alarm), Note: v.Note}
	if !v.End.IsZero() {
		e := v.End.UTC()
		out.End = &e
	}
	return out
}

func (s *Server) openVisits(w http.ResponseWriter, r *http.Request) {
	list, err := s.opt.Service.OpenVisits(r.Context(), who(r).staff)
	if err != nil {
		s.serviceError(w, r, err)
		return
	}
	out := make([]visitView, 0, len(list))
	for _, v := range list {
		out = append(out, viewVisit(v))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) startVisit(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Room     string `json:"room"`
		Resident string `json:"resident"`
	}
	if !s.decode(w, r, &req) {
		return
	}
	if (req.Room == "" && req.Resident == "") || len(req.Room) > 64 || len(req.Resident) > 64 {
		writeError(w, http.StatusBadRequest, "bad_request", "room or resident (at most 64 characters) is required")
		return
	}
	v, err := s.opt.Service.StartVisit(r.Context(), who(r).staff, req.Room, req.Resident)
	if err != nil {
		s.serviceError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, viewVisit(v))
}

func (s *Server) endVisit(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Note string `json:"note"`
	}
	if r.ContentLength != 0 && !s.decode(w, r, &req) {
		return
	}
	if !s.noteAllowed(w, "note", req.Note) {
		return
	}
	v, err := s.opt.Service.EndVisit(r.Context(), who(r).staff, vakt.VisitID(r.PathValue("id")), req.Note)
	if err != nil {
		s.serviceError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, viewVisit(v))
}

// eprSent records that an EPR note was sent: the body names the EPR system only.
// There is no field for the note itself, and unknown fields are refused.
func (s *Server) eprSent(w http.ResponseWriter, r *http.Request) {
	var req struct {
		System string `json:"system"`
	}
	if !s.decode(w, r, &req) {
		return
	}
	if req.System == "" || len(req.System) > 64 {
		writeError(w, http.StatusBadRequest, "bad_request", "system (at most 64 characters) is required")
		return
	}
	rec, err := s.opt.Service.EPRSent(r.Context(), who(r).staff, vakt.VisitID(r.PathValue("id")), req.System)
	if err != nil {
		s.serviceError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"visit": rec.Visit, "system": rec.System, "sent_at": rec.SentAt.UTC()})
}

package api

import (
	"net/http"
	"strings"
)

// Owner says whose resource a route's {id} names, for the authorization table.
type Owner int

const (
	// OwnerNone: the route acts on the caller only (or on nothing).
	OwnerNone Owner = iota
	// OwnerAlarm: {id} is an alarm; staff it was not offered to get Route.Other.
	OwnerAlarm
	// OwnerVisit: {id} is a visit; another staff member's gets Route.Other.
	OwnerVisit
)

// Route is one endpoint of the phone API. The router is built from Routes, and the
// authorization test walks the same table, so a new route cannot miss its rows:
// no token → 401, a role it lacks → 403, another staff member's resource → Other.
type Route struct {
	Method, Pattern string
	// Public routes need no token (login only).
	Public bool
	// Roles, when set, are the roles of which the caller needs one (else 403).
	Roles []string
	// Owner and Other: whose resource {id} is, and the status another staff
	// member gets for it (403, or 404 where docs/api.md hides that it exists).
	Owner Owner
	Other int
	// Body is a valid example body when the route decodes one ("" when it takes
	// none): the tests and the fuzz target of request bodies start from it.
	Body string

	handler func(*Server) http.HandlerFunc
}

// Routes is the phone API's route table (docs/api.md).
var Routes = []Route{
	{Method: "POST", Pattern: "/api/v1/sessions", Public: true, Body: `{"staff_id":"nurse-1","secret":"demo"}`,
		handler: func(s *Server) http.HandlerFunc { return s.login }},
	{Method: "DELETE", Pattern: "/api/v1/sessions/current",
		handler: func(s *Server) http.HandlerFunc { return s.logout }},
	{Method: "GET", Pattern: "/api/v1/me",
		handler: func(s *Server) http.HandlerFunc { return s.me }},
	{Method: "GET", Pattern: "/api/v1/colleagues",
		handler: func(s *Server) http.HandlerFunc { return s.colleagues }},
	{Method: "PUT", Pattern: "/api/v1/me/duty", Body: `{"on_duty":true}`,
		handler: func(s *Server) http.HandlerFunc { return s.duty }},
	{Method: "PUT", Pattern: "/api/v1/me/availability", Body: `{"availability":"busy"}`,
		handler: func(s *Server) http.HandlerFunc { return s.availability }},
	{Method: "PUT", Pattern: "/api/v1/me/position", Body: `{"lat":59.9139,"lon":10.7522,"floor":1}`,
		handler: func(s *Server) http.HandlerFunc { return s.position }},
	{Method: "GET", Pattern: "/api/v1/alarms",
		handler: func(s *Server) http.HandlerFunc { return s.alarms }},
	{Method: "GET", Pattern: "/api/v1/alarms/{id}", Owner: OwnerAlarm, Other: http.StatusNotFound,
		handler: func(s *Server) http.HandlerFunc { return s.alarm }},
	{Method: "POST", Pattern: "/api/v1/alarms/{id}/accept", Owner: OwnerAlarm, Other: http.StatusForbidden,
		handler: func(s *Server) http.HandlerFunc { return s.alarmVerb(verbAccept) }},
	{Method: "POST", Pattern: "/api/v1/alarms/{id}/reject", Owner: OwnerAlarm, Other: http.StatusForbidden,
		handler: func(s *Server) http.HandlerFunc { return s.alarmVerb(verbReject) }},
	{Method: "POST", Pattern: "/api/v1/alarms/{id}/presence", Owner: OwnerAlarm, Other: http.StatusForbidden,
		handler: func(s *Server) http.HandlerFunc { return s.alarmVerb(verbPresence) }},
	{Method: "POST", Pattern: "/api/v1/alarms/{id}/complete", Owner: OwnerAlarm, Other: http.StatusForbidden,
		Body:    `{"visit":{"note":"assisted"}}`,
		handler: func(s *Server) http.HandlerFunc { return s.alarmVerb(verbComplete) }},
	{Method: "GET", Pattern: "/api/v1/visits",
		handler: func(s *Server) http.HandlerFunc { return s.openVisits }},
	{Method: "POST", Pattern: "/api/v1/visits", Body: `{"room":"1"}`,
		handler: func(s *Server) http.HandlerFunc { return s.startVisit }},
	{Method: "POST", Pattern: "/api/v1/visits/{id}/end", Owner: OwnerVisit, Other: http.StatusForbidden,
		Body:    `{"note":"done"}`,
		handler: func(s *Server) http.HandlerFunc { return s.endVisit }},
	{Method: "POST", Pattern: "/api/v1/visits/{id}/epr", Owner: OwnerVisit, Other: http.StatusForbidden,
		Body:    `{"system":"CosDoc"}`,
		handler: func(s *Server) http.HandlerFunc { return s.eprSent }},
	{Method: "GET", Pattern: "/api/v1/stream",
		handler: func(s *Server) http.HandlerFunc { return s.stream }},
	{Method: "GET", Pattern: "/api/v1/admin/staff/{id}/export", Roles: []string{AdminRole},
		handler: func(s *Server) http.HandlerFunc { return s.admin(s.exportStaff) }},
	{Method: "DELETE", Pattern: "/api/v1/admin/staff/{id}", Roles: []string{AdminRole},
		handler: func(s *Server) http.HandlerFunc { return s.admin(s.eraseStaff) }},
}

func (s *Server) routes() {
	m := http.NewServeMux()
	for _, rt := range Routes {
		h := rt.handler(s)
		if len(rt.Roles) > 0 {
			h = s.requireRole(rt.Roles, h)
		}
		if !rt.Public {
			h = s.auth(h)
		}
		m.HandleFunc(rt.Method+" "+rt.Pattern, h)
	}
	m.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "no such endpoint")
	})
	s.mux = m
}

// requireRole lets h run only for a caller holding one of roles (403 otherwise).
// Roles are read from the directory on every request, so a role removed by a
// configuration reload takes effect at once.
func (s *Server) requireRole(roles []string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		m, err := s.opt.Service.Staff(r.Context(), who(r).staff)
		if err != nil {
			s.serviceError(w, r, err)
			return
		}
		for _, have := range m.Roles {
			for _, want := range roles {
				if have == want {
					h(w, r)
					return
				}
			}
		}
		writeError(w, http.StatusForbidden, "forbidden", "this endpoint needs one of the roles "+strings.Join(roles, ", "))
	}
}

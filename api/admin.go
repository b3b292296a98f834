package api

import (
	"context"
	"net/http"

	vakt "github.com/vakt/vakt"
)

// AdminRole is the role the /api/v1/admin endpoints require.
const AdminRole = "admin"

// Admin is what the admin endpoints need: the person commands of the privacy
// policy (G3, G4). Each returns a JSON document the handler writes as it is, and
// audits with actor actor ("staff:<admin id>").
type Admin interface {
	// ExportStaff returns everything held about the person (docs/privacy.md).
	ExportStaff(ctx context.Context, actor string, id vakt.StaffID) (any, error)
	// EraseStaff erases the person's personal data and returns the confirmation.
	EraseStaff(ctx context.Context, actor string, id vakt.StaffID) (any, error)
}

// admin wraps h: only a caller holding AdminRole may pass (403 otherwise), and
// only when the server has an Admin (404 otherwise).
func (s *Server) admin(h func(w http.ResponseWriter, r *http.Request, actor string)) http.HandlerFunc {
	return s.auth(func(w http.ResponseWriter, r *http.Request) {
		if s.opt.Admin == nil {
			writeError(w, http.StatusNotFound, "not_found", "no such endpoint")
			return
		}
		c := who(r)
		m, err := s.opt.Service.Staff(r.Context(), c.staff)
		if err != nil {
			s.serviceError(w, r, err)
			return
		}
		if !m.HasRole(AdminRole) {
			writeError(w, http.StatusForbidden, "forbidden", "this needs the admin role")
			return
		}
		h(w, r, "staff:"+string(c.staff))
	})
}

func (s *Server) exportStaff(w http.ResponseWriter, r *http.Request, actor string) {
	doc, err := s.opt.Admin.ExportStaff(r.Context(), actor, vakt.StaffID(r.PathValue("id")))
	if err != nil {
		s.serviceError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, doc)
}

func (s *Server) eraseStaff(w http.ResponseWriter, r *http.Request, actor string) {
	conf, err := s.opt.Admin.EraseStaff(r.Context(), actor, vakt.StaffID(r.PathValue("id")))
	if err != nil {
		s.serviceError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, conf)
}

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

// admin adapts an admin handler to the route table (which checks the token and
// AdminRole first): it runs only when the server has an Admin (404 otherwise).
func (s *Server) admin(h func(w http.ResponseWriter, r *http.Request, actor string)) http.HandlerFunc {
	// The route table has already checked the token and the admin role.
	return func(w http.ResponseWriter, r *http.Request) {
		if s.opt.Admin == nil {
			writeError(w, http.StatusNotFound, "not_found", "no such endpoint")
			return
		}
		h(w, r, "staff:"+string(who(r).staff))
	}
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

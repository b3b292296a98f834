package cloudsim

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/vakt/vakt/sync/wire"
)

// AdminHandler serves the operator's side: edit the directory, request an erasure,
// inject faults, count entries. It has no authentication: serve it on loopback only.
//
//	PUT    /admin/gateways/{gateway}/staff/{id}   body: wire.Staff  → 204
//	DELETE /admin/gateways/{gateway}/staff/{id}                     → 204, 404
//	POST   /admin/gateways/{gateway}/erasures     body: {"staff_id"} → {"request_id"}
//	GET    /admin/gateways/{gateway}/count                          → {"entries": n}
//	PUT    /admin/fault                           body: Fault       → 204
//	DELETE /admin/fault                                             → 204
func (s *Sim) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /admin/gateways/{gateway}/staff/{id}", func(w http.ResponseWriter, r *http.Request) {
		var st wire.Staff
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&st); err != nil {
			writeErr(w, http.StatusBadRequest, wire.CodeMalformed, "staff: "+err.Error(), nil)
			return
		}
		st.ID = r.PathValue("id")
		s.adminResult(w, s.st.PutStaff(r.Context(), r.PathValue("gateway"), st))
	})
	mux.HandleFunc("DELETE /admin/gateways/{gateway}/staff/{id}", func(w http.ResponseWriter, r *http.Request) {
		s.adminResult(w, s.st.RemoveStaff(r.Context(), r.PathValue("gateway"), r.PathValue("id")))
	})
	mux.HandleFunc("POST /admin/gateways/{gateway}/erasures", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			StaffID string `json:"staff_id"`
		}
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&req); err != nil {
			writeErr(w, http.StatusBadRequest, wire.CodeMalformed, "erasure: "+err.Error(), nil)
			return
		}
		id, err := s.st.RequestErasure(r.Context(), r.PathValue("gateway"), req.StaffID)
		if err != nil {
			s.adminResult(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"request_id": id})
	})
	mux.HandleFunc("GET /admin/gateways/{gateway}/count", func(w http.ResponseWriter, r *http.Request) {
		n, err := s.st.Count(r.Context(), r.PathValue("gateway"))
		if err != nil {
			s.adminResult(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]int64{"entries": n})
	})
	mux.HandleFunc("PUT /admin/fault", func(w http.ResponseWriter, r *http.Request) {
		var f Fault
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&f); err != nil {
			writeErr(w, http.StatusBadRequest, wire.CodeMalformed, "fault: "+err.Error(), nil)
			return
		}
		switch f.Mode {
		case FaultNone, FaultRefuse, FaultStall, FaultDropMidBody, FaultDropAfterCommit, FaultSlow, FaultPartial:
		case FaultStatus:
			if f.Status < 400 || f.Status > 599 {
				writeErr(w, http.StatusBadRequest, wire.CodeMalformed, "fault status must be 400–599", nil)
				return
			}
		default:
			writeErr(w, http.StatusBadRequest, wire.CodeMalformed, "unknown fault mode "+f.Mode, nil)
			return
		}
		s.SetFault(f)
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("DELETE /admin/fault", func(w http.ResponseWriter, r *http.Request) {
		s.SetFault(Fault{})
		w.WriteHeader(http.StatusNoContent)
	})
	return mux
}

func (s *Sim) adminResult(w http.ResponseWriter, err error) {
	var re *RefusedError
	switch {
	case err == nil:
		w.WriteHeader(http.StatusNoContent)
	case errors.Is(err, ErrNotFound):
		writeErr(w, http.StatusNotFound, "not_found", err.Error(), nil)
	case errors.As(err, &re):
		writeErr(w, http.StatusBadRequest, re.Code, re.Message, nil)
	default:
		s.log.Error("admin", "err", err)
		writeErr(w, http.StatusInternalServerError, wire.CodeInternal, err.Error(), nil)
	}
}

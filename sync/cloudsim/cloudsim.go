// Package cloudsim is the reference cloud of docs/sync-protocol.md: the HTTP side of
// the contract over a Storage, plus faults it can be told to inject (refuse
// connections, answer 500/503/429, stall, drop the connection, acknowledge slowly or
// only in part) so the gateway's uploader can be tested against every one of them.
// cmd/cloudsim runs it; tests run it in-process.
package cloudsim

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vakt/vakt/sync/wire"
)

// Fault modes.
const (
	FaultNone            = ""
	FaultRefuse          = "refuse"            // close the API listener: connections are refused
	FaultStatus          = "status"            // answer Status (500, 503, 429, ...) with Retry-After
	FaultStall           = "stall"             // never answer (until the client gives up or the fault is cleared)
	FaultDropMidBody     = "drop-mid-body"     // read part of the body, then close the connection
	FaultDropAfterCommit = "drop-after-commit" // commit, then close the connection: the ack is lost
	FaultSlow            = "slow"              // commit, then wait Delay before acknowledging
	FaultPartial         = "partial"           // commit and acknowledge only the first Take entries
)

// Fault is what the cloud is told to do wrong with uploads (POST entries).
type Fault struct {
	Mode   string `json:"mode"`
	Status int    `json:"status,omitempty"`
	// RetryAfter is sent as Retry-After (whole seconds) with FaultStatus.
	RetryAfter Duration `json:"retry_after,omitempty"`
	Delay      Duration `json:"delay,omitempty"`
	Take       int      `json:"take,omitempty"`
	// Count is how many uploads the fault applies to; 0 means until cleared.
	Count int `json:"count,omitempty"`
}

// Duration is a time.Duration written as "2s" in JSON.
type Duration time.Duration

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	*d = Duration(v)
	return err
}

// Options configure a Sim.
type Options struct {
	// Tokens maps each bearer token to the gateway id it belongs to.
	Tokens map[string]string
	// MaxBody is the largest upload body accepted, compressed (default 8 MiB).
	MaxBody int64
	Log     *slog.Logger
}

// Sim is the reference cloud.
type Sim struct {
	st     Storage
	opt    Options
	tokens map[[32]byte]string
	log    *slog.Logger

	mu      sync.Mutex
	fault   Fault
	cleared chan struct{} // closed when the current fault is cleared (releases stalls)
	refuse  chan bool     // tells Serve to close or reopen the listener
	// applied: Serve has closed or reopened the listener as told; SetFault waits for
	// it while Serve runs, so a refused connection follows the call at once (a
	// request right after it was reset, or refused after the clear, under load).
	applied  chan struct{}
	serving  atomic.Bool
	setMu    sync.Mutex   // one SetFault at a time
	uploads  atomic.Int64 // POST entries requests that reached the handler
	requests atomic.Int64
}

// New returns a Sim over st.
func New(st Storage, opt Options) *Sim {
	if opt.MaxBody <= 0 {
		opt.MaxBody = 8 << 20
	}
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	s := &Sim{st: st, opt: opt, log: opt.Log, tokens: map[[32]byte]string{}, cleared: make(chan struct{}), refuse: make(chan bool, 1), applied: make(chan struct{}, 1)}
	for tok, gw := range opt.Tokens {
		s.tokens[sha256.Sum256([]byte(tok))] = gw
	}
	return s
}

// Storage returns the sim's storage (tests count entries with it).
func (s *Sim) Storage() Storage { return s.st }

// Uploads reports how many upload requests reached the handler.
func (s *Sim) Uploads() int64 { return s.uploads.Load() }

// SetFault replaces the current fault; Fault{} clears it.
func (s *Sim) SetFault(f Fault) {
	s.setMu.Lock()
	defer s.setMu.Unlock()
	s.mu.Lock()
	was := s.fault.Mode
	s.fault = f
	close(s.cleared)
	s.cleared = make(chan struct{})
	s.mu.Unlock()
	if (was == FaultRefuse) != (f.Mode == FaultRefuse) {
		select {
		case <-s.refuse:
		default:
		}
		s.refuse <- f.Mode == FaultRefuse
		if s.serving.Load() {
			select {
			case <-s.applied:
			case <-time.After(10 * time.Second):
				s.log.Warn("fault: the listener change was not applied within 10 s")
			}
		}
	}
	s.log.Info("fault", "mode", f.Mode, "status", f.Status, "count", f.Count)
}

// take returns the fault to apply to one upload and counts it down.
func (s *Sim) take() (Fault, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.fault
	if f.Mode != FaultNone && f.Count > 0 {
		s.fault.Count--
		if s.fault.Count == 0 {
			s.fault = Fault{}
		}
	}
	return f, s.cleared
}

// Handler serves the contract's API (the /v1/ paths).
func (s *Sim) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+wire.PathEntries, s.auth(s.postEntries))
	mux.HandleFunc("GET "+wire.PathState, s.auth(s.getState))
	mux.HandleFunc("GET "+wire.PathDirectory, s.auth(s.getDirectory))
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, status int, code, msg string, acked *int64) {
	writeJSON(w, status, wire.Error{Code: code, Message: msg, Acked: acked})
}

func (s *Sim) auth(h func(http.ResponseWriter, *http.Request, string)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		gw, known := s.tokens[sha256.Sum256([]byte(tok))]
		if !ok || tok == "" || !known {
			writeErr(w, http.StatusUnauthorized, wire.CodeUnauthorized, "no or unknown bearer token: check the gateway's cloud token file", nil)
			return
		}
		if subtle.ConstantTimeCompare([]byte(gw), []byte(r.PathValue("gateway"))) != 1 {
			writeErr(w, http.StatusForbidden, wire.CodeForbidden, "the token belongs to another gateway id: check site.id and the cloud token", nil)
			return
		}
		if v := r.Header.Get(wire.HeaderProtocol); v != "" && v != strconv.Itoa(wire.Protocol) {
			writeErr(w, http.StatusBadRequest, wire.CodeMalformed, fmt.Sprintf("protocol %q not spoken here (this cloud speaks %d)", v, wire.Protocol), nil)
			return
		}
		h(w, r, gw)
	}
}

func (s *Sim) postEntries(w http.ResponseWriter, r *http.Request, gw string) {
	s.uploads.Add(1)
	f, cleared := s.take()
	switch f.Mode {
	case FaultStatus:
		if f.RetryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int(time.Duration(f.RetryAfter).Round(time.Second)/time.Second)))
		}
		code := wire.CodeInternal
		if f.Status == http.StatusTooManyRequests || f.Status == http.StatusServiceUnavailable {
			code = wire.CodeBusy
		}
		writeErr(w, f.Status, code, "fault injected", nil)
		return
	case FaultStall:
		select {
		case <-r.Context().Done():
		case <-cleared:
		}
		return
	case FaultDropMidBody:
		var buf [16]byte
		r.Body.Read(buf[:])
		hijackClose(w)
		return
	}
	after, err := strconv.ParseInt(r.Header.Get(wire.HeaderAfter), 10, 64)
	if err != nil || after < 0 {
		writeErr(w, http.StatusBadRequest, wire.CodeMalformed, wire.HeaderAfter+" header missing or not a seq", nil)
		return
	}
	body := http.MaxBytesReader(w, r.Body, s.opt.MaxBody)
	var gz bool
	switch enc := r.Header.Get("Content-Encoding"); enc {
	case "gzip":
		gz = true
	case "", "identity":
	default:
		writeErr(w, http.StatusBadRequest, wire.CodeMalformed, "content encoding "+enc+" not supported (use gzip)", nil)
		return
	}
	entries, err := wire.DecodeBatch(body, gz)
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			writeErr(w, http.StatusRequestEntityTooLarge, wire.CodeTooLarge, fmt.Sprintf("body over %d bytes: send smaller batches", s.opt.MaxBody), nil)
			return
		}
		writeErr(w, http.StatusBadRequest, wire.CodeMalformed, err.Error(), nil)
		return
	}
	take := 0
	if f.Mode == FaultPartial {
		take = max(f.Take, 1)
	}
	ack, err := s.st.Append(r.Context(), gw, after, entries, take)
	if err != nil {
		if re, ok := errors.AsType[*RefusedError](err); ok {
			status := http.StatusConflict
			if re.Code == wire.CodeMalformed {
				status = http.StatusBadRequest
			}
			writeErr(w, status, re.Code, re.Message, &re.Acked)
			return
		}
		s.log.Error("append", "gateway", gw, "err", err)
		writeErr(w, http.StatusInternalServerError, wire.CodeInternal, "storage failed", nil)
		return
	}
	switch f.Mode {
	case FaultDropAfterCommit:
		hijackClose(w)
		return
	case FaultSlow:
		t := time.NewTimer(time.Duration(f.Delay))
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	writeJSON(w, http.StatusOK, ack)
}

func hijackClose(w http.ResponseWriter) {
	if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetLinger(0) // a reset, as a dying middlebox would
		}
		c.Close()
	}
}

func (s *Sim) getState(w http.ResponseWriter, r *http.Request, gw string) {
	st, err := s.st.State(r.Context(), gw)
	if err != nil {
		writeErr(w, http.StatusInternalServerError, wire.CodeInternal, "storage failed", nil)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (s *Sim) getDirectory(w http.ResponseWriter, r *http.Request, gw string) {
	limit := 500
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			writeErr(w, http.StatusBadRequest, wire.CodeMalformed, "limit must be a positive number", nil)
			return
		}
		limit = min(n, 5000)
	}
	page, err := s.st.Directory(r.Context(), gw, r.URL.Query().Get("cursor"), limit)
	if err != nil {
		if re, ok := errors.AsType[*RefusedError](err); ok {
			writeErr(w, http.StatusBadRequest, re.Code, re.Message, nil)
			return
		}
		writeErr(w, http.StatusInternalServerError, wire.CodeInternal, "storage failed", nil)
		return
	}
	writeJSON(w, http.StatusOK, page)
}

// Serve serves the API on addr until ctx ends, closing and reopening the listener
// for FaultRefuse. ready, if not nil, receives the bound address once.
func (s *Sim) Serve(ctx context.Context, addr string, ready chan<- string) error {
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	s.serving.Store(true)
	defer s.serving.Store(false)
	reopened := false
	for {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("listen %s: %w", addr, err)
		}
		if reopened {
			s.signalApplied()
		}
		reopened = true
		addr = ln.Addr().String()
		if ready != nil {
			ready <- addr
			ready = nil
		}
		done := make(chan error, 1)
		go func() { done <- srv.Serve(ln) }()
		refusing := false
		for !refusing {
			select {
			case <-ctx.Done():
				srv.Close()
				<-done
				return nil
			case refusing = <-s.refuse:
			}
		}
		srv.Close()
		<-done
		s.signalApplied()
		srv = &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
		for refusing {
			select {
			case <-ctx.Done():
				return nil
			case refusing = <-s.refuse:
			}
		}
	}
}

// signalApplied tells a waiting SetFault that the listener change is done.
func (s *Sim) signalApplied() {
	select {
	case s.applied <- struct{}{}:
	default:
	}
}

// Package api is the phone API: HTTP JSON under /api/v1 and one WebSocket for push
// (docs/api.md). It is the only package importing gorilla/websocket and bcrypt. It
// knows the alarm path only through the Service interface, so it can be tested
// against the real engine or anything else that keeps the same promises.
package api

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"log"
	"log/slog"
	"net/http"
	"strings"
	"time"

	vakt "github.com/vakt/vakt"
)

// Service is what the phone API needs from the alarm path.
type Service interface {
	Staff(ctx context.Context, id vakt.StaffID) (vakt.Member, error)
	// Members lists the directory with live state (GET /colleagues).
	Members(ctx context.Context) ([]vakt.Member, error)
	SaveSession(ctx context.Context, s vakt.Session) error
	EndSession(ctx context.Context, staff vakt.StaffID, tokenHash string) error
	// Audit commits an audit entry (failed logins).
	Audit(ctx context.Context, actor, action, subject string) error
	RestoredSessions() []vakt.Session
	SetDuty(ctx context.Context, id vakt.StaffID, on bool) (vakt.StaffState, error)
	SetAvailability(ctx context.Context, id vakt.StaffID, a vakt.Availability) (vakt.StaffState, error)
	SetPosition(ctx context.Context, id vakt.StaffID, p vakt.Position) error
	Alarms(ctx context.Context, id vakt.StaffID, seeAll ...string) ([]vakt.Alarm, error)
	Offered(ctx context.Context, id vakt.StaffID) ([]vakt.Alarm, error)
	Accept(ctx context.Context, staff vakt.StaffID, id vakt.AlarmID) (vakt.Alarm, error)
	Reject(ctx context.Context, staff vakt.StaffID, id vakt.AlarmID) (vakt.Alarm, error)
	Presence(ctx context.Context, staff vakt.StaffID, id vakt.AlarmID) (vakt.Alarm, error)
	Complete(ctx context.Context, staff vakt.StaffID, id vakt.AlarmID, note string) (vakt.Alarm, error)
	Delivered(ctx context.Context, staff vakt.StaffID, id vakt.AlarmID) error
	OpenVisits(ctx context.Context, staff vakt.StaffID) ([]vakt.Visit, error)
	StartVisit(ctx context.Context, staff vakt.StaffID, room, resident string) (vakt.Visit, error)
	EndVisit(ctx context.Context, staff vakt.StaffID, id vakt.VisitID, note string) (vakt.Visit, error)
	EPRSent(ctx context.Context, staff vakt.StaffID, visit vakt.VisitID, system string) (vakt.EPRRecord, error)
}

// Options configures the API server.
type Options struct {
	// Service is the alarm path (the engine) and Hub the engine's notifier, both
	// required: build the Hub, then the engine with it, then the Server.
	Service Service
	Hub     *Hub
	// Admin serves /api/v1/admin (role AdminRole); nil leaves those endpoints out.
	Admin      Admin
	Logger     *slog.Logger
	Clock      vakt.Clock
	SessionTTL time.Duration
	// SeeAllRoles may list every open alarm (e.g. nurse-lead).
	SeeAllRoles []string
	// NearestRouting is privacy.nearest_routing, shown in GET /me so a phone shares
	// no position where none would be kept.
	NearestRouting bool
	// VisitNotes is privacy.visit_notes: the only notes a visit record may carry
	// (none when empty). Shown in GET /me.
	VisitNotes []string
	// MaxBody bounds request bodies (default 16 KiB).
	MaxBody int64
	// LoginConcurrency bounds how many logins hash at once (default 1: one of the
	// gateway's two cores, the other stays with the alarm path). Logins finding
	// every slot busy get 429 at once.
	LoginConcurrency int
	// BodyTimeout bounds reading one request body (default BodyTimeout).
	BodyTimeout time.Duration
}

// Timeouts of the HTTP server: see NewHTTPServer.
const (
	ReadHeaderTimeout = 5 * time.Second
	ReadTimeout       = 15 * time.Second
	IdleTimeout       = 60 * time.Second
	// BodyTimeout is the default per-body read deadline of the handlers.
	BodyTimeout = 10 * time.Second
	// MaxPhoneConns is the default number of WebSockets one staff member may hold.
	MaxPhoneConns = 3
)

// NewHTTPServer is the http.Server the phone API must be served by: slow headers,
// slow bodies and idle keep-alive connections are cut off, so a few thousand
// half-open connections cannot pile up. There is no WriteTimeout: the WebSocket
// sets its own deadlines per write once upgraded (the upgrade clears the server's).
func NewHTTPServer(h http.Handler, errorLog *log.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		IdleTimeout:       IdleTimeout,
		ErrorLog:          errorLog,
		// Said here, not left to the library's default: TLS 1.2 or later (S5).
		TLSConfig: &tls.Config{MinVersion: tls.VersionTLS12},
	}
}

// Server serves the phone API; its Hub pushes to the phones.
type Server struct {
	opt      Options
	log      *slog.Logger
	sessions *sessions
	limiter  *limiter
	hash     *hasher
	hub      *Hub
	mux      *http.ServeMux
}

// New builds the server on a running alarm path: the sessions stored before a
// restart are taken back at once.
func New(opt Options) (*Server, error) {
	if opt.Service == nil || opt.Hub == nil {
		return nil, errors.New("api: the service (engine) and the hub are required: build the hub, then the engine with it as its notifier, then the server")
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	if opt.Clock == nil {
		opt.Clock = vakt.SystemClock{}
	}
	if opt.SessionTTL <= 0 {
		opt.SessionTTL = 12 * time.Hour
	}
	if opt.MaxBody <= 0 {
		opt.MaxBody = 16 << 10
	}
	if opt.LoginConcurrency <= 0 {
		opt.LoginConcurrency = 1
	}
	if opt.BodyTimeout <= 0 {
		opt.BodyTimeout = BodyTimeout
	}
	s := &Server{
		opt:      opt,
		log:      opt.Logger,
		sessions: newSessions(opt.Clock, opt.SessionTTL, opt.Hub),
		limiter:  newLimiter(opt.Clock),
		hash:     newHasher(opt.LoginConcurrency),
		hub:      opt.Hub,
	}
	s.sessions.restore(opt.Service.RestoredSessions())
	s.routes()
	return s, nil
}

// ServeHTTP implements http.Handler.
// Every request with a body must say it is JSON: a form or text/plain POST (what a
// web page may send to another origin without asking, a CORS "simple request") is
// refused with 415 before any handler sees it.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if hasBody(r) && !isJSON(r.Header.Get("Content-Type")) {
		writeError(w, http.StatusUnsupportedMediaType, "unsupported_media_type", "a request body must be sent with Content-Type: application/json")
		return
	}
	s.mux.ServeHTTP(w, r)
}

// Close ends every WebSocket.
func (s *Server) Close() { s.hub.closeAll() }

// errorBody is the one error shape of the API.
type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	var b errorBody
	b.Error.Code, b.Error.Message = code, msg
	writeJSON(w, status, b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if v != nil {
		_ = json.NewEncoder(w).Encode(v)
	}
}

// serviceError maps the domain's sentinel errors to statuses; anything else is a 500
// with a generic message (details go to the log, never to the phone).
func (s *Server) serviceError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, vakt.ErrNotFound):
		writeError(w, http.StatusNotFound, "not_found", "not found")
	case errors.Is(err, vakt.ErrForbidden):
		writeError(w, http.StatusForbidden, "forbidden", "not allowed for this staff member")
	case errors.Is(err, vakt.ErrConflict):
		writeError(w, http.StatusConflict, "conflict", conflictMessage(err))
	case errors.Is(err, vakt.ErrBusy):
		writeError(w, http.StatusServiceUnavailable, "busy", "gateway busy, retry")
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		writeError(w, http.StatusServiceUnavailable, "timeout", "gateway did not answer in time")
	default:
		s.log.Error("api request failed", "path", r.URL.Path, "err", err)
		writeError(w, http.StatusInternalServerError, "internal", "internal error")
	}
}

// conflictMessage keeps the domain's explanation but drops the sentinel's prefix.
func conflictMessage(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, ": "+vakt.ErrConflict.Error()); i > 0 {
		return msg[:i]
	}
	return "state conflict"
}

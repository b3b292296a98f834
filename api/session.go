package api

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	vakt "github.com/vakt/vakt"
	"golang.org/x/crypto/bcrypt"
)

// dummyHash is compared against when the staff id is unknown, so a wrong id and a
// wrong secret take the same time and get the same answer.
var dummyHash, _ = bcrypt.GenerateFromPassword([]byte("vakt-no-such-staff"), bcrypt.DefaultCost)

type session struct {
	staff   vakt.StaffID
	expires time.Time
}

// sessions holds bearer tokens by their SHA-256, never the tokens themselves.
type sessions struct {
	clock vakt.Clock
	ttl   time.Duration
	mu    sync.Mutex
	m     map[[32]byte]session
}

func newSessions(c vakt.Clock, ttl time.Duration) *sessions {
	return &sessions{clock: c, ttl: ttl, m: map[[32]byte]session{}}
}

// tokenHash is what is kept of a token, in memory and on disk.
func tokenHash(tok string) [32]byte { return sha256.Sum256([]byte(tok)) }

// restore takes back the logins stored before a restart.
func (s *sessions) restore(list []vakt.Session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, se := range list {
		var k [32]byte
		if b, err := hex.DecodeString(se.TokenHash); err == nil && len(b) == len(k) {
			copy(k[:], b)
			s.m[k] = session{staff: se.Staff, expires: se.Expires}
		}
	}
}

func (s *sessions) create(staff vakt.StaffID) (string, session) {
	var raw [32]byte
	_, _ = rand.Read(raw[:])
	tok := base64.RawURLEncoding.EncodeToString(raw[:])
	sess := session{staff: staff, expires: s.clock.Now().Add(s.ttl)}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	for k, v := range s.m { // expired sessions go when new ones come
		if now.After(v.expires) {
			delete(s.m, k)
		}
	}
	s.m[tokenHash(tok)] = sess
	return tok, sess
}

func (s *sessions) lookup(tok string) (session, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := tokenHash(tok)
	sess, ok := s.m[k]
	if !ok {
		return session{}, false
	}
	if s.clock.Now().After(sess.expires) {
		delete(s.m, k)
		return session{}, false
	}
	return sess, true
}

func (s *sessions) remove(tok string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, tokenHash(tok))
}

// limiter makes login brute force impracticable (S3): after a few failures per staff
// id or per client address, further attempts are refused with 429 for a delay that
// doubles with every failure, up to 15 minutes.
type limiter struct {
	clock vakt.Clock
	mu    sync.Mutex
	m     map[string]*strikes
}

type strikes struct {
	n     int
	until time.Time
	last  time.Time
}

const (
	freeFailures = 5
	maxLockout   = 15 * time.Minute
	forgetAfter  = time.Hour
)

func newLimiter(c vakt.Clock) *limiter { return &limiter{clock: c, m: map[string]*strikes{}} }

// blocked reports how long any of keys is still locked out.
func (l *limiter) blocked(keys ...string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.clock.Now()
	var wait time.Duration
	for _, k := range keys {
		if st, ok := l.m[k]; ok && now.Before(st.until) {
			wait = max(wait, st.until.Sub(now))
		}
	}
	return wait
}

func (l *limiter) fail(keys ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.clock.Now()
	for _, k := range keys {
		st, ok := l.m[k]
		if !ok || now.Sub(st.last) > forgetAfter {
			st = &strikes{}
			l.m[k] = st
		}
		st.n++
		st.last = now
		if st.n >= freeFailures {
			d := time.Second << min(st.n-freeFailures, 10)
			st.until = now.Add(min(d, maxLockout))
		}
	}
}

func (l *limiter) succeed(keys ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range keys {
		delete(l.m, k)
	}
}

func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

type loginRequest struct {
	StaffID string `json:"staff_id"`
	Secret  string `json:"secret"`
}

type staffView struct {
	ID    string   `json:"id"`
	Name  string   `json:"name"`
	Roles []string `json:"roles"`
}

type loginResponse struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
	Staff     staffView `json:"staff"`
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	var req loginRequest
	if !s.decode(w, r, &req) {
		return
	}
	keys := []string{"staff:" + req.StaffID, "addr:" + clientAddr(r)}
	if wait := s.limiter.blocked(keys...); wait > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
		writeError(w, http.StatusTooManyRequests, "rate_limited", "too many failed logins; try again later")
		return
	}
	m, err := s.opt.Service.Staff(r.Context(), vakt.StaffID(req.StaffID))
	hash := dummyHash
	if err == nil && m.SecretHash != "" {
		hash = []byte(m.SecretHash)
	}
	cmpErr := bcrypt.CompareHashAndPassword(hash, []byte(req.Secret))
	if err != nil || m.SecretHash == "" || cmpErr != nil || req.StaffID == "" {
		s.limiter.fail(keys...)
		s.log.Warn("login refused", "staff", req.StaffID, "addr", clientAddr(r))
		writeError(w, http.StatusUnauthorized, "unauthorized", "wrong staff id or secret")
		return
	}
	s.limiter.succeed(keys[0])
	tok, sess := s.sessions.create(m.ID)
	h := tokenHash(tok)
	// Stored before it is handed out, so a phone never holds a login a restart forgets.
	if err := s.opt.Service.SaveSession(r.Context(), vakt.Session{TokenHash: hex.EncodeToString(h[:]), Staff: m.ID, Expires: sess.expires}); err != nil {
		s.sessions.remove(tok)
		s.serviceError(w, r, err)
		return
	}
	s.log.Info("login", "staff", m.ID)
	writeJSON(w, http.StatusCreated, loginResponse{
		Token: tok, ExpiresAt: sess.expires.UTC(),
		Staff: staffView{ID: string(m.ID), Name: m.Name, Roles: nonNil(m.Roles)},
	})
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

type ctxKey struct{}

type caller struct {
	session
	token string
}

// auth requires a valid bearer token (or ?token= on the WebSocket, since browsers
// cannot set headers there).
func (s *Server) auth(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok && r.URL.Path == "/api/v1/stream" {
			tok, ok = r.URL.Query().Get("token"), true
		}
		sess, found := s.sessions.lookup(strings.TrimSpace(tok))
		if !ok || tok == "" || !found {
			writeError(w, http.StatusUnauthorized, "unauthorized", "missing or invalid token")
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, caller{sess, tok})))
	}
}

func who(r *http.Request) caller { return r.Context().Value(ctxKey{}).(caller) }

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	tok := who(r).token
	s.sessions.remove(tok)
	h := tokenHash(tok)
	if err := s.opt.Service.EndSession(r.Context(), hex.EncodeToString(h[:])); err != nil {
		s.serviceError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// Caller resolves a request's bearer token to the staff member logged in with it, so
// other pages served beside the API (the technician's status page) use the same
// logins without a second session store.
func (s *Server) Caller(r *http.Request) (vakt.StaffID, bool) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || strings.TrimSpace(tok) == "" {
		return "", false
	}
	sess, found := s.sessions.lookup(strings.TrimSpace(tok))
	return sess.staff, found
}

package api

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"strings"
	"sync"
	"time"

	vakt "github.com/vakt/vakt"
)

type session struct {
	staff   vakt.StaffID
	expires time.Time
	gen     uint64 // the hub's revocation count when made
}

// sessions holds bearer tokens by their SHA-256, never the tokens themselves.
type sessions struct {
	clock vakt.Clock
	ttl   time.Duration
	hub   *Hub // knows whose logins were revoked
	mu    sync.Mutex
	m     map[[32]byte]session
}

func newSessions(c vakt.Clock, ttl time.Duration, h *Hub) *sessions {
	return &sessions{clock: c, ttl: ttl, hub: h, m: map[[32]byte]session{}}
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
	sess := session{staff: staff, expires: s.clock.Now().Add(s.ttl), gen: s.hub.generation()}
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
	if s.clock.Now().After(sess.expires) || s.hub.revokedSince(sess.staff, sess.gen) {
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
	s.hub.endToken(who(r).staff, h)
	if err := s.opt.Service.EndSession(r.Context(), who(r).staff, hex.EncodeToString(h[:])); err != nil {
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

package api

import (
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	vakt "github.com/vakt/vakt"
	"golang.org/x/crypto/bcrypt"
)

// Login throttling (docs/api.md, "Login throttling"). Every attempt is reserved in
// the limiter before any hashing starts, so a burst of parallel attempts cannot all
// pass the check before the first failure is counted; and hashing runs in a few
// slots only (default one: half of the 2-core gateway), so a flood of logins can
// never take the CPU the alarm path needs. An attempt that finds no free slot is
// answered 429 at once.
//
// Three budgets, so that a stranger cannot lock a nurse out of her alarm phone:
//   - per (staff id, client address): 5 free failures, then a delay that doubles
//     with every further failure, up to 15 minutes. This is the brute-force lock.
//   - per client address, over all ids: 20 free failures, then doubling delays up
//     to 1 minute. It stops one address spraying many ids, and is short because a
//     shared NAT puts many phones behind one address.
//   - per staff id, over all addresses: 10 free failures, then at most one attempt a
//     second. It only slows (the delay never grows), so a flood from many addresses
//     against one id leaves its owner a Retry-After of one second, not 15 minutes.

type rule struct {
	free  int           // failures allowed before any delay
	first time.Duration // delay once the free failures are used
	max   time.Duration // cap; first == max means constant spacing (slows only)
}

var (
	pairRule = rule{free: 5, first: time.Second, max: 15 * time.Minute}
	addrRule = rule{free: 20, first: time.Second, max: time.Minute}
	idRule   = rule{free: 10, first: time.Second, max: time.Second}
)

const (
	forgetAfter = time.Hour // a key silent this long starts again from zero
	sweepAbove  = 1 << 14   // keys kept before stale ones are swept
)

// strikes counts failures of one key, including attempts still being checked.
type strikes struct {
	n     int
	until time.Time // no attempt before this
	last  time.Time
}

type limiter struct {
	clock vakt.Clock
	mu    sync.Mutex
	m     map[string]*strikes
}

func newLimiter(c vakt.Clock) *limiter { return &limiter{clock: c, m: map[string]*strikes{}} }

// ticket is one reserved attempt: its keys and the rules they follow.
type ticket struct {
	keys  [3]string
	rules [3]rule
}

func loginTicket(id, addr string) ticket {
	return ticket{
		keys:  [3]string{"pair:" + id + "\x00" + addr, "addr:" + addr, "staff:" + id},
		rules: [3]rule{pairRule, addrRule, idRule},
	}
}

// reserve counts the attempt as a failure before it is checked, or returns how long
// the caller must wait. Counting first is what makes the budget hold under a burst.
func (l *limiter) reserve(id, addr string) (ticket, time.Duration) {
	t := loginTicket(id, addr)
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.clock.Now()
	if len(l.m) > sweepAbove {
		l.sweep(now)
	}
	var sts [3]*strikes
	var wait time.Duration
	for i, k := range t.keys {
		st, ok := l.m[k]
		if !ok || (now.Sub(st.last) > forgetAfter && !now.Before(st.until)) {
			st = &strikes{}
			l.m[k] = st
		}
		sts[i] = st
		if now.Before(st.until) {
			wait = max(wait, st.until.Sub(now))
		}
	}
	if wait > 0 {
		return t, wait
	}
	for i, st := range sts {
		r := t.rules[i]
		st.n++
		st.last = now
		if st.n >= r.free {
			d := r.first << min(st.n-r.free, 20)
			st.until = now.Add(min(d, r.max))
		}
	}
	return t, 0
}

// refund takes back the reservation of the keys selected by which.
func (l *limiter) refund(t ticket, which ...int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, i := range which {
		st, ok := l.m[t.keys[i]]
		if !ok || st.n == 0 {
			continue
		}
		st.n--
		if st.n < t.rules[i].free {
			st.until = time.Time{}
		}
	}
}

// cancel: the attempt was never checked (no hashing slot), so it costs nothing.
func (l *limiter) cancel(t ticket) { l.refund(t, 0, 1, 2) }

// succeed clears the (id, address) pair and refunds the attempt elsewhere. It does
// not clear the per-id or per-address counts: a flood from elsewhere goes on being
// slowed after its target logs in.
func (l *limiter) succeed(t ticket) {
	l.refund(t, 1, 2)
	l.mu.Lock()
	delete(l.m, t.keys[0])
	l.mu.Unlock()
}

func (l *limiter) sweep(now time.Time) {
	for k, st := range l.m {
		if now.Sub(st.last) > forgetAfter && !now.Before(st.until) {
			delete(l.m, k)
		}
	}
}

func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// hasher does the bcrypt work: a bounded number of slots, and a dummy hash of the
// same cost as the real ones for unknown ids, so that an unknown id takes the same
// time as a wrong secret.
type hasher struct {
	slots   chan struct{}
	compare func(hash, secret []byte) error
	cost    atomic.Int64 // the cost of the last real hash seen
	mu      sync.Mutex
	dummies map[int][]byte
}

func newHasher(slots int) *hasher {
	h := &hasher{slots: make(chan struct{}, slots), compare: bcrypt.CompareHashAndPassword, dummies: map[int][]byte{}}
	h.cost.Store(int64(bcrypt.DefaultCost))
	return h
}

func (h *hasher) dummy(cost int) []byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	d, ok := h.dummies[cost]
	if !ok {
		d, _ = bcrypt.GenerateFromPassword([]byte("vakt-no-such-staff"), cost)
		h.dummies[cost] = d
	}
	return d
}

// check compares secret with hash, or with the dummy when hash is empty. It reports
// false at once when every slot is busy.
func (h *hasher) check(hash, secret []byte) (matched, ran bool) {
	select {
	case h.slots <- struct{}{}:
	default:
		return false, false
	}
	defer func() { <-h.slots }()
	if len(hash) == 0 {
		hash = h.dummy(int(h.cost.Load()))
	} else if c, err := bcrypt.Cost(hash); err == nil && int64(c) != h.cost.Load() {
		h.cost.Store(int64(c))
		h.dummy(c) // ready before the next unknown id, outside of its timing
	}
	return h.compare(hash, secret) == nil, true
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

func tooMany(w http.ResponseWriter, wait time.Duration, msg string) {
	secs := int((wait + time.Second - 1) / time.Second)
	w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
	writeError(w, http.StatusTooManyRequests, "rate_limited", msg)
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	var req loginRequest
	if !s.decode(w, r, &req) {
		return
	}
	if !s.textField(w, "staff_id", req.StaffID, 64) || !s.textField(w, "secret", req.Secret, 128) {
		return
	}
	addr := clientAddr(r)
	t, wait := s.limiter.reserve(req.StaffID, addr)
	if wait > 0 {
		tooMany(w, wait, "too many failed logins; try again later")
		return
	}
	m, err := s.opt.Service.Staff(r.Context(), vakt.StaffID(req.StaffID))
	if err != nil && !errors.Is(err, vakt.ErrNotFound) {
		s.limiter.cancel(t)
		s.serviceError(w, r, err)
		return
	}
	hash := []byte(nil)
	if err == nil {
		hash = []byte(m.SecretHash)
	}
	matched, ran := s.hash.check(hash, []byte(req.Secret))
	if !ran {
		s.limiter.cancel(t)
		tooMany(w, time.Second, "gateway busy with other logins; try again")
		return
	}
	if !matched || err != nil || m.SecretHash == "" || req.StaffID == "" {
		// The id only when it is one: people type their secret into the id field
		// (S4). Audited (S7) after the hash check only, so the hashing slot and the
		// throttle bound how fast failures can be written; an id the directory does
		// not hold is not written either: it is whatever a stranger typed.
		staff := "unknown"
		if err == nil {
			staff = string(m.ID)
		}
		s.log.Warn("login refused", "staff", staff, "addr", addr)
		if aerr := s.opt.Service.Audit(r.Context(), "client", "session.login_failed", "staff:"+staff); aerr != nil {
			s.log.Error("failed login not audited", "err", aerr)
		}
		writeError(w, http.StatusUnauthorized, "unauthorized", "wrong staff id or secret")
		return
	}
	s.limiter.succeed(t)
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

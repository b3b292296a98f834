package api

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	vakt "github.com/vakt/vakt"
	"github.com/vakt/vakt/internal/fakeclock"
	"golang.org/x/crypto/bcrypt"
)

// directory is the least of a Service a login needs.
type directory struct {
	Service // nil: any other call panics
	staff   map[vakt.StaffID]vakt.Member
}

func (d directory) Staff(_ context.Context, id vakt.StaffID) (vakt.Member, error) {
	m, ok := d.staff[id]
	if !ok {
		return m, fmt.Errorf("staff %s: %w", id, vakt.ErrNotFound)
	}
	return m, nil
}
func (directory) SaveSession(context.Context, vakt.Session) error     { return nil }
func (directory) Audit(context.Context, string, string, string) error { return nil }
func (directory) RestoredSessions() []vakt.Session                    { return nil }

func loginServer(t *testing.T, slots int) *Server {
	t.Helper()
	hash, _ := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	clk := fakeclock.New(time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC))
	s, err := New(Options{
		Clock: clk, LoginConcurrency: slots,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Hub:    NewHub(HubOptions{Clock: clk}),
		Service: directory{staff: map[vakt.StaffID]vakt.Member{
			"nurse-a": {Staff: vakt.Staff{ID: "nurse-a", SecretHash: string(hash)}},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func postLogin(s *Server, addr, staff, secret string) *httptest.ResponseRecorder {
	req := httptest.NewRequest("POST", "/api/v1/sessions", strings.NewReader(fmt.Sprintf(`{"staff_id":%q,"secret":%q}`, staff, secret)))
	req.Header.Set("Content-Type", "application/json")
	req.RemoteAddr = addr + ":40000"
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	return rec
}

// TestFloodIsRefusedWhileHashing: with hashing held up, 300 parallel wrong logins
// get their 429 without waiting for it (they are refused before any hashing), and
// only the budget is ever hashed: one with one slot, five (the free failures of an
// id and address) however many slots there are.
func TestFloodIsRefusedWhileHashing(t *testing.T) {
	for _, slots := range []int{1, 300} {
		t.Run(fmt.Sprint("slots=", slots), func(t *testing.T) {
			s := loginServer(t, slots)
			release := make(chan struct{})
			var hashed atomic.Int32
			s.hash.compare = func(h, p []byte) error {
				hashed.Add(1)
				<-release
				return bcrypt.CompareHashAndPassword(h, p)
			}
			want := min(slots, pairRule.free)
			codes := make(chan int, 300)
			var wg sync.WaitGroup
			for range 300 {
				wg.Go(func() { codes <- postLogin(s, "10.0.0.66", "nurse-a", "wrong").Code })
			}
			// Every answer but the hashed ones arrives while hashing is blocked.
			for range 300 - want {
				if c := <-codes; c != http.StatusTooManyRequests {
					t.Fatalf("answer while hashing is blocked: %d, want 429", c)
				}
			}
			close(release)
			wg.Wait()
			close(codes)
			for c := range codes {
				if c != http.StatusUnauthorized {
					t.Fatalf("hashed attempt answered %d, want 401", c)
				}
			}
			if n := hashed.Load(); int(n) != want {
				t.Fatalf("%d attempts hashed, want %d", n, want)
			}
		})
	}
}

// TestUnknownIDHashesLikeAKnownOne: an unknown id is compared against a dummy hash
// of the same cost as the real ones, so it takes the same time as a wrong secret.
// Before, the dummy had bcrypt's default cost whatever the directory used.
func TestUnknownIDHashesLikeAKnownOne(t *testing.T) {
	s := loginServer(t, 1)
	var costs []int
	s.hash.compare = func(h, p []byte) error {
		c, err := bcrypt.Cost(h)
		if err != nil {
			t.Errorf("compared against a non-hash: %v", err)
		}
		costs = append(costs, c)
		return bcrypt.CompareHashAndPassword(h, p)
	}
	known := postLogin(s, "10.0.0.1", "nurse-a", "wrong")
	unknown := postLogin(s, "10.0.0.1", "nobody", "wrong")
	if len(costs) != 2 || costs[0] != costs[1] {
		t.Fatalf("bcrypt costs compared (known, unknown): %v, want one each, equal", costs)
	}
	if known.Code != unknown.Code || known.Body.String() != unknown.Body.String() {
		t.Fatalf("answers differ: %d %s vs %d %s", known.Code, known.Body, unknown.Code, unknown.Body)
	}
}

package sync_test

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	stdsync "sync"
	"testing"
	"time"

	"github.com/vakt/vakt/internal/fakeclock"
	cloudsync "github.com/vakt/vakt/sync"
	"github.com/vakt/vakt/sync/cloudsim"
	"github.com/vakt/vakt/sync/wire"
)

func TestBackoffFullJitter(t *testing.T) {
	b := cloudsync.Backoff{Base: time.Second, Max: time.Minute, Rand: func() float64 { return 0.5 }}
	for _, tc := range []struct {
		attempt    int
		retryAfter time.Duration
		want       time.Duration
	}{
		{1, 0, 500 * time.Millisecond},
		{2, 0, time.Second},
		{3, 0, 2 * time.Second},
		{6, 0, 16 * time.Second},
		{7, 0, 30 * time.Second}, // 64 s capped at 60 s
		{200, 0, 30 * time.Second},
		{1, 10 * time.Second, 10 * time.Second}, // Retry-After is a floor
	} {
		if got := b.Delay(tc.attempt, tc.retryAfter); got != tc.want {
			t.Errorf("Delay(%d, %v) = %v, want %v", tc.attempt, tc.retryAfter, got, tc.want)
		}
	}
	// Full jitter: the whole range [0, ceiling) is used.
	b.Rand = func() float64 { return 0 }
	if got := b.Delay(5, 0); got != 0 {
		t.Errorf("Delay with rand 0 = %v, want 0", got)
	}
}

// TestBackoffOnFakeClock: against a cloud answering 500, the uploader waits exactly
// the jittered delays on the injected clock: not a nanosecond early.
func TestBackoffOnFakeClock(t *testing.T) {
	s := startSim(t, cloudsim.Options{})
	s.SetFault(cloudsim.Fault{Mode: cloudsim.FaultStatus, Status: 500})
	ob := newOutbox()
	ob.add(5)
	clk := fakeclock.New(time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC))
	w := newWaits(clk, false)
	u := cloudsync.NewUploader(client(t, s.url, token), ob, cloudsync.Options{Clock: clk, OnWait: w.on,
		Backoff: cloudsync.Backoff{Base: time.Second, Max: 10 * time.Second, Rand: func() float64 { return 0.75 }}})
	run(t, u)
	for _, want := range []time.Duration{750 * time.Millisecond, 1500 * time.Millisecond, 3 * time.Second, 6 * time.Second, 7500 * time.Millisecond, 7500 * time.Millisecond} {
		d, _ := w.next(t)
		if d != want {
			t.Fatalf("backoff %v, want %v", d, want)
		}
		before := s.Uploads()
		clk.Advance(d - time.Nanosecond)
		if s.Uploads() != before {
			t.Fatalf("retried before the backoff ran out")
		}
		clk.Advance(time.Nanosecond)
	}
}

// countHandler counts log records by level and message.
type countHandler struct {
	mu   stdsync.Mutex
	msgs map[string]int
}

func (h *countHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.msgs[r.Level.String()+" "+r.Message]++
	return nil
}
func (h *countHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countHandler) WithGroup(string) slog.Handler      { return h }

// TestOutageLoggedOnce: twenty failed attempts make one warning, and the return one
// info line, not a line per retry. The token never appears in the log.
func TestOutageLoggedOnce(t *testing.T) {
	s := startSim(t, cloudsim.Options{})
	s.SetFault(cloudsim.Fault{Mode: cloudsim.FaultStatus, Status: 503, Count: 20})
	ob := newOutbox()
	last := ob.add(50)
	clk := fakeclock.New(time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC))
	w := newWaits(clk, true)
	h := &countHandler{msgs: map[string]int{}}
	logged := &lockedWriter{w: &strings.Builder{}}
	u := cloudsync.NewUploader(client(t, s.url, token), ob, cloudsync.Options{Clock: clk, OnWait: w.on,
		Log: slog.New(multi{h, slog.NewTextHandler(logged, &slog.HandlerOptions{Level: slog.LevelDebug})})})
	run(t, u)
	ob.waitAcked(t, last)
	h.mu.Lock()
	defer h.mu.Unlock()
	warn, back := 0, 0
	for k, n := range h.msgs {
		if strings.HasPrefix(k, "WARN ") {
			warn += n
		}
		if k == "INFO cloud reachable again" {
			back += n
		}
	}
	if warn != 1 || back != 1 {
		t.Fatalf("log lines: %v; want one warning and one 'reachable again'", h.msgs)
	}
	if strings.Contains(logged.String(), token) { // the uploader may still be logging
		t.Fatal("the cloud token appears in the log")
	}
}

type lockedWriter struct {
	mu stdsync.Mutex
	w  *strings.Builder
}

func (l *lockedWriter) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.String()
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

type multi []slog.Handler

func (m multi) Enabled(context.Context, slog.Level) bool { return true }
func (m multi) Handle(ctx context.Context, r slog.Record) error {
	for _, h := range m {
		h.Handle(ctx, r)
	}
	return nil
}
func (m multi) WithAttrs([]slog.Attr) slog.Handler { return m }
func (m multi) WithGroup(string) slog.Handler      { return m }

// TestTLSUntrusted: a cloud whose certificate the gateway does not trust gets
// nothing; the fatal condition names the certificate and what to change. With the
// CA trusted, the same server gets everything.
func TestTLSUntrusted(t *testing.T) {
	s := startSim(t, cloudsim.Options{})
	ts := httptest.NewUnstartedServer(s.Handler())
	ts.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake is the point
	ts.StartTLS()
	defer ts.Close()
	ob := newOutbox()
	ob.add(20)
	clk := fakeclock.New(time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC))
	w := newWaits(clk, false)
	c, err := cloudsync.NewClient(cloudsync.Config{URL: ts.URL, Gateway: gateway, Token: token})
	if err != nil {
		t.Fatal(err)
	}
	fatals := make(chan *cloudsync.Error, 4)
	u := cloudsync.NewUploader(c, ob, cloudsync.Options{Clock: clk, OnWait: w.on, OnFatal: func(e *cloudsync.Error) { fatals <- e }})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { u.Run(ctx); close(done) }()
	_, e := w.next(t)
	cancel()
	<-done
	if !e.Fatal || e.Reason != cloudsync.ReasonTLS || !strings.Contains(e.Error(), "certificate") || !strings.Contains(e.Error(), "cloud.ca_file") {
		t.Fatalf("got %v (reason %s), want a fatal TLS error naming the certificate and cloud.ca_file", e, e.Reason)
	}
	if len(fatals) != 1 {
		t.Fatalf("OnFatal called %d times", len(fatals))
	}
	if s.Uploads() != 0 || s.count(t) != 0 || ob.len() != 20 {
		t.Fatalf("uploads %d, stored %d, outbox %d: something was sent to an untrusted server", s.Uploads(), s.count(t), ob.len())
	}

	pool := x509.NewCertPool()
	pool.AddCert(ts.Certificate())
	c2, err := cloudsync.NewClient(cloudsync.Config{URL: ts.URL, Gateway: gateway, Token: token, RootCAs: pool})
	if err != nil {
		t.Fatal(err)
	}
	u2 := cloudsync.NewUploader(c2, ob, cloudsync.Options{Clock: clk})
	run(t, u2)
	ob.waitAcked(t, 20)
}

func TestClientConfig(t *testing.T) {
	for _, tc := range []struct {
		cfg  cloudsync.Config
		want string
	}{
		{cloudsync.Config{URL: "http://127.0.0.1:8090", Gateway: "g", Token: "sekret-token"}, "demo mode only"},
		{cloudsync.Config{URL: "ftp://x", Gateway: "g", Token: "sekret-token"}, "https"},
		{cloudsync.Config{URL: "https://x", Gateway: "g"}, "token_file"},
		{cloudsync.Config{URL: "https://x", Token: "sekret-token"}, "site.id"},
		{cloudsync.Config{URL: "https://x", Gateway: "g", Token: "sekret-token", CAFile: "/nonexistent/ca.pem"}, "cloud.ca_file"},
	} {
		_, err := cloudsync.NewClient(tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewClient(%+v) = %v, want an error saying %q", tc.cfg, err, tc.want)
		}
		if err != nil && tc.cfg.Token != "" && strings.Contains(err.Error(), tc.cfg.Token) {
			t.Errorf("error shows the token: %v", err)
		}
	}
}

// TestDirectory: staff added, changed and removed in the cloud, and an erasure
// request, reach Apply in order; the cursor advances and a repeat fetch brings
// nothing new.
func TestDirectory(t *testing.T) {
	s := startSim(t, cloudsim.Options{})
	ctx := context.Background()
	st := s.Storage()
	put := func(id, name string) {
		t.Helper()
		if err := st.PutStaff(ctx, gateway, wire.Staff{ID: id, Name: name, Roles: []string{"nurse"},
			SecretHash: "$2a$10$abcdefghijklmnopqrstuvwx0123456789012345678901234567",
			Shifts:     []wire.Shift{{Start: time.Date(2026, 12, 1, 6, 0, 0, 0, time.UTC), End: time.Date(2026, 12, 1, 14, 0, 0, 0, time.UTC)}}}); err != nil {
			t.Fatal(err)
		}
	}
	put("n1", "Anna")
	put("n2", "Bo")
	put("n3", "Cai")
	if err := st.PutStaff(ctx, "other-site", wire.Staff{ID: "x1", Name: "Other"}); err != nil {
		t.Fatal(err)
	}
	var got []DirectoryCall
	var fail error
	apply := func(ctx context.Context, c cloudsync.DirectoryChange) error {
		if fail != nil {
			return fail
		}
		got = append(got, DirectoryCall{c.Cursor, summarize(c.Changes)})
		return nil
	}
	clk := fakeclock.New(time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC))
	d := cloudsync.NewDirectory(client(t, s.url, token), apply, cloudsync.DirectoryOptions{Clock: clk, PageSize: 2})
	c1, err := d.Sync(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if want := "upsert n1 Anna,upsert n2 Bo|upsert n3 Cai"; joinCalls(got) != want || c1 == "" {
		t.Fatalf("first sync: %q cursor %q, want %q", joinCalls(got), c1, want)
	}
	got = nil
	put("n1", "Anna B")
	if err := st.RemoveStaff(ctx, gateway, "n2"); err != nil {
		t.Fatal(err)
	}
	req, err := st.RequestErasure(ctx, gateway, "n3")
	if err != nil {
		t.Fatal(err)
	}
	// An apply that fails keeps the cursor where it was: nothing is skipped.
	fail = errors.New("disk full")
	if c, err := d.Sync(ctx, c1); err == nil || c != c1 {
		t.Fatalf("failed apply: cursor %q err %v, want %q and an error", c, err, c1)
	}
	fail = nil
	c2, err := d.Sync(ctx, c1)
	if err != nil {
		t.Fatal(err)
	}
	if want := "upsert n1 Anna B,remove n2|erase n3 " + req; joinCalls(got) != want {
		t.Fatalf("second sync: %q, want %q", joinCalls(got), want)
	}
	if c2 == c1 || got[len(got)-1].cursor != c2 {
		t.Fatalf("cursor did not advance: %q → %q", c1, c2)
	}
	got = nil
	if c3, err := d.Sync(ctx, c2); err != nil || c3 != c2 || len(got) != 0 {
		t.Fatalf("third sync: cursor %q err %v calls %v; want nothing new", c3, err, got)
	}
	// A gateway starting afresh is not handed the removed or erased people's data.
	got = nil
	if _, err := d.Sync(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if s := joinCalls(got); strings.Contains(s, "Bo") || strings.Contains(s, "Cai") {
		t.Fatalf("a fresh sync still hands out removed or erased people: %q", s)
	}
	if h := d.Health(); h.Cursor == "" {
		t.Fatalf("health = %+v", h)
	}
}

type DirectoryCall struct {
	cursor  string
	changes string
}

func summarize(cs []wire.DirectoryChange) string {
	var parts []string
	for _, c := range cs {
		switch c.Op {
		case wire.OpUpsert:
			parts = append(parts, fmt.Sprintf("upsert %s %s", c.StaffID, c.Staff.Name))
		case wire.OpErase:
			parts = append(parts, fmt.Sprintf("erase %s %s", c.StaffID, c.RequestID))
		default:
			parts = append(parts, c.Op+" "+c.StaffID)
		}
	}
	return strings.Join(parts, ",")
}

func joinCalls(cs []DirectoryCall) string {
	var s []string
	for _, c := range cs {
		s = append(s, c.changes)
	}
	return strings.Join(s, "|")
}

// TestDirectoryRun: the poller applies on Refresh, and the status page shows the
// directory's age on the injected clock.
func TestDirectoryRun(t *testing.T) {
	s := startSim(t, cloudsim.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	applied := make(chan cloudsync.DirectoryChange, 10)
	clk := fakeclock.New(time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC))
	d := cloudsync.NewDirectory(client(t, s.url, token), func(ctx context.Context, c cloudsync.DirectoryChange) error {
		applied <- c
		return nil
	}, cloudsync.DirectoryOptions{Clock: clk, Interval: time.Minute})
	done := make(chan struct{})
	go func() { d.Run(ctx, ""); close(done) }()
	defer func() { cancel(); <-done }()
	if err := s.Storage().PutStaff(ctx, gateway, wire.Staff{ID: "n9", Name: "Dee", Roles: []string{"nurse"}}); err != nil {
		t.Fatal(err)
	}
	d.Refresh()
	var c cloudsync.DirectoryChange
	for c = range applied {
		if len(c.Changes) > 0 {
			break
		}
	}
	if c.Changes[0].StaffID != "n9" {
		t.Fatalf("applied %+v", c)
	}
	clk.Advance(90 * time.Second)
	st, err := cloudsync.Stats(ctx, nil, d)
	if err != nil {
		t.Fatal(err)
	}
	if st.DirectoryAge < 0 || st.Directory.Cursor == "" {
		t.Fatalf("status %+v", st)
	}
}

func TestBacklogPolicy(t *testing.T) {
	p := cloudsync.BacklogPolicy{MaxEntries: 1000, Warn: 0.8}
	for _, tc := range []struct {
		name string
		b    cloudsync.Backlog
		want cloudsync.BacklogAction
	}{
		{"low", cloudsync.Backlog{Entries: 100}, cloudsync.BacklogAction{}},
		{"warning level, health compacts below it", cloudsync.Backlog{Entries: 850, HealthEntries: 500, HealthTransmitters: 20},
			cloudsync.BacklogAction{CompactHealth: true}},
		{"warning level, nothing to compact", cloudsync.Backlog{Entries: 850, HealthEntries: 20, HealthTransmitters: 20},
			cloudsync.BacklogAction{Warn: true}},
		{"over the cap with alarms only: warn, never drop", cloudsync.Backlog{Entries: 1500},
			cloudsync.BacklogAction{Warn: true, OverCap: true}},
		{"over the cap, compaction is not enough", cloudsync.Backlog{Entries: 1500, HealthEntries: 100, HealthTransmitters: 10},
			cloudsync.BacklogAction{CompactHealth: true, Warn: true, OverCap: true}},
	} {
		if got := p.Decide(tc.b); got != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
	}
	if got := (cloudsync.BacklogPolicy{MaxBytes: 100}).Decide(cloudsync.Backlog{Entries: 1, Bytes: 120}); !got.OverCap {
		t.Errorf("byte cap not applied: %+v", got)
	}
}

func TestCompactHealth(t *testing.T) {
	h := func(seq int64, tr string) cloudsync.Entry {
		b, _ := json.Marshal(wire.Health{Transmitter: tr, Online: true})
		return cloudsync.Entry{Seq: seq, Kind: wire.KindHealth, Body: b}
	}
	a := func(seq int64) cloudsync.Entry {
		return cloudsync.Entry{Seq: seq, Kind: wire.KindAlarm, Body: []byte(`{}`)}
	}
	in := []cloudsync.Entry{h(1, "t1"), a(2), h(3, "t2"), h(4, "t1"), a(5), h(6, "t2"),
		{Seq: 7, Kind: wire.KindHealth, Body: []byte(`garbage`)}, {Seq: 8, Kind: wire.KindAudit, Body: []byte(`{}`)}}
	var got []int64
	for _, e := range cloudsync.CompactHealth(in) {
		got = append(got, e.Seq)
	}
	if fmt.Sprint(got) != "[2 4 5 6 7 8]" {
		t.Fatalf("compacted to %v, want [2 4 5 6 7 8] (latest health per transmitter, everything else kept)", got)
	}
	if len(in) != 8 || in[0].Seq != 1 {
		t.Fatal("CompactHealth changed its input")
	}
}

func TestStats(t *testing.T) {
	s := startSim(t, cloudsim.Options{})
	ob := newOutbox()
	clk := fakeclock.New(time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC))
	ob.now = clk.Now
	ob.add(7)
	clk.Advance(3 * time.Minute)
	u := cloudsync.NewUploader(client(t, s.url, token), ob, cloudsync.Options{Clock: clk})
	st, err := cloudsync.Stats(context.Background(), u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.Backlog != 7 || st.BacklogBytes == 0 || st.OldestAge != 3*time.Minute || st.DirectoryAge != -1 {
		t.Fatalf("status %+v", st)
	}
	run(t, u)
	ob.waitAcked(t, 7)
	st, _ = cloudsync.Stats(context.Background(), u, nil)
	if st.Backlog != 0 || st.Upload.LastSuccess.IsZero() || st.Upload.Acked != 7 || st.Upload.Sent != 7 {
		t.Fatalf("status after drain %+v", st)
	}
}

// TestDirectoryRefusesUnknownOp: a page the gateway does not understand is not
// applied in part (skipping could skip an erasure); it is a fatal protocol error.
func TestDirectoryRefusesUnknownOp(t *testing.T) {
	for name, page := range map[string]string{
		"unknown op":         `{"cursor":"9","changes":[{"op":"merge","staff_id":"n1"}]}`,
		"upsert without row": `{"cursor":"9","changes":[{"op":"upsert","staff_id":"n1"}]}`,
		"plain secret":       `{"cursor":"9","changes":[{"op":"upsert","staff_id":"n1","staff":{"id":"n1","name":"A","roles":[],"secret_hash":"hunter2"}}]}`,
		"erase without id":   `{"cursor":"9","changes":[{"op":"erase","staff_id":"n1"}]}`,
	} {
		t.Run(name, func(t *testing.T) {
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				io.WriteString(w, page)
			}))
			defer ts.Close()
			applied := 0
			d := cloudsync.NewDirectory(client(t, ts.URL, token), func(context.Context, cloudsync.DirectoryChange) error {
				applied++
				return nil
			}, cloudsync.DirectoryOptions{})
			cur, err := d.Sync(context.Background(), "4")
			e, ok := err.(*cloudsync.Error)
			if !ok || !e.Fatal || e.Reason != cloudsync.ReasonProtocol || cur != "4" || applied != 0 {
				t.Fatalf("cursor %q applied %d err %v; want a fatal protocol error and nothing applied", cur, applied, err)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Fatal("the error shows the secret")
			}
		})
	}
}

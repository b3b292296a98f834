package sync_test

import (
	"context"
	"net/http"
	"slices"
	stdsync "sync"
	"testing"
	"time"

	"github.com/vakt/vakt/internal/fakeclock"
	cloudsync "github.com/vakt/vakt/sync"
	"github.com/vakt/vakt/sync/cloudsim"
)

// waits records the uploader's chosen waits and, with auto, moves the fake clock
// past each one at once so a test never waits for real backoff.
type waits struct {
	mu    stdsync.Mutex
	clk   *fakeclock.Clock
	auto  bool
	list  []time.Duration
	errs  []*cloudsync.Error
	notif chan struct{}
}

func newWaits(clk *fakeclock.Clock, auto bool) *waits {
	return &waits{clk: clk, auto: auto, notif: make(chan struct{}, 1000)}
}

func (w *waits) on(d time.Duration, err *cloudsync.Error) {
	w.mu.Lock()
	w.list = append(w.list, d)
	w.errs = append(w.errs, err)
	auto := w.auto
	w.mu.Unlock()
	w.notif <- struct{}{}
	if auto {
		go w.clk.Advance(d)
	}
}

func (w *waits) next(t *testing.T) (time.Duration, *cloudsync.Error) {
	t.Helper()
	select {
	case <-w.notif:
	case <-time.After(30 * time.Second):
		t.Fatal("the uploader never backed off")
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.list[len(w.list)-1], w.errs[len(w.errs)-1]
}

func (w *waits) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.list)
}

// checkArrived asserts that the cloud's entries table holds seqs 1..n, once each,
// in order, and that the outbox is empty.
func checkArrived(t *testing.T, s *sim, ob *memOutbox, n int64) {
	t.Helper()
	seqs, err := s.db.Seqs(context.Background(), gateway)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]int64, n)
	for i := range want {
		want[i] = int64(i + 1)
	}
	if !slices.Equal(seqs, want) {
		t.Fatalf("cloud holds %d entries (first %v), want 1..%d once each in order", len(seqs), seqs[:min(len(seqs), 10)], n)
	}
	if ob.len() != 0 {
		t.Fatalf("outbox still holds %d entries", ob.len())
	}
}

func newUploader(t *testing.T, s *sim, ob *memOutbox, w *waits, opt cloudsync.Options) *cloudsync.Uploader {
	opt.Clock = w.clk
	opt.OnWait = w.on
	if opt.BatchSize == 0 {
		opt.BatchSize = 100
	}
	return cloudsync.NewUploader(client(t, s.url, token), ob, opt)
}

// TestOutageEntriesKeepComing: the cloud is away (connections refused) while the
// gateway keeps queueing; when it returns everything arrives, in order, exactly
// once, and the outbox empties.
func TestOutageEntriesKeepComing(t *testing.T) {
	s := startSim(t, cloudsim.Options{})
	ob := newOutbox()
	clk := fakeclock.New(time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC))
	w := newWaits(clk, false)
	u := newUploader(t, s, ob, w, cloudsync.Options{})
	ob.add(250)
	run(t, u)
	ob.waitAcked(t, 250)

	s.SetFault(cloudsim.Fault{Mode: cloudsim.FaultRefuse})
	for range 5 { // five failed attempts while entries keep coming
		ob.add(333)
		u.Kick()
		d, err := w.next(t)
		if err.Reason != cloudsync.ReasonUnreachable || err.Fatal {
			t.Fatalf("refused connection classified as %s (fatal %v)", err.Reason, err.Fatal)
		}
		clk.Advance(d)
	}
	if got := s.count(t); got != 250 {
		t.Fatalf("cloud stored %d entries while refusing, want 250", got)
	}
	s.SetFault(cloudsim.Fault{})
	last := ob.add(100)
	w.mu.Lock()
	w.auto = true
	w.mu.Unlock()
	u.Retry()
	ob.waitAcked(t, last)
	checkArrived(t, s, ob, last)
	if h := u.Health(); h.Outage || h.LastError != "" || h.Acked != last {
		t.Fatalf("health after recovery = %+v", h)
	}
}

// TestFaults: every failure mode of the reference cloud; afterwards everything has
// arrived once, in order.
func TestFaults(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault cloudsim.Fault
		// minWait: at least one backoff must be this long (Retry-After honoured);
		// noFail: the mode succeeds, just slowly or partly.
		minWait time.Duration
		noFail  bool
	}{
		{name: "500", fault: cloudsim.Fault{Mode: cloudsim.FaultStatus, Status: 500, Count: 3}},
		{name: "502", fault: cloudsim.Fault{Mode: cloudsim.FaultStatus, Status: 502, Count: 2}},
		{name: "503 retry-after", fault: cloudsim.Fault{Mode: cloudsim.FaultStatus, Status: 503, Count: 2, RetryAfter: cloudsim.Duration(120 * time.Second)}, minWait: 120 * time.Second},
		{name: "429 retry-after", fault: cloudsim.Fault{Mode: cloudsim.FaultStatus, Status: 429, Count: 2, RetryAfter: cloudsim.Duration(7 * time.Second)}, minWait: 7 * time.Second},
		{name: "stall", fault: cloudsim.Fault{Mode: cloudsim.FaultStall, Count: 1}},
		{name: "drop mid body", fault: cloudsim.Fault{Mode: cloudsim.FaultDropMidBody, Count: 3}},
		{name: "drop after commit", fault: cloudsim.Fault{Mode: cloudsim.FaultDropAfterCommit, Count: 3}},
		{name: "slow ack", fault: cloudsim.Fault{Mode: cloudsim.FaultSlow, Delay: cloudsim.Duration(20 * time.Millisecond), Count: 3}, noFail: true},
		{name: "partial ack", fault: cloudsim.Fault{Mode: cloudsim.FaultPartial, Take: 7, Count: 10}, noFail: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startSim(t, cloudsim.Options{})
			s.SetFault(tc.fault)
			ob := newOutbox()
			clk := fakeclock.New(time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC))
			w := newWaits(clk, true)
			timeout := 10 * time.Second
			if tc.fault.Mode == cloudsim.FaultStall {
				timeout = 300 * time.Millisecond // the client gives up on a stalled cloud
			}
			c, err := cloudsync.NewClient(cloudsync.Config{URL: s.url, Gateway: gateway, Token: token, AllowHTTP: true, Timeout: timeout})
			if err != nil {
				t.Fatal(err)
			}
			u := cloudsync.NewUploader(c, ob, cloudsync.Options{BatchSize: 100, Clock: clk, OnWait: w.on})
			last := ob.add(450)
			run(t, u)
			ob.waitAcked(t, last)
			checkArrived(t, s, ob, last)
			switch {
			case tc.noFail && w.count() != 0:
				t.Errorf("%d backoffs for a mode that only slows down", w.count())
			case !tc.noFail && w.count() == 0:
				t.Errorf("no backoff: the fault was never seen")
			}
			w.mu.Lock()
			defer w.mu.Unlock()
			for _, e := range w.errs {
				if e.Fatal {
					t.Errorf("transient fault reported as fatal: %v", e)
				}
			}
			if tc.minWait > 0 && slices.Max(w.list) < tc.minWait {
				t.Errorf("longest wait %v, want ≥ Retry-After %v", slices.Max(w.list), tc.minWait)
			}
			if tc.fault.Mode == cloudsim.FaultPartial && s.Uploads() < 10+4 {
				t.Errorf("only %d uploads: a partial ack was taken as the whole batch", s.Uploads())
			}
		})
	}
}

// TestFatal: refusals that do not fix themselves stop the batch (nothing leaves the
// outbox), are reported once with a reason the technical alarm can name, and are not
// retried on the short backoff.
func TestFatal(t *testing.T) {
	for _, tc := range []struct {
		name   string
		tok    string
		prep   func(t *testing.T, s *sim, ob *memOutbox)
		opt    cloudsim.Options
		reason string
		status int
	}{
		{name: "401 unknown token", tok: "wrong-token", reason: cloudsync.ReasonAuth, status: http.StatusUnauthorized},
		{name: "403 token of another gateway", tok: "t0k3n-other", reason: cloudsync.ReasonAuth, status: http.StatusForbidden},
		{name: "409 gap: the cloud lost acknowledged entries", tok: token, reason: cloudsync.ReasonConflict, status: http.StatusConflict,
			prep: func(t *testing.T, s *sim, ob *memOutbox) { ob.acked = 40; ob.next = 41 }},
		{name: "409 conflict: seq stored with other content", tok: token, reason: cloudsync.ReasonConflict, status: http.StatusConflict,
			prep: func(t *testing.T, s *sim, ob *memOutbox) {
				// Another database under the same gateway id already sent seqs 1..5.
				other := newOutbox()
				other.add(6) // different bodies: kinds cycle from seq 1, shifted below
				for i := range other.entries {
					other.entries[i].Boot = "other-box"
				}
				u := cloudsync.NewUploader(client(t, s.url, token), other, cloudsync.Options{})
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan struct{})
				go func() { u.Run(ctx); close(done) }()
				other.waitAcked(t, 6)
				cancel()
				<-done
			}},
		{name: "413 even one entry", tok: token, opt: cloudsim.Options{MaxBody: 20}, reason: cloudsync.ReasonTooLarge, status: http.StatusRequestEntityTooLarge},
		{name: "400 malformed entry", tok: token, reason: cloudsync.ReasonRejected, status: http.StatusBadRequest,
			prep: func(t *testing.T, s *sim, ob *memOutbox) {
				ob.add(1)
				ob.entries[0].Body = []byte(`["not an object"]`)
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startSim(t, tc.opt)
			ob := newOutbox()
			if tc.prep != nil {
				tc.prep(t, s, ob)
			}
			before := s.count(t)
			ob.add(30)
			n := ob.len()
			clk := fakeclock.New(time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC))
			w := newWaits(clk, false)
			fatals := make(chan *cloudsync.Error, 10)
			u := cloudsync.NewUploader(client(t, s.url, tc.tok), ob, cloudsync.Options{
				Clock: clk, OnWait: w.on, OnFatal: func(e *cloudsync.Error) { fatals <- e }, FatalRetry: time.Hour})
			run(t, u)
			for i := range 3 { // the first try and two retries after a reload: one report
				d, e := w.next(t)
				if !e.Fatal || e.Reason != tc.reason || e.Status != tc.status {
					t.Fatalf("try %d: got %v (reason %s, status %d, fatal %v), want fatal %s %d", i, e, e.Reason, e.Status, e.Fatal, tc.reason, tc.status)
				}
				if d != time.Hour {
					t.Fatalf("fatal wait %v, want FatalRetry", d)
				}
				u.Retry()
			}
			if len(fatals) != 1 {
				t.Fatalf("OnFatal called %d times, want once", len(fatals))
			}
			if ob.len() != n {
				t.Fatalf("outbox lost entries on a fatal error: %d, want %d", ob.len(), n)
			}
			if got := s.count(t); got != before {
				t.Fatalf("cloud stored %d entries, want %d", got, before)
			}
			if h := u.Health(); !h.Fatal || h.Reason != tc.reason || h.LastError == "" {
				t.Fatalf("health = %+v", h)
			}
		})
	}
}

// TestTooLargeHalves: a cloud with a smaller body limit than our batch is not a
// fatal condition: the uploader halves the batch until the cloud takes it.
func TestTooLargeHalves(t *testing.T) {
	s := startSim(t, cloudsim.Options{MaxBody: 3000})
	ob := newOutbox()
	clk := fakeclock.New(time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC))
	w := newWaits(clk, true)
	u := newUploader(t, s, ob, w, cloudsync.Options{BatchSize: 1000})
	last := ob.add(2000)
	run(t, u)
	ob.waitAcked(t, last)
	checkArrived(t, s, ob, last)
	if w.count() != 0 {
		t.Fatalf("%d backoffs; halving needs none", w.count())
	}
}

// TestClock1970: a box without a real-time clock boots in 1970. Uploads work, the
// records say the clock was not synced, and the status page shows no nonsense age.
func TestClock1970(t *testing.T) {
	s := startSim(t, cloudsim.Options{})
	ob := newOutbox()
	clk := fakeclock.New(time.Unix(37, 0).UTC())
	ob.now, ob.synced = clk.Now, false
	w := newWaits(clk, true)
	u := newUploader(t, s, ob, w, cloudsync.Options{})
	ob.add(10)
	st, err := cloudsync.Stats(context.Background(), u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.Backlog != 10 || st.OldestAge != -1 {
		t.Fatalf("status with a 1970 clock: backlog %d oldest age %v, want 10 and -1 (unknown)", st.Backlog, st.OldestAge)
	}
	run(t, u)
	ob.waitAcked(t, 10)
	e, err := s.db.Entry(context.Background(), gateway, 3)
	if err != nil {
		t.Fatal(err)
	}
	if e.ClockSynced || e.At.Year() != 1970 || e.Boot != "boot-1" {
		t.Fatalf("stored entry = %+v, want clock_synced false at 1970 with its boot id", e)
	}
}

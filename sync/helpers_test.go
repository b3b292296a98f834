package sync_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"
	stdsync "sync"
	"testing"
	"time"

	cloudsync "github.com/vakt/vakt/sync"
	"github.com/vakt/vakt/sync/cloudsim"
	"github.com/vakt/vakt/sync/cloudsim/sqlitestore"
	"github.com/vakt/vakt/sync/wire"
)

const (
	gateway = "solbakken"
	token   = "t0k3n-solbakken-not-a-sample"
)

// memOutbox is an in-memory Outbox for this phase (the store's comes later).
type memOutbox struct {
	mu      stdsync.Mutex
	entries []cloudsync.Entry
	next    int64
	acked   int64
	changed chan struct{} // closed and replaced on every Acknowledge
	now     func() time.Time
	synced  bool
}

func newOutbox() *memOutbox {
	return &memOutbox{next: 1, changed: make(chan struct{}), now: time.Now, synced: true}
}

// add queues n entries, cycling through the kinds, and returns the last seq.
func (o *memOutbox) add(n int) int64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	for range n {
		seq := o.next
		o.next++
		kind, body := sampleBody(seq)
		o.entries = append(o.entries, cloudsync.Entry{Seq: seq, Kind: kind, At: o.now(), ClockSynced: o.synced,
			Boot: "boot-1", SinceBoot: time.Duration(seq) * time.Millisecond, Body: body})
	}
	return o.next - 1
}

func sampleBody(seq int64) (string, []byte) {
	var v any
	var kind string
	switch seq % 5 {
	case 0:
		kind, v = wire.KindAlarm, wire.Alarm{ID: fmt.Sprintf("a-%d", seq), Transition: "alarm.raised", Transmitter: "t-7",
			Kind: "call", Priority: 3, State: "raised", Count: 1, RaisedAt: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC),
			At: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)}
	case 1:
		kind, v = wire.KindAudit, wire.Audit{Seq: seq, At: "2026-12-01T10:00:00.000000001Z", Actor: "system",
			Action: "alarm.offered", Subject: "alarm:a-1", Prev: fmt.Sprintf("%064d", seq-1), Hash: fmt.Sprintf("%064d", seq)}
	case 2:
		b := 80
		kind, v = wire.KindHealth, wire.Health{Transmitter: fmt.Sprintf("t-%d", seq%7), LastSeen: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC), Battery: &b, Online: true}
	case 3:
		kind, v = wire.KindVisit, wire.Visit{ID: fmt.Sprintf("v-%d", seq), Staff: "n1", Room: "101", Start: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)}
	default:
		kind, v = wire.KindEPR, wire.EPR{Visit: "v-3", System: "epr", SentAt: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC), Staff: "n1"}
	}
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return kind, b
}

func (o *memOutbox) Pending(ctx context.Context, after int64, limit int) ([]cloudsync.Entry, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	i := sort.Search(len(o.entries), func(i int) bool { return o.entries[i].Seq > after })
	j := min(i+limit, len(o.entries))
	return append([]cloudsync.Entry(nil), o.entries[i:j]...), nil
}

func (o *memOutbox) Acknowledge(ctx context.Context, upTo int64) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	i := sort.Search(len(o.entries), func(i int) bool { return o.entries[i].Seq > upTo })
	o.entries = o.entries[i:] // reslice: copying a million-entry backlog per ack would be the benchmark
	o.acked = max(o.acked, upTo)
	close(o.changed)
	o.changed = make(chan struct{})
	return nil
}

func (o *memOutbox) Acked(ctx context.Context) (int64, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.acked, nil
}

func (o *memOutbox) Stats(ctx context.Context) (cloudsync.OutboxStats, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	st := cloudsync.OutboxStats{Entries: int64(len(o.entries))}
	for _, e := range o.entries {
		st.Bytes += int64(len(e.Body))
	}
	if len(o.entries) > 0 {
		st.Oldest, st.OldestSynced = o.entries[0].At, o.entries[0].ClockSynced
	}
	return st, nil
}

func (o *memOutbox) len() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.entries)
}

// waitAcked waits until the outbox acknowledged seq, failing after a generous bound.
func (o *memOutbox) waitAcked(t testing.TB, seq int64) {
	t.Helper()
	deadline := time.NewTimer(60 * time.Second)
	defer deadline.Stop()
	for {
		o.mu.Lock()
		acked, ch := o.acked, o.changed
		o.mu.Unlock()
		if acked >= seq {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("outbox acknowledged only up to %d of %d", acked, seq)
		}
	}
}

type sim struct {
	*cloudsim.Sim
	db  *sqlitestore.DB
	url string
}

// startSim runs the reference cloud in-process on a loopback port with a real SQLite
// file, through Serve (so the refuse fault really closes the listener).
func startSim(t testing.TB, opt cloudsim.Options) *sim {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	db, err := sqlitestore.Open(ctx, filepath.Join(t.TempDir(), "cloud.db"))
	if err != nil {
		t.Fatal(err)
	}
	if opt.Tokens == nil {
		opt.Tokens = map[string]string{token: gateway, "t0k3n-other": "other-site"}
	}
	s := cloudsim.New(db, opt)
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, "127.0.0.1:0", ready) }()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.SetFault(cloudsim.Fault{})
		cancel()
		<-done
		db.Close()
	})
	return &sim{Sim: s, db: db, url: "http://" + addr}
}

func (s *sim) count(t testing.TB) int64 {
	t.Helper()
	n, err := s.db.Count(context.Background(), gateway)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func client(t testing.TB, url, tok string) *cloudsync.Client {
	t.Helper()
	c, err := cloudsync.NewClient(cloudsync.Config{URL: url, Gateway: gateway, Token: tok, AllowHTTP: true, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// run starts u and stops it at cleanup.
func run(t testing.TB, u *cloudsync.Uploader) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { u.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

package dc09_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vakt/vakt/internal/fakeclock"
	"github.com/vakt/vakt/outbound/dc09"
)

var t0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

const (
	timeout = 10 * time.Second
	backoff = time.Second
)

type harness struct {
	t      *testing.T
	clk    *fakeclock.Clock
	link   *dc09.Link
	events chan event
	mu     sync.Mutex
	states []bool
	stateC chan bool
}

func newHarness(t *testing.T, s *stub, mod func(*dc09.LinkConfig)) *harness {
	h := &harness{t: t, clk: fakeclock.New(t0), events: make(chan event, 256), stateC: make(chan bool, 16)}
	cfg := dc09.LinkConfig{
		Addr: s.addr(), Account: "1234", Receiver: "0", Line: "0",
		Timeout: timeout, MinBackoff: backoff, MaxBackoff: 8 * backoff,
		Clock: h.clk,
		OnLink: func(up bool) {
			h.mu.Lock()
			h.states = append(h.states, up)
			h.mu.Unlock()
			h.stateC <- up
		},
	}
	if mod != nil {
		mod(&cfg)
	}
	l, err := dc09.NewLink(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dc09.SetHook(l, func(e string, d time.Duration) { h.events <- event{e, d} })
	h.link = l
	t.Cleanup(func() { l.Close() })
	return h
}

type event struct {
	name string
	d    time.Duration
}

// await waits until the link armed the named timer and returns its duration.
func (h *harness) await(name string) time.Duration {
	h.t.Helper()
	for {
		select {
		case e := <-h.events:
			if e.name == name {
				return e.d
			}
		case <-time.After(10 * time.Second):
			h.t.Fatalf("link never reported %s", name)
			return 0
		}
	}
}

func (h *harness) drain() {
	for {
		select {
		case <-h.events:
		default:
			return
		}
	}
}

func (h *harness) state() bool {
	h.t.Helper()
	select {
	case up := <-h.stateC:
		return up
	case <-time.After(10 * time.Second):
		h.t.Fatal("no link state report")
		return false
	}
}

type result struct {
	seq int
	err error
}

func (h *harness) send(m dc09.Message) chan result {
	ch := make(chan result, 1)
	go func() {
		seq, err := h.link.Send(context.Background(), m)
		ch <- result{seq, err}
	}()
	return ch
}

func (h *harness) result(ch chan result) result {
	h.t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(10 * time.Second):
		h.t.Fatal("Send did not return")
		return result{}
	}
}

var emergency = dc09.ContactID{Qualifier: dc09.NewEvent, Event: dc09.PersonalEmergency, Group: 1, Zone: 15}.Message()

func TestLinkACK(t *testing.T) {
	s := newStub(t, nil, ack)
	h := newHarness(t, s, nil)
	res := h.send(emergency)
	r := s.next()
	if want := `"ADM-CID"0001R0L0#1234[#1234|1101 01 015]_10:00:00,12-01-2026`; r.body != want {
		t.Errorf("receiver got %q, want %q", r.body, want)
	}
	if got := h.result(res); got.err != nil || got.seq != 1 {
		t.Fatalf("Send = %d, %v; want 1, nil", got.seq, got.err)
	}
	// The next message takes the next sequence number.
	res = h.send(dc09.SIAEvent{Group: 1, Code: "MA", Zone: "015"}.Message())
	if r := s.next(); r.seq != "0002" || !strings.HasPrefix(r.content, "#1234|Nri1/MA015]") {
		t.Errorf("second frame %q", r.body)
	}
	if got := h.result(res); got.err != nil || got.seq != 2 {
		t.Fatalf("Send = %d, %v", got.seq, got.err)
	}
}

func TestLinkSequenceWraps(t *testing.T) {
	s := newStub(t, nil, ack)
	h := newHarness(t, s, nil)
	m := emergency
	m.Seq = 9999
	res := h.send(m)
	s.next()
	h.result(res)
	res = h.send(emergency)
	if r := s.next(); r.seq != "0001" {
		t.Errorf("after 9999 the link sent %s, want 0001", r.seq)
	}
	h.result(res)
}

// An ACK for another sequence or account does not end the wait; the retry after
// the timeout keeps the same sequence number.
func TestLinkACKMustMatchAndRetryKeepsSeq(t *testing.T) {
	s := newStub(t, nil, func(r request) []byte {
		wrongSeq := wire(`"ACK"0042R0L0#1234[]`)
		wrongAcct := wire(`"ACK"` + r.seq + `R0L0#9999[]`)
		return append(wrongSeq, wrongAcct...)
	})
	h := newHarness(t, s, nil)
	res := h.send(emergency)
	first := s.next()
	h.await("ignored") // wrong sequence
	h.await("ignored") // wrong account
	h.clk.Advance(timeout)
	if up := h.state(); up {
		t.Fatal("a timeout reported the link up")
	}
	h.await("backoff")
	s.setPolicy(ack)
	h.clk.Advance(backoff)
	second := s.next()
	if first.seq != "0001" || second.seq != first.seq {
		t.Errorf("retry sent seq %s after %s; want the same", second.seq, first.seq)
	}
	if got := h.result(res); got.err != nil {
		t.Fatal(got.err)
	}
	if up := h.state(); !up {
		t.Fatal("the ACK did not report the link back")
	}
}

// Silence: timeout, retry with the same seq after a growing backoff, then ACK.
func TestLinkSilenceBackoff(t *testing.T) {
	s := newStub(t, nil, silent)
	h := newHarness(t, s, nil)
	res := h.send(emergency)
	waits := []time.Duration{backoff, 2 * backoff, 4 * backoff, 8 * backoff, 8 * backoff}
	seqs := []string{s.next().seq}
	for i, w := range waits {
		h.drain()
		h.clk.Advance(timeout)
		if d := h.await("backoff"); d != w {
			t.Errorf("retry %d waits %v, want %v", i+1, d, w)
		}
		if i == len(waits)-1 {
			s.setPolicy(ack)
		}
		h.clk.Advance(w)
		seqs = append(seqs, s.next().seq)
	}
	if got := h.result(res); got.err != nil {
		t.Fatal(got.err)
	}
	for _, q := range seqs {
		if q != "0001" {
			t.Fatalf("sequence numbers across retries: %v", seqs)
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.states) != 2 || h.states[0] || !h.states[1] {
		t.Errorf("link reports %v, want [lost back]", h.states)
	}
}

func TestLinkNAKResync(t *testing.T) {
	ahead := time.Hour + 7*time.Second // the receiver's clock
	s := newStub(t, nil, nil)
	s.setPolicy(func(r request) []byte {
		now := t0.Add(ahead)
		if d := r.time.Sub(now); d < -time.Second || d > time.Second {
			return nak(now)
		}
		return ack(r)
	})
	h := newHarness(t, s, nil)
	res := h.send(emergency)
	first, second := s.next(), s.next()
	if got := h.result(res); got.err != nil {
		t.Fatal(got.err)
	}
	if !first.time.Equal(t0) || !second.time.Equal(t0.Add(ahead)) {
		t.Errorf("timestamps %v then %v; want ours then the receiver's", first.time, second.time)
	}
	if first.seq != second.seq {
		t.Errorf("resend after NAK changed seq %s → %s", first.seq, second.seq)
	}
	// Later messages keep the learnt offset.
	res = h.send(emergency)
	if r := s.next(); !r.time.Equal(t0.Add(ahead)) {
		t.Errorf("next message stamped %v", r.time)
	}
	h.result(res)
}

func TestLinkDUHGivesUp(t *testing.T) {
	s := newStub(t, nil, duh)
	h := newHarness(t, s, nil)
	res := h.send(emergency)
	s.next()
	got := h.result(res)
	if !errors.Is(got.err, dc09.ErrRejected) {
		t.Fatalf("Send after DUH: %v, want ErrRejected", got.err)
	}
	select {
	case r := <-s.got:
		t.Fatalf("resent after DUH: %q", r.body)
	default:
	}
}

func TestLinkReconnects(t *testing.T) {
	s := newStub(t, nil, func(request) []byte { return closeConn })
	h := newHarness(t, s, nil)
	res := h.send(emergency)
	first := s.next()
	h.await("backoff") // the drop is noticed without waiting for the timeout
	s.setPolicy(ack)
	h.clk.Advance(backoff)
	second := s.next()
	if got := h.result(res); got.err != nil {
		t.Fatal(got.err)
	}
	if first.conn != 1 || second.conn != 2 || first.seq != second.seq {
		t.Errorf("first on conn %d seq %s, second on conn %d seq %s; want a new connection, same seq",
			first.conn, first.seq, second.conn, second.seq)
	}
}

func TestLinkTestSupervision(t *testing.T) {
	const every = time.Minute
	s := newStub(t, nil, ack)
	h := newHarness(t, s, func(c *dc09.LinkConfig) { c.LinkTest = every })
	h.link.Start()
	h.await("linktest")
	h.clk.Advance(every)
	if r := s.next(); r.id != "NULL" || r.content != "]"+stubTime(t0.Add(every)) {
		t.Fatalf("link test frame %q", r.body)
	}
	h.await("linktest")
	s.setPolicy(silent)
	h.clk.Advance(every)
	s.next()
	h.await("timeout")
	h.clk.Advance(timeout)
	if up := h.state(); up {
		t.Fatal("silence did not report the link lost")
	}
	h.await("linktest")
	s.setPolicy(ack)
	h.clk.Advance(every)
	s.next()
	if up := h.state(); !up {
		t.Fatal("the ACK did not report the link back")
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.states) != 2 {
		t.Errorf("reports %v, want exactly [lost back]", h.states)
	}
}

func TestLinkAES(t *testing.T) {
	for _, key := range []string{"0123456789ABCDEF", "0123456789ABCDEF01234567", "0123456789ABCDEF0123456789ABCDEF"} {
		s := newStub(t, []byte(key), func(r request) []byte {
			if !r.encrypted {
				t.Errorf("AES-%d: frame sent in clear: %q", 8*len(key), r.body)
			}
			body := `"*ACK"` + r.seq + `R0L0#` + r.account + `[` + stubEncrypt([]byte(key), "]"+stubTime(t0))
			return wire(body)
		})
		h := newHarness(t, s, func(c *dc09.LinkConfig) { c.Key = []byte(key) })
		res := h.send(emergency)
		r := s.next()
		if want := "#1234|1101 01 015]" + stubTime(t0); r.content != want {
			t.Errorf("AES-%d: decrypted %q, want %q", 8*len(key), r.content, want)
		}
		if got := h.result(res); got.err != nil {
			t.Fatalf("AES-%d: %v", 8*len(key), got.err)
		}
	}
}

func TestLinkCtxEndsRetries(t *testing.T) {
	s := newStub(t, nil, silent)
	h := newHarness(t, s, nil)
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan error, 1)
	go func() { _, err := h.link.Send(ctx, emergency); ch <- err }()
	s.next()
	cancel()
	select {
	case err := <-ch:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Send ignored its context")
	}
}

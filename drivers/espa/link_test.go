package espa

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/vakt/vakt"
	"github.com/vakt/vakt/internal/fakeclock"
)

// burst is one Write of the link, with the clock's time.
type burst struct {
	at time.Time
	b  []byte
}

// peer is the other station, scripted by the test: it feeds bytes to the link and
// reads what the link wrote, framed. Time moves only when the test says so, so
// nothing here depends on the machine's speed.
type peer struct {
	t      *testing.T
	clock  *fakeclock.Clock
	l      *Link
	writes []burst
	read   int // tokens already taken
	toks   []Token
	f      Framer

	calls   []Inbound
	lines   []string // OnLine reports
	failing []string // OnFailing reports
	busy    bool
}

func (p *peer) Write(b []byte) (int, error) {
	p.writes = append(p.writes, burst{p.clock.Now(), bytes.Clone(b)})
	p.f.Feed(b, func(t Token) { p.toks = append(p.toks, t) })
	return len(b), nil
}

func newPeer(t *testing.T, c LinkConfig) *peer {
	t.Helper()
	p := &peer{t: t, clock: fakeclock.New(time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC))}
	c.Clock = p.clock
	c.OnCall = func(in Inbound) { p.calls = append(p.calls, in) }
	c.Busy = func() bool { return p.busy }
	c.OnLine = func(up bool, detail string) { p.lines = append(p.lines, fmt.Sprint(up, " ", detail)) }
	c.OnFailing = func(f bool, detail string) { p.failing = append(p.failing, fmt.Sprint(f, " ", detail)) }
	p.l = NewLink(c)
	if err := p.l.Attach(p); err != nil {
		t.Fatal(err)
	}
	return p
}

func (p *peer) send(b ...byte) {
	p.t.Helper()
	if err := p.l.Feed(b); err != nil {
		p.t.Fatal(err)
	}
}

// advance moves the clock by d and wakes the link if its deadline passed, as the
// serial driver's timer does.
func (p *peer) advance(d time.Duration) {
	p.t.Helper()
	p.clock.Advance(d)
	if dl := p.l.Deadline(); !dl.IsZero() && !p.clock.Now().Before(dl) {
		if err := p.l.Wake(); err != nil {
			p.t.Fatal(err)
		}
	}
}

// toDeadline moves the clock to the link's next deadline and wakes it.
func (p *peer) toDeadline() {
	p.t.Helper()
	dl := p.l.Deadline()
	if dl.IsZero() {
		p.t.Fatal("no deadline armed")
	}
	p.advance(dl.Sub(p.clock.Now()))
}

// next returns the next token the link wrote.
func (p *peer) next() Token {
	p.t.Helper()
	if p.read >= len(p.toks) {
		p.t.Fatalf("link wrote nothing more (all: %v)", p.toks)
	}
	tok := p.toks[p.read]
	p.read++
	return tok
}

func (p *peer) expect(want Token) {
	p.t.Helper()
	got := p.next()
	if got.Type != want.Type || got.Addr != want.Addr || got.Digit != want.Digit ||
		(want.Raw != nil && !bytes.Equal(got.Raw, want.Raw)) {
		p.t.Fatalf("link wrote %v, want %v", got, want)
	}
}

func (p *peer) expectACK()       { p.t.Helper(); p.expect(Token{Type: TokenACK}) }
func (p *peer) expectEOT()       { p.t.Helper(); p.expect(Token{Type: TokenEOT}) }
func (p *peer) expectENQ(a byte) { p.t.Helper(); p.expect(Token{Type: TokenENQ, Addr: a}) }
func (p *peer) expectNAK(d byte) { p.t.Helper(); p.expect(Token{Type: TokenNAK, Digit: d}) }
func (p *peer) expectBlock(raw []byte) {
	p.t.Helper()
	p.expect(Token{Type: TokenBlock, Raw: raw})
}

// quiet: the link wrote nothing not yet read.
func (p *peer) quiet() {
	p.t.Helper()
	if p.read < len(p.toks) {
		p.t.Fatalf("link wrote %v, want nothing", p.toks[p.read:])
	}
}

func (p *peer) selectUs() {
	p.t.Helper()
	p.send(EOT, '1', ENQ, '2', ENQ)
	p.expectACK()
}

func (p *peer) stats(want LinkStats) {
	p.t.Helper()
	if got := p.l.Stats(); got != want {
		p.t.Errorf("stats\n got %+v\nwant %+v", got, want)
	}
}

func call(addr, msg string) []byte {
	return Encode(CallBlock(Call{CallAddress: addr, Message: msg, CallType: CallStandard, Priority: 3}))
}

var zenitel = []byte{0x01, 0x31, 0x02, 0x20, 0x31, 0x1F, 0x35, 0x35, 0x30, 0x1E, 0x32, 0x1F, 0x43, 0x41, 0x4C, 0x4C,
	0x20, 0x4D, 0x45, 0x20, 0x31, 0x30, 0x31, 0x1E, 0x33, 0x1F, 0x33, 0x1E, 0x34, 0x1F, 0x33, 0x1E, 0x35, 0x1F, 0x33,
	0x1E, 0x36, 0x1F, 0x33, 0x03, 0x03}

// The exchange of the protocol notes, we being the slave (address 2); the block is
// acknowledged only after the commit (durable before acknowledged).
func TestLinkSlaveExchangeAckAfterCommit(t *testing.T) {
	p := newPeer(t, LinkConfig{})
	p.send(EOT)      // idle line
	p.send('1', ENQ) // the call system polls itself: not for us
	p.quiet()
	p.send('2', ENQ) // selects us
	p.expectACK()
	p.send(zenitel...)
	if len(p.calls) != 1 {
		t.Fatalf("%d calls handed out", len(p.calls))
	}
	in := p.calls[0]
	if in.Call.CallAddress != "550" || in.Call.Message != "CALL ME 101" || !bytes.Equal(in.Raw, zenitel) || !in.At.Equal(p.clock.Now()) {
		t.Errorf("inbound %+v", in)
	}
	p.advance(time.Second) // the commit takes its time: no ACK meanwhile
	p.quiet()
	in.Commit(nil)
	p.expectACK()
	p.send(EOT)
	p.send('2', ENQ) // a poll of us: nothing to send
	p.expectEOT()
	p.stats(LinkStats{Calls: 1})
}

// A sender that gives up (EOT) before the commit gets no late ACK.
func TestLinkSlaveNoLateAck(t *testing.T) {
	p := newPeer(t, LinkConfig{})
	p.selectUs()
	p.send(call("1", "ROOM 8")...)
	p.send(EOT, '2', ENQ) // gives up, then polls us
	p.expectEOT()         // we answer the poll, not the block
	p.calls[0].Commit(nil)
	p.quiet()
	// A failed commit answers busy.
	p.selectUs()
	p.send(call("1", "ROOM 9")...)
	p.calls[1].Commit(errors.New("disk full"))
	p.expectNAK(NAKBusy)
	p.stats(LinkStats{Busy: 1})
}

func TestLinkSlaveErrorsAndRepeats(t *testing.T) {
	p := newPeer(t, LinkConfig{})
	good := call("1", "ROOM 12")
	bad := bytes.Clone(good)
	bad[len(bad)-1] ^= 0x20
	unknownHeader := Encode(Block{Header: '9', Records: []Record{{ID: "1", Data: "5"}}})
	noAddress := Encode(Block{Header: '1', Records: []Record{{ID: "2", Data: "ROOM 5"}}})
	status := Encode(StatusBlock("123", StatusPaged))

	p.send([]byte("\xff\x00\x13garbage after plug-in")...)
	p.send(good[:6]...) // half a frame; the EOT cuts it
	p.selectUs()
	p.send(bad...)
	p.expectNAK(NAKTransmission)
	p.send(good[:9]...)
	p.send(good...) // SOH starts over
	p.calls[0].Commit(nil)
	p.expectACK()
	p.send(good...) // our ACK was lost: the same block again
	p.expectACK()
	for _, f := range [][]byte{unknownHeader, noAddress} {
		p.send(f...)
		p.expectNAK(NAKInvalid)
	}
	p.send(status...)
	p.expectACK()
	p.send(ENQ) // a bare ENQ: say that again
	p.expectACK()
	if len(p.calls) != 1 {
		t.Fatalf("%d calls, want 1", len(p.calls))
	}
	s := p.l.Stats()
	if s.BadBCC != 1 || s.Calls != 1 || s.Repeats != 1 || s.Invalid != 2 || s.StatusIn != 1 || s.NoiseBytes == 0 {
		t.Errorf("stats %+v", s)
	}
}

func TestLinkSlaveBusy(t *testing.T) {
	p := newPeer(t, LinkConfig{})
	p.busy = true
	p.send(EOT, '1', ENQ, '2', ENQ)
	p.expectNAK(NAKBusy)
	p.busy = false
	p.selectUs()
	p.send(call("1", "ROOM 4")...)
	p.send('2', ENQ) // selected again while the block waits for its commit
	p.expectNAK(NAKBusy)
	p.stats(LinkStats{Busy: 2})
}

// Status blocks go back to the call system when it polls us (Temporary Master).
func TestLinkSlaveSendsWhenPolled(t *testing.T) {
	p := newPeer(t, LinkConfig{})
	paged := StatusBlock("550", StatusPaged)
	var done []error
	if err := p.l.Enqueue(Outbound{Block: paged, Kind: "status", CallAddress: "550", Done: func(err error) { done = append(done, err) }}); err != nil {
		t.Fatal(err)
	}
	p.quiet() // a slave speaks only when polled
	p.send(EOT, '2', ENQ)
	p.expectENQ('1') // we select the call system
	p.send(ACK)
	p.expectBlock(Encode(paged))
	p.send(NAKTransmission, NAK) // garbled: again
	p.expectBlock(Encode(paged))
	if len(done) != 0 {
		t.Fatal("delivered before the ACK")
	}
	p.send(ACK)
	p.expectEOT()
	if !reflect.DeepEqual(done, []error{nil}) {
		t.Errorf("done %v", done)
	}
	p.send(EOT, '2', ENQ) // nothing left
	p.expectEOT()
	p.stats(LinkStats{Sent: 1})
}

// controlStation starts a link in the Control Station role and answers its first
// poll.
func controlStation(t *testing.T, c LinkConfig) *peer {
	t.Helper()
	c.Role = RoleControlStation
	p := newPeer(t, c)
	p.toDeadline() // takes the line at once: EOT, the guard time, the poll
	p.expectEOT()
	p.quiet()
	p.toDeadline()
	p.expectENQ('1')
	return p
}

func TestLinkControlStationPollAndReceive(t *testing.T) {
	p := controlStation(t, LinkConfig{PollInterval: 100 * time.Millisecond})
	p.send(EOT) // nothing to send
	p.advance(99 * time.Millisecond)
	p.quiet() // the poll interval
	p.advance(time.Millisecond)
	p.expectEOT()
	p.toDeadline()
	p.expectENQ('1')
	p.send('2', ENQ) // the call system, now Temporary Master, selects us
	p.expectACK()
	p.send(zenitel...)
	p.calls[0].Commit(nil)
	p.expectACK()
	p.send(EOT) // the line goes back to us: we poll again
	p.toDeadline()
	p.expectEOT()
	p.toDeadline()
	p.expectENQ('1')
	p.stats(LinkStats{Calls: 1, Polls: 3})
}

// selectPeer runs the Control Station's polls until it selects the peer to send.
func (p *peer) untilSelected() {
	p.t.Helper()
	for range 100 {
		p.toDeadline()
		for p.read < len(p.toks) {
			tok := p.next()
			switch {
			case tok.Type == TokenENQ && tok.Addr == '1':
				p.send(EOT) // a poll: nothing to send
			case tok.Type == TokenENQ && tok.Addr == '2':
				p.expectENQ('1')
				return
			}
		}
	}
	p.t.Fatal("never selected the peer")
}

// The protocol's retries: a block NAKed twice ends the transaction with EOT and is
// tried again later; after maxTries transactions it is dropped and reported as not
// delivered; FailAfter failed transactions in a row raise the failure signal, and a
// delivery clears it.
func TestLinkControlStationRetryGiveUpAndFailing(t *testing.T) {
	p := controlStation(t, LinkConfig{FailAfter: 3})
	p.send(EOT)
	var done []error
	page := CallBlock(Call{CallAddress: "200", Message: "ROOM 200", CallType: CallStandard, Priority: 2})
	if err := p.l.Enqueue(Outbound{Block: page, Kind: "page", Done: func(err error) { done = append(done, err) }}); err != nil {
		t.Fatal(err)
	}
	for i := range maxTries {
		p.untilSelected()
		p.send(ACK)
		p.expectBlock(Encode(page))
		p.send(NAKTransmission, NAK)
		p.expectBlock(Encode(page)) // the one retry
		if i%2 == 0 {
			p.send(NAK)
		} else {
			p.toDeadline() // no answer at all
		}
		p.expectEOT() // two failed attempts: give up this transaction
		if len(done) != 0 && i < maxTries-1 {
			t.Fatalf("given up after %d transactions", i+1)
		}
		if want := min(i+1, 3) >= 3; (len(p.failing) > 0) != want {
			t.Fatalf("after %d failed transactions: failing %v", i+1, p.failing)
		}
	}
	if len(done) != 1 || !errors.Is(done[0], ErrNotDelivered) {
		t.Fatalf("done %v", done)
	}
	// The next block gets through: the failure signal clears.
	if err := p.l.Enqueue(Outbound{Block: page, Kind: "page"}); err != nil {
		t.Fatal(err)
	}
	p.untilSelected()
	p.send(ACK)
	p.expectBlock(Encode(page))
	p.send(ACK)
	p.expectEOT()
	if len(p.failing) != 2 || p.failing[0][:4] != "true" || p.failing[1] != "false " {
		t.Errorf("failing reports %q", p.failing)
	}
	s := p.l.Stats()
	if s.Sent != 1 || s.Failed != maxTries || s.Dropped != 1 || s.Queued != 0 {
		t.Errorf("stats %+v", s)
	}
}

// Issue 11: a paging system that ignores a selection arriving in the same burst as
// the EOT takes our page once the guard time separates them, and only its ACK
// reports the page delivered.
func TestLinkGuardTimeSelection(t *testing.T) {
	for _, tc := range []struct {
		name  string
		guard time.Duration
		ok    bool
	}{{"no guard", -1, false}, {"default guard", 0, true}} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPeer(t, LinkConfig{Role: RoleControlStation, GuardTime: tc.guard, ReplyTimeout: time.Second})
			var done []error
			page := CallBlock(Call{CallAddress: "1234", Message: "ROOM 101 CALL", CallType: CallStandard, Priority: 1})
			p.l.Enqueue(Outbound{Block: page, Kind: "page", Done: func(err error) { done = append(done, err) }})
			// The paging system: answers a selection ('2' ENQ '1' ENQ) with ACK,
			// unless the EOT came at the same moment (the same burst or no pause).
			var lastEOT time.Time
			answered := 0
			script := func() {
				for ; answered < len(p.writes); answered++ {
					w := p.writes[answered]
					i := bytes.LastIndexByte(w.b, EOT)
					if i >= 0 {
						lastEOT = w.at
					}
					if bytes.HasSuffix(w.b, []byte{'2', ENQ, '1', ENQ}) {
						if i >= 0 || w.at.Equal(lastEOT) {
							continue // ignored
						}
						p.send(ACK)
					}
					if w.b[0] == SOH {
						p.send(ACK)
					}
				}
			}
			for range 10 {
				p.toDeadline()
				script()
				if len(done) > 0 {
					break
				}
			}
			if tc.ok {
				if !reflect.DeepEqual(done, []error{nil}) {
					t.Fatalf("page not delivered with the guard time: %v; writes %v", done, p.writes)
				}
				// The EOT and the selection were apart by the guard time.
				for i, w := range p.writes {
					if bytes.Equal(w.b, []byte{'2', ENQ, '1', ENQ}) {
						if gap := w.at.Sub(p.writes[i-1].at); p.writes[i-1].b[0] != EOT || gap != DefaultGuardTime {
							t.Errorf("selection %v after %q", gap, p.writes[i-1].b)
						}
					}
				}
			} else if len(done) > 0 && done[0] == nil {
				t.Fatalf("the scripted system took a selection in the EOT's burst: %v", p.writes)
			}
		})
	}
}

// The specification's recovery: the peer holds the line and goes quiet; after the
// recovery time, not before, the Control Station takes the line back.
func TestLinkControlStationRecovery(t *testing.T) {
	p := controlStation(t, LinkConfig{Recovery: 10 * time.Second})
	p.send('2', ENQ)
	p.expectACK()
	p.advance(10*time.Second - time.Millisecond)
	p.quiet()
	p.advance(time.Millisecond)
	p.toDeadline()
	p.expectEOT()
	p.toDeadline()
	p.expectENQ('1')
}

func TestLinkSilentLine(t *testing.T) {
	p := controlStation(t, LinkConfig{MissedPolls: 3})
	for range 3 {
		p.toDeadline() // no answer
		p.toDeadline()
		p.expectEOT()
		p.toDeadline()
		p.expectENQ('1')
	}
	if len(p.lines) != 1 || p.lines[0] != "false no answer to 3 polls" {
		t.Fatalf("line reports %q", p.lines)
	}
	p.send(EOT)
	if len(p.lines) != 2 || p.lines[1] != "true " {
		t.Fatalf("line reports %q", p.lines)
	}

	s := newPeer(t, LinkConfig{Silence: time.Minute})
	s.advance(time.Minute)
	s.send(EOT)
	if len(s.lines) != 2 || s.lines[0] != "false nothing received for 1m0s" || s.lines[1] != "true " {
		t.Fatalf("slave line reports %q", s.lines)
	}
}

func TestLinkQueueBound(t *testing.T) {
	p := newPeer(t, LinkConfig{MaxQueue: 2})
	var dropped []error
	st := Outbound{Block: StatusBlock("1", StatusPaged), Kind: "status", Done: func(err error) { dropped = append(dropped, err) }}
	pg := Outbound{Block: CallBlock(Call{CallAddress: "1"}), Kind: "page"}
	if p.l.Enqueue(st) != nil || p.l.Enqueue(pg) != nil || p.l.Enqueue(pg) != nil {
		t.Fatal("enqueue refused")
	}
	if len(dropped) != 1 || !errors.Is(dropped[0], ErrNotDelivered) {
		t.Errorf("status not dropped for a page: %v", dropped)
	}
	if err := p.l.Enqueue(pg); !errors.Is(err, vakt.ErrBusy) {
		t.Errorf("full queue of pages: %v", err)
	}
	// A detached link writes nothing and keeps its queue.
	p.l.Detach()
	p.send(EOT, '2', ENQ)
	p.quiet()
	if s := p.l.Stats(); s.Queued != 2 {
		t.Errorf("stats %+v", s)
	}
}

// BenchmarkLinkBlock measures the link's own cost for one received call block: Feed,
// the OnCall hand-off, Commit and the ACK written (no line, no commit latency).
func BenchmarkLinkBlock(b *testing.B) {
	var out bytes.Buffer
	var in Inbound
	l := NewLink(LinkConfig{Clock: fakeclock.New(time.Now()), OnCall: func(i Inbound) { in = i }})
	l.Attach(&out)
	l.Feed([]byte{EOT, '1', ENQ, '2', ENQ})
	frames := [][]byte{call("1", "ROOM 1"), call("1", "ROOM 2")}
	n := 0
	for b.Loop() {
		out.Reset()
		l.Feed(frames[n%2])
		in.Commit(nil)
		if out.Len() != 1 || out.Bytes()[0] != ACK {
			b.Fatalf("wrote %q", out.Bytes())
		}
		n++
	}
	b.ReportMetric(float64(len(frames[0])), "bytes/block")
}

// The line is lost while a call waits for its commit: on the new line the sender's
// repeat is taken as a new call, and the old commit writes nothing.
func TestLinkReattachForgetsUncommitted(t *testing.T) {
	p := newPeer(t, LinkConfig{})
	p.selectUs()
	p.send(call("1", "ROOM 3")...)
	p.l.Detach()
	if err := p.l.Attach(p); err != nil {
		t.Fatal(err)
	}
	p.selectUs() // not busy
	p.send(call("1", "ROOM 3")...)
	if len(p.calls) != 2 {
		t.Fatalf("%d calls", len(p.calls))
	}
	p.calls[0].Commit(nil) // late, from the lost line
	p.quiet()
	p.calls[1].Commit(nil)
	p.expectACK()
}

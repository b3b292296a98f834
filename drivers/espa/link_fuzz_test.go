package espa

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/vakt/vakt/internal/fakeclock"
)

// Fuzz opcodes: bytes the link never sees; every other byte is fed to it.
const (
	opWake      = 0xF0 // move the clock to the link's deadline and wake it
	opTick      = 0xF1 // move the clock 7 ms
	opCommit    = 0xF2 // commit the oldest call handed out
	opFail      = 0xF3 // fail that commit
	opPage      = 0xF4 // queue a page
	opReattach  = 0xF5 // the line goes and comes back
	opBusy      = 0xF6 // toggle the receiver's busy flag
	opBigSplit  = 0xF7 // feed what follows up to the next opcode in one piece
	firstOpcode = opWake
)

type fuzzWire struct {
	t           *testing.T
	uncommitted *int
	n           int
}

func (w *fuzzWire) Write(b []byte) (int, error) {
	// Durable before acknowledged: never an ACK while a call waits for its commit.
	if *w.uncommitted > 0 && bytes.Equal(b, []byte{ACK}) {
		w.t.Fatalf("ACK written while %d calls are not committed", *w.uncommitted)
	}
	w.n += len(b)
	return len(b), nil
}

// FuzzLink drives a Link in either role with arbitrary line bytes interleaved with
// clock ticks, commits, pages and reattachments, on the fake clock: it must not
// panic, must not grow without bound, must never ACK a call before its commit, and
// must report each page's outcome at most once. The first byte picks the role. Seeds:
// here and testdata/fuzz/FuzzLink.
func FuzzLink(f *testing.F) {
	f.Add([]byte{0, EOT, '1', ENQ, '2', ENQ})
	f.Add(append(append([]byte{0, EOT, '1', ENQ, '2', ENQ}, zenitel...), opCommit, EOT, '2', ENQ))
	f.Add(append(append([]byte{0, EOT, '2', ENQ}, zenitel...), EOT, opCommit, opPage, EOT, '2', ENQ, ACK, ACK))
	f.Add([]byte{1, opWake, opWake, EOT, opPage, opWake, opWake, ACK, '1', NAK, NAK, opWake, opWake, opWake, ACK, ACK})
	f.Add(append(append([]byte{1, opWake, opWake, '2', ENQ}, zenitel...), opTick, opFail, opReattach, opWake, opCommit))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		clock := fakeclock.New(time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC))
		var calls, stale []Inbound
		uncommitted := 0
		busy := false
		outcomes := map[int]int{}
		c := LinkConfig{Clock: clock, MaxQueue: 8, Silence: time.Second,
			OnCall: func(in Inbound) { calls = append(calls, in); uncommitted++ },
			Busy:   func() bool { return busy },
			OnLine: func(bool, string) {}, OnFailing: func(bool, string) {},
		}
		if data[0]%2 == 1 {
			c.Role = RoleControlStation
		}
		l := NewLink(c)
		w := &fuzzWire{t: t, uncommitted: &uncommitted}
		l.Attach(w)
		pages := 0
		data = data[1:]
		for i := 0; i < len(data); i++ {
			b := data[i]
			switch b {
			case opWake:
				if d := l.Deadline(); !d.IsZero() {
					clock.Advance(d.Sub(clock.Now()))
				}
				l.Wake()
			case opTick:
				clock.Advance(7 * time.Millisecond)
				l.Wake()
			case opCommit, opFail:
				if len(stale) > 0 { // a late commit from before the line was lost
					stale[0].Commit(nil)
					stale = stale[1:]
				} else if len(calls) > 0 {
					in := calls[0]
					calls = calls[1:]
					uncommitted--
					var err error
					if b == opFail {
						err = errors.New("disk full")
					}
					in.Commit(err)
					in.Commit(err) // a second call is harmless
				}
			case opPage:
				n := pages
				pages++
				l.Enqueue(Outbound{Block: CallBlock(Call{CallAddress: "1234", Message: "ROOM 1"}), Kind: "page",
					Done: func(error) { outcomes[n]++ }})
			case opReattach:
				// The line is lost: outstanding calls will not be answered on the
				// new line (their senders send them again).
				l.Detach()
				stale = append(stale, calls...)
				calls, uncommitted = nil, 0
				l.Attach(w)
			case opBusy:
				busy = !busy
			case opBigSplit:
				j := i + 1
				for j < len(data) && data[j] < firstOpcode {
					j++
				}
				l.Feed(data[i+1 : j])
				i = j - 1
			default:
				l.Feed([]byte{b})
			}
			if len(calls) > 1 {
				t.Fatalf("%d calls handed out at once", len(calls))
			}
			l.mu.Lock()
			if len(l.queue) > c.MaxQueue || cap(l.f.buf) > MaxBlock || len(l.later) != 0 {
				t.Fatalf("link grew: queue %d framer %d later %d", len(l.queue), cap(l.f.buf), len(l.later))
			}
			l.mu.Unlock()
		}
		for n, k := range outcomes {
			if k != 1 {
				t.Fatalf("page %d reported %d times", n, k)
			}
		}
		// Every byte written is an answer to something: bounded by what came in.
		if w.n > 64*(len(data)+1)*MaxBlock {
			t.Fatalf("wrote %d bytes for %d in", w.n, len(data))
		}
		_ = l.Stats()
	})
}

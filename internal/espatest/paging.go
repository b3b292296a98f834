package espatest

import (
	"os"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/vakt/vakt/drivers/espa"
)

// PagingSystem is a scripted paging system (a DECT or pager base station) on the
// master side of a pseudo-terminal, selected by the gateway as Control Station. It
// answers by itself, as the real one does: EOT to a poll, ACK to a selection, ACK
// to each block. Like some systems in the field (issue 11), when Strict it ignores a
// selection that arrives in the same burst as the EOT before it: one that was read
// less than Gap after the EOT's read.
type PagingSystem struct {
	t             testing.TB
	Master, Slave *os.File
	SlavePath     string
	// Address is the paging system's station address; Gateway the Control
	// Station's, which the gateway sends first in a selection.
	Address, Gateway byte
	// Gap is the least pause between the EOT and the selection that Strict wants.
	Gap time.Duration

	mu      sync.Mutex
	strict  bool
	hold    bool
	ignored int
	done    chan struct{}
	once    sync.Once

	// Blocks receives every block the gateway sent, as it is read. With Hold the
	// ACK waits for Release.
	Blocks chan espa.Token
	// Ignored receives a value for each selection ignored as too close to its EOT.
	Ignored chan struct{}
	release chan struct{}
}

// NewPagingSystem opens a pty pair and starts answering what the gateway writes.
// Strict starts on: selections in the EOT's burst are ignored.
func NewPagingSystem(t testing.TB, address, gateway byte) *PagingSystem {
	t.Helper()
	m, s, err := pty.Open()
	if err != nil {
		t.Fatalf("pty: %v", err)
	}
	if err := makeRaw(s); err != nil {
		t.Fatal(err)
	}
	ps := &PagingSystem{t: t, Master: m, Slave: s, SlavePath: s.Name(), Address: address, Gateway: gateway,
		Gap: 5 * time.Millisecond, strict: true, done: make(chan struct{}),
		Blocks: make(chan espa.Token, 64), Ignored: make(chan struct{}, 64), release: make(chan struct{}, 64)}
	go ps.run()
	t.Cleanup(ps.Close)
	return ps
}

// SetStrict turns the same-burst rule on or off (off: any selection is answered).
func (ps *PagingSystem) SetStrict(on bool) {
	ps.mu.Lock()
	ps.strict = on
	ps.mu.Unlock()
}

// SetHold makes each block's ACK wait for Release.
func (ps *PagingSystem) SetHold(on bool) {
	ps.mu.Lock()
	ps.hold = on
	ps.mu.Unlock()
}

// Release lets one held ACK go.
func (ps *PagingSystem) Release() { ps.release <- struct{}{} }

// IgnoredCount is how many selections were ignored so far.
func (ps *PagingSystem) IgnoredCount() int {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return ps.ignored
}

// run reads the line and answers. Each read is timestamped: the EOT's read time
// and the selection's decide whether they came in one burst.
func (ps *PagingSystem) run() {
	var (
		f       espa.Framer
		buf     = make([]byte, 256)
		eotAt   time.Time
		prevENQ byte // the address of the ENQ just before, 0 if the last token was not one
	)
	for {
		n, err := ps.Master.Read(buf)
		at := time.Now()
		f.Feed(buf[:n], func(tok espa.Token) {
			addr := prevENQ
			prevENQ = 0
			switch tok.Type {
			case espa.TokenEOT:
				eotAt = at
			case espa.TokenENQ:
				if tok.Addr != ps.Address {
					prevENQ = tok.Addr
					return
				}
				if addr != ps.Gateway { // a poll: nothing to send
					ps.write(espa.EOT)
					return
				}
				ps.mu.Lock()
				strict := ps.strict
				tooSoon := !eotAt.IsZero() && at.Sub(eotAt) < ps.Gap
				if strict && tooSoon {
					ps.ignored++
				}
				ps.mu.Unlock()
				if strict && tooSoon {
					select {
					case ps.Ignored <- struct{}{}:
					default:
					}
					return
				}
				ps.write(espa.ACK)
			case espa.TokenBlock:
				select {
				case ps.Blocks <- tok:
				default:
				}
				ps.mu.Lock()
				hold := ps.hold
				ps.mu.Unlock()
				if hold {
					select {
					case <-ps.release:
					case <-ps.done:
						return
					}
				}
				ps.write(espa.ACK)
			}
		})
		if err != nil {
			return
		}
	}
}

func (ps *PagingSystem) write(b ...byte) {
	// The test may have ended and closed the line; nothing to report then.
	_, _ = ps.Master.Write(b)
}

// Close unplugs the device.
func (ps *PagingSystem) Close() {
	ps.once.Do(func() {
		close(ps.done)
		ps.Master.Close()
		ps.Slave.Close()
	})
}

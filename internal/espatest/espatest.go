// Package espatest is a scripted nurse call system for tests: the master side of a
// pseudo-terminal whose slave side the gateway opens through tarm/serial, the real
// serial code path. It frames what the gateway writes with the production framer.
package espatest

import (
	"os"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/vakt/vakt/drivers/espa"
	"golang.org/x/sys/unix"
)

// Wait bounds every positive wait: nothing should take more than milliseconds.
const Wait = 10 * time.Second

// CallSystem is the call system's end of the line.
type CallSystem struct {
	t testing.TB
	// Master is the call system's side; Slave stays open as a plugged-in device
	// would (with no slave open, reads on the master fail). SlavePath is the device
	// the gateway opens.
	Master, Slave *os.File
	SlavePath     string

	mu     sync.Mutex
	toks   []espa.Token // what the gateway wrote, framed
	more   chan struct{}
	closed bool
}

// New opens a pty pair and starts reading what the gateway writes.
func New(t testing.TB) *CallSystem {
	t.Helper()
	m, s, err := pty.Open()
	if err != nil {
		t.Fatalf("pty: %v", err)
	}
	// A real UART never echoes; a fresh pty does until someone sets it raw (the
	// gateway does when it opens the port, but a child process may not have yet).
	if err := makeRaw(s); err != nil {
		t.Fatal(err)
	}
	cs := &CallSystem{t: t, Master: m, Slave: s, SlavePath: s.Name(), more: make(chan struct{}, 1)}
	// The master ignores read deadlines: read it from a goroutine, so the gateway's
	// writes never stall on the test.
	go func() {
		var f espa.Framer
		buf := make([]byte, 256)
		for {
			n, err := m.Read(buf)
			f.Feed(buf[:n], func(tok espa.Token) {
				cs.mu.Lock()
				cs.toks = append(cs.toks, tok)
				cs.mu.Unlock()
				cs.poke()
			})
			if err != nil {
				cs.mu.Lock()
				cs.closed = true
				cs.mu.Unlock()
				cs.poke()
				return
			}
		}
	}()
	t.Cleanup(cs.Close)
	return cs
}

func (cs *CallSystem) poke() {
	select {
	case cs.more <- struct{}{}:
	default:
	}
}

// Send writes bytes on the line.
func (cs *CallSystem) Send(b ...byte) {
	cs.t.Helper()
	if _, err := cs.Master.Write(b); err != nil {
		cs.t.Fatalf("call system write: %v", err)
	}
}

// Next returns the next token the gateway wrote, failing after Wait.
func (cs *CallSystem) Next() espa.Token {
	cs.t.Helper()
	deadline := time.After(Wait)
	for {
		cs.mu.Lock()
		if len(cs.toks) > 0 {
			tok := cs.toks[0]
			cs.toks = cs.toks[1:]
			cs.mu.Unlock()
			return tok
		}
		closed := cs.closed
		cs.mu.Unlock()
		if closed {
			cs.t.Fatal("call system: line closed")
		}
		select {
		case <-cs.more:
		case <-deadline:
			cs.t.Fatal("call system: nothing from the gateway")
		}
	}
}

// NextWithin returns the next token the gateway writes within d, or false if it
// writes none by then (a call system that repeats an unanswered selection, as real
// ones do after their reply timeout).
func (cs *CallSystem) NextWithin(d time.Duration) (espa.Token, bool) {
	deadline := time.After(d)
	for {
		cs.mu.Lock()
		if len(cs.toks) > 0 {
			tok := cs.toks[0]
			cs.toks = cs.toks[1:]
			cs.mu.Unlock()
			return tok, true
		}
		closed := cs.closed
		cs.mu.Unlock()
		if closed {
			return espa.Token{}, false
		}
		select {
		case <-cs.more:
		case <-deadline:
			return espa.Token{}, false
		}
	}
}

// Expect fails unless the next token matches want's type, address and digit (and
// its raw bytes, when want has them).
func (cs *CallSystem) Expect(want espa.Token) espa.Token {
	cs.t.Helper()
	got := cs.Next()
	if got.Type != want.Type || got.Addr != want.Addr || got.Digit != want.Digit ||
		(want.Raw != nil && string(got.Raw) != string(want.Raw)) {
		cs.t.Fatalf("gateway sent %v, want %v", got, want)
	}
	return got
}

// ExpectType fails unless the next token is of one of types.
func (cs *CallSystem) ExpectType(types ...espa.TokenType) espa.Token {
	cs.t.Helper()
	tok := cs.Next()
	for _, typ := range types {
		if tok.Type == typ {
			return tok
		}
	}
	cs.t.Fatalf("gateway sent %v, want one of %v", tok, types)
	return tok
}

// Quiet asserts that the gateway writes nothing within window — the only negative
// check, for answers that would be written at once if they were wrong.
func (cs *CallSystem) Quiet(window time.Duration) {
	cs.t.Helper()
	select {
	case <-cs.more:
	case <-time.After(window):
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if len(cs.toks) > 0 {
		cs.t.Fatalf("gateway sent %v, want nothing", cs.toks)
	}
}

// Silent reports whether the gateway has written nothing not yet read.
func (cs *CallSystem) Silent() bool {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return len(cs.toks) == 0
}

// Close unplugs the device.
func (cs *CallSystem) Close() {
	cs.Master.Close()
	cs.Slave.Close()
}

// makeRaw puts a terminal in raw mode, as cfmakeraw(3) does.
func makeRaw(f *os.File) error {
	tio, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	if err != nil {
		return err
	}
	tio.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	tio.Oflag &^= unix.OPOST
	tio.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	tio.Cflag &^= unix.CSIZE | unix.PARENB
	tio.Cflag |= unix.CS8
	return unix.IoctlSetTermios(int(f.Fd()), unix.TCSETS, tio)
}

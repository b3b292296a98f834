package serial

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sync/atomic"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/vakt/vakt"
	"github.com/vakt/vakt/drivers/espa"
	"github.com/vakt/vakt/internal/espatest"
)

// wait bounds every positive wait: the machines running these tests are shared and
// loaded, and nothing here should take more than milliseconds when all is well.
const wait = 10 * time.Second

// quietWindow is the only negative check: "nothing arrives within it". It is used
// where a wrong answer would be written at once (microseconds on a pty), so a short
// window is enough to catch it.
const quietWindow = 50 * time.Millisecond

// callSystem is a scripted nurse call system on the master side of a pty
// (internal/espatest), with the shorthands these tests use.
type callSystem struct {
	*espatest.CallSystem
	t     *testing.T
	slave string
}

func newCallSystem(t *testing.T) *callSystem {
	t.Helper()
	cs := espatest.New(t)
	return &callSystem{CallSystem: cs, t: t, slave: cs.SlavePath}
}

func (cs *callSystem) send(b ...byte)                 { cs.t.Helper(); cs.Send(b...) }
func (cs *callSystem) next() espa.Token               { cs.t.Helper(); return cs.Next() }
func (cs *callSystem) expect(w espa.Token) espa.Token { cs.t.Helper(); return cs.Expect(w) }
func (cs *callSystem) expectACK()                     { cs.t.Helper(); cs.expect(espa.Token{Type: espa.TokenACK}) }
func (cs *callSystem) expectEOT()                     { cs.t.Helper(); cs.expect(espa.Token{Type: espa.TokenEOT}) }
func (cs *callSystem) expectNAK(d byte) {
	cs.t.Helper()
	cs.expect(espa.Token{Type: espa.TokenNAK, Digit: d})
}
func (cs *callSystem) expectENQ(a byte) {
	cs.t.Helper()
	cs.expect(espa.Token{Type: espa.TokenENQ, Addr: a})
}
func (cs *callSystem) expectBlock(raw []byte) {
	cs.t.Helper()
	cs.expect(espa.Token{Type: espa.TokenBlock, Raw: raw})
}

// quiet asserts that the gateway writes nothing within quietWindow.
func (cs *callSystem) quiet() { cs.t.Helper(); cs.Quiet(quietWindow) }

// selectGateway runs the opening of the notes' exchange: idle EOT, the call system
// polls itself ('1' ENQ, no answer expected), then selects the gateway.
func (cs *callSystem) selectGateway() {
	cs.t.Helper()
	cs.send(espa.EOT, '1', espa.ENQ, '2', espa.ENQ)
	cs.expectACK()
}

// close unplugs the device.
func (cs *callSystem) close() { cs.Close() }

// recorder is the test's Ingester: it records events and commits them from another
// goroutine, as the engine does.
type recorder struct {
	ingested  chan vakt.Event // call events, when Ingest is called
	committed chan vakt.Event // call events, after done(nil)
	tech      chan vakt.Event // technical events and check-ins, after done(nil)

	hold    atomic.Bool   // withhold done for calls until release
	release chan struct{} // one receive per held commit
	busy    atomic.Bool   // Busy() reports true
	refuse  atomic.Bool   // Ingest returns ErrBusy
	fail    atomic.Bool   // done(err)
}

func newRecorder() *recorder {
	return &recorder{
		ingested:  make(chan vakt.Event, 1000),
		committed: make(chan vakt.Event, 1000),
		tech:      make(chan vakt.Event, 1000),
		release:   make(chan struct{}),
	}
}

func (r *recorder) Busy() bool { return r.busy.Load() }

func (r *recorder) Ingest(ev vakt.Event, done func(error)) error {
	technical := ev.Kind.Technical() || ev.Kind == vakt.EventCheckIn
	if technical {
		go func() {
			r.tech <- ev
			done(nil)
		}()
		return nil
	}
	if r.refuse.Load() {
		return vakt.ErrBusy
	}
	r.ingested <- ev
	hold, fail := r.hold.Load(), r.fail.Load()
	go func() {
		if hold {
			<-r.release
		}
		if fail {
			done(fmt.Errorf("disk full"))
			return
		}
		r.committed <- ev
		done(nil)
	}()
	return nil
}

func recv[T any](t *testing.T, c <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-c:
		return v
	case <-time.After(wait):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// techEvent waits for a technical event of the given kind, skipping others.
func techEvent(t *testing.T, r *recorder, kind vakt.EventKind) vakt.Event {
	t.Helper()
	deadline := time.After(wait)
	for {
		select {
		case ev := <-r.tech:
			if ev.Kind == kind {
				return ev
			}
		case <-deadline:
			t.Fatalf("timed out waiting for %s", kind)
		}
	}
}

// ingestedN checks how many calls reached the ingester in all.
func ingestedN(t *testing.T, r *recorder, want int) {
	t.Helper()
	if n := len(r.ingested); n != want {
		t.Fatalf("%d calls ingested, want %d", n, want)
	}
}

func testMapper() espa.Mapper {
	return espa.Mapper{
		Rules: []espa.Rule{
			{CallAddress: "550", Text: regexp.MustCompile(`CALL ME (\d+)`), Transmitter: "room-$1"},
			{Text: regexp.MustCompile(`ROOM (\d+)`), Transmitter: "room-$1"},
		},
		Fallback: "nurse-call-line",
	}
}

// startPort starts a port on device and waits until it has opened it (its check-in).
func startPort(t *testing.T, o Options) (*Port, *recorder) {
	t.Helper()
	rec := newRecorder()
	o.Name = "test"
	o.Mapper = testMapper()
	if o.ReplyTimeout == 0 {
		o.ReplyTimeout = time.Second
	}
	p, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Stop() })
	techEvent(t, rec, vakt.EventCheckIn)
	return p, rec
}

func callFrame(callAddress, msg string, extra ...espa.Record) []byte {
	b := espa.CallBlock(espa.Call{CallAddress: callAddress, Message: msg, CallType: espa.CallStandard, Priority: 3})
	b.Records = append(b.Records, extra...)
	return espa.Encode(b)
}

// zenitel is test vector 1 (space after STX, BCC equal to ETX).
var zenitel = []byte{0x01, 0x31, 0x02, 0x20, 0x31, 0x1F, 0x35, 0x35, 0x30, 0x1E, 0x32, 0x1F, 0x43, 0x41, 0x4C, 0x4C,
	0x20, 0x4D, 0x45, 0x20, 0x31, 0x30, 0x31, 0x1E, 0x33, 0x1F, 0x33, 0x1E, 0x34, 0x1F, 0x33, 0x1E, 0x35, 0x1F, 0x33,
	0x1E, 0x36, 0x1F, 0x33, 0x03, 0x03}

func withSymlink(t *testing.T, target string) string {
	t.Helper()
	link := filepath.Join(t.TempDir(), "ttyUSB-espa")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	return link
}

func ptyPair() (m, s *os.File, err error) { return pty.Open() }

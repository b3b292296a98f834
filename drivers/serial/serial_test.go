package serial

import (
	"bytes"
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vakt/vakt"
	"github.com/vakt/vakt/drivers/espa"
)

func TestNewValidates(t *testing.T) {
	good := func() Options {
		return Options{Device: "/dev/ttyUSB0", Mapper: espa.Mapper{Fallback: "line"}}
	}
	tests := []struct {
		name   string
		change func(*Options)
		want   string
	}{
		{"defaults", func(*Options) {}, ""},
		{"8N1 control station", func(o *Options) {
			o.DataBits, o.Parity, o.StopBits, o.Role, o.Baud = 8, "none", 1, RoleControlStation, 115200
		}, ""},
		{"no device", func(o *Options) { o.Device = "" }, "device"},
		{"baud", func(o *Options) { o.Baud = 14400 }, "baud 14400"},
		{"slow baud", func(o *Options) { o.Baud = 110 }, "baud 110"},
		{"data bits", func(o *Options) { o.DataBits = 6 }, "data bits 6"},
		{"parity", func(o *Options) { o.Parity = "mark" }, "parity"},
		{"stop bits", func(o *Options) { o.StopBits = 3 }, "stop bits 3"},
		{"role", func(o *Options) { o.Role = "master" }, "role"},
		{"address", func(o *Options) { o.Address = 'A' }, "address"},
		{"same address", func(o *Options) { o.Address, o.Peer = '1', '1' }, "both"},
		{"fallback", func(o *Options) { o.Mapper.Fallback = "" }, "fallback"},
	}
	for _, tt := range tests {
		o := good()
		tt.change(&o)
		_, err := New(o)
		if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("%s: got %v, want %q", tt.name, err, tt.want)
		}
	}
	if _, err := ParseAddress("12"); err == nil {
		t.Error("ParseAddress accepted 12")
	}
	if a, err := ParseAddress("2"); err != nil || a != '2' {
		t.Error("ParseAddress(2)")
	}
}

// The exchange of the protocol notes, with the gateway as slave (address 2).
func TestSlaveExchange(t *testing.T) {
	cs := newCallSystem(t)
	p, rec := startPort(t, Options{Device: cs.slave})

	cs.send(espa.EOT)      // idle line
	cs.send('1', espa.ENQ) // the call system polls itself: not for us
	cs.send('2', espa.ENQ) // selects the gateway
	cs.expectACK()         // the first thing we say: nothing answered the other poll
	cs.send(zenitel...)    // call to pager
	cs.expectACK()         // after the commit
	cs.send(espa.EOT)      // end of transaction
	cs.send('2', espa.ENQ) // a poll of us: nothing to send
	cs.expectEOT()

	ev := recv(t, rec.committed, "event")
	if ev.Transmitter != "room-101" || ev.Kind != vakt.EventCall || ev.Priority != vakt.PriorityNormal ||
		ev.Text != "CALL ME 101" || ev.Source != "espa:test" || !bytes.Equal(ev.Raw, zenitel) || ev.ReceivedAt.IsZero() {
		t.Errorf("event %+v", ev)
	}
	ingestedN(t, rec, 1)
	if s := p.Stats(); s.Calls != 1 || !s.Open || !s.Online {
		t.Errorf("stats %+v", s)
	}

	// And the other way: a page, delivered only once the peer acknowledged it.
	done := make(chan error, 1)
	a := vakt.Alarm{ID: "a-9", Transmitter: "room-101", Priority: vakt.PriorityEmergency, State: vakt.StateOffered}
	if err := p.PageResult(a, "1234", "ROOM 101", func(err error) { done <- err }); err != nil {
		t.Fatal(err)
	}
	cs.send(espa.EOT, '2', espa.ENQ)
	cs.expectENQ('1')
	cs.send(espa.ACK)
	cs.expectBlock(espa.Encode(espa.CallBlock(espa.Call{CallAddress: "1234", Message: "ROOM 101", CallType: espa.CallStandard, Priority: 1})))
	select {
	case err := <-done:
		t.Fatalf("page reported %v before the ACK", err)
	default:
	}
	cs.send(espa.ACK)
	cs.expectEOT()
	if err := recv(t, done, "page delivered"); err != nil {
		t.Errorf("page: %v", err)
	}
}

func TestControlStationPollAndReceive(t *testing.T) {
	cs := newCallSystem(t)
	p, rec := startPort(t, Options{Device: cs.slave, Role: RoleControlStation, PollInterval: 20 * time.Millisecond})

	cs.expectEOT()
	cs.expectENQ('1') // poll
	cs.send(espa.EOT) // nothing to send
	cs.expectEOT()
	cs.expectENQ('1')
	cs.send('2', espa.ENQ) // the call system, now Temporary Master, selects us
	cs.expectACK()
	cs.send(zenitel...)
	cs.expectACK()
	cs.send(espa.EOT) // the line goes back to the gateway, which polls again
	cs.expectEOT()
	cs.expectENQ('1')
	if ev := recv(t, rec.committed, "call"); ev.Transmitter != "room-101" {
		t.Errorf("event %+v", ev)
	}
	if s := p.Stats(); s.Polls < 3 || s.Calls != 1 {
		t.Errorf("stats %+v", s)
	}
}

// The link's timers run on the port's clock: nobody answers the polls, the line goes
// silent (a technical alarm), and an answer checks it in again.
func TestControlStationSilentLine(t *testing.T) {
	cs := newCallSystem(t)
	_, rec := startPort(t, Options{Device: cs.slave, Role: RoleControlStation, PollInterval: 10 * time.Millisecond,
		ReplyTimeout: 30 * time.Millisecond, MissedPolls: 3})
	ev := techEvent(t, rec, vakt.EventOffline)
	if ev.Transmitter != "nurse-call-line" || !strings.Contains(ev.Text, "no answer to 3 polls") {
		t.Errorf("offline event %+v", ev)
	}
	for {
		if tok := cs.next(); tok.Type == espa.TokenENQ && tok.Addr == '1' {
			cs.send(espa.EOT)
			break
		}
	}
	techEvent(t, rec, vakt.EventCheckIn)
}

// R4: the adapter is unplugged (the device path disappears) and comes back: a
// technical alarm, and the port reopens (within 2 s: TestReopenBound).
func TestUnplugReplug(t *testing.T) {
	cs := newCallSystem(t)
	link := withSymlink(t, cs.slave)
	p, rec := startPort(t, Options{Device: link})

	cs.selectGateway()
	cs.send(callFrame("1", "ROOM 1")...)
	cs.expectACK()
	cs.send(espa.EOT)
	recv(t, rec.committed, "first call")

	// Unplug.
	if err := os.Remove(link); err != nil {
		t.Fatal(err)
	}
	cs.close()
	ev := techEvent(t, rec, vakt.EventOffline)
	if ev.Transmitter != "nurse-call-line" || ev.Source != "espa:test" {
		t.Errorf("offline event %+v", ev)
	}
	if p.Stats().Open {
		t.Error("port still open")
	}

	// Plug in again: another pty behind the same path.
	cs2 := newCallSystem(t)
	if err := os.Symlink(cs2.slave, link); err != nil {
		t.Fatal(err)
	}
	techEvent(t, rec, vakt.EventCheckIn)
	cs2.selectGateway()
	cs2.send(callFrame("1", "ROOM 2")...)
	cs2.expectACK()
	if ev := recv(t, rec.committed, "second call"); ev.Transmitter != "room-2" {
		t.Errorf("event %+v", ev)
	}
	if s := p.Stats(); s.Reopens != 1 || !s.Online {
		t.Errorf("stats %+v", s)
	}
}

// A device missing at start is a technical alarm, not an error; Stop never hangs.
func TestMissingDeviceAndStop(t *testing.T) {
	rec := newRecorder()
	p, err := New(Options{Device: t.TempDir() + "/nothing", Mapper: testMapper()})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(context.Background(), nil); err == nil {
		t.Fatal("started without an ingester")
	}
	if err := p.Start(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	if ev := techEvent(t, rec, vakt.EventOffline); !strings.Contains(ev.Text, "unavailable") {
		t.Errorf("event %+v", ev)
	}
	stopReturns(t, p)

	// And on an open, idle line, Stop returns although a Read is pending.
	cs := newCallSystem(t)
	p2, _ := startPort(t, Options{Device: cs.slave})
	stopReturns(t, p2)
}

// stopReturns fails if Stop hangs (the bound only catches a hang; it is no timing
// requirement).
func stopReturns(t *testing.T, p *Port) {
	t.Helper()
	done := make(chan struct{})
	go func() { p.Stop(); close(done) }()
	recv(t, done, "Stop to return")
}

// R4 by construction: an unplugged adapter is noticed within devicePoll (or at once
// by the failing read, bounded by readTimeout), and a returned one is reopened
// within Reopen, so the port is back well within 2 s.
func TestReopenBound(t *testing.T) {
	if d := devicePoll + readTimeout + DefaultReopen; d >= 2*time.Second {
		t.Errorf("worst case reopen %v, want under 2s", d)
	}
}

// BenchmarkBlockToCommit measures, over the real serial path on a pty, the time from
// writing a block's last byte to the ingester being called (ingest-µs), and the round
// trip from that write to the ACK after an immediate commit (ns/op).
func BenchmarkBlockToCommit(b *testing.B) {
	m, sl, err := ptyPair()
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	defer sl.Close()
	opened := make(chan struct{}, 1)
	ingested := make(chan time.Time, 1)
	in := vakt.IngestFunc(func(ev vakt.Event, done func(error)) error {
		if ev.Kind.Raises() {
			ingested <- time.Now()
		} else {
			poke(opened)
		}
		go done(nil)
		return nil
	})
	p, err := New(Options{Device: sl.Name(), Name: "bench", Mapper: testMapper()})
	if err != nil {
		b.Fatal(err)
	}
	p.Start(context.Background(), in)
	defer p.Stop()
	<-opened
	buf := make([]byte, 1)
	readACK := func() {
		if _, err := m.Read(buf); err != nil || buf[0] != espa.ACK {
			b.Fatalf("want ACK, got %x %v", buf, err)
		}
	}
	m.Write([]byte{espa.EOT, '1', espa.ENQ, '2', espa.ENQ})
	readACK()
	frames := [][]byte{callFrame("1", "ROOM 1"), callFrame("1", "ROOM 2")}
	var total time.Duration
	var lat []time.Duration
	for b.Loop() {
		f := frames[len(lat)%2]
		start := time.Now()
		m.Write(f)
		d := (<-ingested).Sub(start)
		total += d
		lat = append(lat, d)
		readACK()
	}
	slices.Sort(lat)
	b.ReportMetric(float64(total.Microseconds())/float64(len(lat)), "ingest-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "ingest-p99-µs")
}

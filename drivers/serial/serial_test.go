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
		return Options{Device: "/dev/ttyUSB0", Mapper: espa.Mapper{Fallback: "line"}, Ingest: newRecorder()}
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
		{"ingest", func(o *Options) { o.Ingest = nil }, "ingest"},
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
}

// Durable before acknowledged: the ACK is written only after done(nil).
func TestSlaveAckAfterCommit(t *testing.T) {
	cs := newCallSystem(t)
	_, rec := startPort(t, Options{Device: cs.slave})
	rec.hold.Store(true)

	cs.selectGateway()
	cs.send(callFrame("1", "ROOM 7")...)
	recv(t, rec.ingested, "ingest")
	cs.quiet() // the commit is withheld: no ACK
	rec.release <- struct{}{}
	cs.expectACK()
	recv(t, rec.committed, "commit")

	// A sender that gives up (EOT) before the commit gets no late ACK.
	cs.send(callFrame("1", "ROOM 8")...)
	recv(t, rec.ingested, "ingest")
	cs.send(espa.EOT, '2', espa.ENQ) // gives up, then polls us
	cs.expectEOT()                   // the EOT was seen: we answer the poll, not the block
	rec.release <- struct{}{}
	recv(t, rec.committed, "commit")
	cs.send(espa.EOT, '2', espa.ENQ)
	cs.expectEOT() // nothing before it: no late ACK
	cs.quiet()
}

func TestSlaveBadBCCResend(t *testing.T) {
	cs := newCallSystem(t)
	p, rec := startPort(t, Options{Device: cs.slave})
	good := callFrame("1", "ROOM 12")
	bad := bytes.Clone(good)
	bad[len(bad)-1] ^= 0x20

	cs.selectGateway()
	cs.send(bad...)
	cs.expectNAK(espa.NAKTransmission)
	cs.send(good...)
	cs.expectACK()
	cs.send(espa.EOT)
	if ev := recv(t, rec.committed, "event"); ev.Transmitter != "room-12" {
		t.Errorf("event %+v", ev)
	}
	ingestedN(t, rec, 1)
	if s := p.Stats(); s.BadBCC != 1 || s.Calls != 1 {
		t.Errorf("stats %+v", s)
	}
}

func TestSlaveNoiseAndHalfFrames(t *testing.T) {
	cs := newCallSystem(t)
	p, rec := startPort(t, Options{Device: cs.slave})
	good := callFrame("1", "ROOM 3")

	cs.send([]byte("\xff\x00\x13garbage after plug-in")...)
	cs.send(good[:6]...) // half a frame
	cs.selectGateway()   // the EOT cuts the half frame; the exchange works
	cs.send([]byte("\x7f\x1e\x1f\x03junk")...)
	cs.send(good[:9]...)
	cs.send(good...) // SOH starts over
	cs.expectACK()
	cs.send(espa.EOT)
	if ev := recv(t, rec.committed, "event"); ev.Transmitter != "room-3" {
		t.Errorf("event %+v", ev)
	}
	ingestedN(t, rec, 1)
	if s := p.Stats(); s.NoiseBytes == 0 || s.Calls != 1 {
		t.Errorf("stats %+v", s)
	}
}

func TestSlaveTwoBlocksAndRepeat(t *testing.T) {
	cs := newCallSystem(t)
	p, rec := startPort(t, Options{Device: cs.slave})
	a, b := callFrame("1", "ROOM 1"), callFrame("1", "ROOM 2")

	cs.selectGateway()
	cs.send(a...)
	cs.expectACK()
	cs.send(b...)
	cs.expectACK()
	cs.send(b...) // our ACK was lost: the same block again
	cs.expectACK()
	cs.send(espa.EOT)

	if ev := recv(t, rec.committed, "first"); ev.Transmitter != "room-1" {
		t.Errorf("first %+v", ev)
	}
	if ev := recv(t, rec.committed, "second"); ev.Transmitter != "room-2" {
		t.Errorf("second %+v", ev)
	}
	ingestedN(t, rec, 2)
	if s := p.Stats(); s.Calls != 2 || s.Repeats != 1 {
		t.Errorf("stats %+v", s)
	}
}

func TestSlaveCallKinds(t *testing.T) {
	cs := newCallSystem(t)
	p, rec := startPort(t, Options{Device: cs.slave})
	reset := espa.Encode(espa.CallBlock(espa.Call{CallAddress: "550", Message: "CALL ME 101", CallType: espa.CallReset}))
	emergency := espa.Encode(espa.CallBlock(espa.Call{CallAddress: "9", Message: "ROOM 9", Priority: 1}))
	unmapped := espa.Encode(espa.CallBlock(espa.Call{CallAddress: "777", Message: "KITCHEN"}))

	cs.selectGateway()
	for _, f := range [][]byte{reset, emergency, unmapped} {
		cs.send(f...)
		cs.expectACK()
	}
	cs.send(espa.EOT)
	want := []struct {
		id   vakt.TransmitterID
		kind vakt.EventKind
		prio vakt.Priority
	}{
		{"room-101", vakt.EventCancel, 0},
		{"room-9", vakt.EventEmergency, vakt.PriorityEmergency},
		{"nurse-call-line", vakt.EventCall, 0},
	}
	for _, w := range want {
		ev := recv(t, rec.committed, string(w.id))
		if ev.Transmitter != w.id || ev.Kind != w.kind || ev.Priority != w.prio {
			t.Errorf("got %+v, want %+v", ev, w)
		}
	}
	if s := p.Stats(); s.Cancels != 1 || s.Unmapped != 1 || s.Calls != 3 {
		t.Errorf("stats %+v", s)
	}
}

func TestSlaveInvalidAndStatusBlocks(t *testing.T) {
	cs := newCallSystem(t)
	p, rec := startPort(t, Options{Device: cs.slave})
	unknownHeader := espa.Encode(espa.Block{Header: '9', Records: []espa.Record{{ID: "1", Data: "5"}}})
	noAddress := espa.Encode(espa.Block{Header: '1', Records: []espa.Record{{ID: "2", Data: "ROOM 5"}}})
	noUS := []byte{espa.SOH, '1', espa.STX, 'X', espa.ETX}
	noUS = append(noUS, espa.BCC(noUS[1:]))
	status := espa.Encode(espa.StatusBlock("123", espa.StatusPaged))

	cs.selectGateway()
	for _, f := range [][]byte{unknownHeader, noAddress, noUS} {
		cs.send(f...)
		cs.expectNAK(espa.NAKInvalid)
	}
	cs.send(status...)
	cs.expectACK()
	cs.send(espa.EOT)
	ingestedN(t, rec, 0)
	if s := p.Stats(); s.Invalid != 3 || s.StatusIn != 1 || s.Calls != 0 {
		t.Errorf("stats %+v", s)
	}
}

func TestSlaveBusy(t *testing.T) {
	cs := newCallSystem(t)
	p, rec := startPort(t, Options{Device: cs.slave})
	f := callFrame("1", "ROOM 4")

	rec.busy.Store(true) // the ingest queue is full: refuse the selection
	cs.send(espa.EOT, '1', espa.ENQ, '2', espa.ENQ)
	cs.expectNAK(espa.NAKBusy)
	rec.busy.Store(false)

	cs.selectGateway()
	rec.refuse.Store(true) // Ingest returns ErrBusy
	cs.send(f...)
	cs.expectNAK(espa.NAKBusy)
	rec.refuse.Store(false)
	rec.fail.Store(true) // the commit fails
	cs.send(f...)
	cs.expectNAK(espa.NAKBusy)
	recv(t, rec.ingested, "failed ingest")
	rec.fail.Store(false)
	cs.send(f...)
	cs.expectACK()
	cs.send(espa.EOT)
	recv(t, rec.committed, "event")
	if s := p.Stats(); s.Busy != 3 || s.Calls != 1 {
		t.Errorf("stats %+v", s)
	}
}

// Status blocks go back to the call system through the Temporary Master procedure
// when it polls us.
func TestSlaveStatusBlocksWhenPolled(t *testing.T) {
	cs := newCallSystem(t)
	p, rec := startPort(t, Options{Device: cs.slave, StatusBlocks: true})

	cs.selectGateway()
	cs.send(zenitel...)
	cs.expectACK()
	cs.send(espa.EOT)
	ev := recv(t, rec.committed, "call")

	a := vakt.Alarm{ID: "a-1", Transmitter: ev.Transmitter, Kind: vakt.EventCall, State: vakt.StateRaised}
	p.AlarmChanged(a) // raised: nothing to say
	a.State = vakt.StateOffered
	p.AlarmChanged(a)
	p.AlarmChanged(a)                                                                     // offered again (next tier): said already
	p.AlarmChanged(vakt.Alarm{ID: "a-2", Transmitter: "other", State: vakt.StateOffered}) // not ours
	p.AlarmChanged(vakt.Alarm{ID: "a-3", Transmitter: ev.Transmitter, Kind: vakt.EventOffline,
		State: vakt.StateOffered}) // technical: not the call system's business

	cs.send('2', espa.ENQ) // poll us
	cs.expectENQ('1')      // we select the call system
	cs.send(espa.ACK)
	cs.expectBlock(espa.Encode(espa.StatusBlock("550", espa.StatusPaged)))
	cs.send(espa.NAKTransmission, espa.NAK) // garbled: again
	cs.expectBlock(espa.Encode(espa.StatusBlock("550", espa.StatusPaged)))
	cs.send(espa.ACK)
	cs.expectEOT()

	a.State = vakt.StateAccepted
	p.AlarmChanged(a)
	a.State = vakt.StatePresent
	p.AlarmChanged(a) // still "acknowledged"
	a.State = vakt.StateCompleted
	p.AlarmChanged(a)
	cs.send(espa.EOT, '2', espa.ENQ)
	cs.expectENQ('1')
	cs.send(espa.ACK)
	cs.expectBlock(espa.Encode(espa.StatusBlock("550", espa.StatusAcknowledged)))
	cs.send(espa.ACK)
	cs.expectBlock(espa.Encode(espa.StatusBlock("550", espa.StatusTerminated)))
	cs.send(espa.ACK)
	cs.expectEOT()

	cs.send(espa.EOT, '2', espa.ENQ) // nothing left
	cs.expectEOT()
	if s := p.Stats(); s.Sent != 3 || s.Queued != 0 {
		t.Errorf("stats %+v", s)
	}
}

// Paging: an alarm forwarded to a DECT/paging system as a call-to-pager block.
func TestSlavePage(t *testing.T) {
	cs := newCallSystem(t)
	p, _ := startPort(t, Options{Device: cs.slave, DataBits: 8, Parity: "none", StopBits: 1})
	a := vakt.Alarm{ID: "a-9", Transmitter: "room-101", Priority: vakt.PriorityEmergency, State: vakt.StateOffered}
	if err := p.Page(a, "1234", "Rom 101 fall – hjelp ø"); err != nil {
		t.Fatal(err)
	}
	a.State = vakt.StateCancelled
	if err := p.Page(a, "1234", "Rom 101"); err != nil {
		t.Fatal(err)
	}
	cs.send(espa.EOT, '2', espa.ENQ)
	cs.expectENQ('1')
	cs.send(espa.ACK)
	page := cs.next()
	cs.send(espa.ACK)
	reset := cs.next()
	cs.send(espa.ACK)
	cs.expectEOT()
	for i, tok := range []espa.Token{page, reset} {
		if tok.Type != espa.TokenBlock {
			t.Fatalf("block %d: %v", i, tok)
		}
		c, err := espa.ParseCall(tok.Block)
		if err != nil {
			t.Fatal(err)
		}
		want := espa.Call{Header: '1', CallAddress: "1234", Message: "Rom 101 fall ? hjelp \xf8", CallType: espa.CallStandard, Priority: 1}
		if i == 1 {
			want = espa.Call{Header: '1', CallAddress: "1234", Message: "Rom 101", CallType: espa.CallReset, Priority: 1}
		}
		if c != want {
			t.Errorf("block %d: got %+v want %+v", i, c, want)
		}
	}
}

// answerPolls answers the Control Station's polls (EOT <peer> ENQ) with EOT until it
// selects the peer (EOT <our> ENQ <peer> ENQ): the gateway wants to send.
func (cs *callSystem) answerPollsUntilSelected() {
	cs.t.Helper()
	for range 1000 {
		cs.expectEOT()
		tok := cs.next()
		switch {
		case tok.Type == espa.TokenENQ && tok.Addr == '1':
			cs.send(espa.EOT) // poll: nothing to send
		case tok.Type == espa.TokenENQ && tok.Addr == '2':
			cs.expectENQ('1')
			return
		default:
			cs.t.Fatalf("unexpected %v", tok)
		}
	}
	cs.t.Fatal("never selected")
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

func TestControlStationSendRetryAndGiveUp(t *testing.T) {
	cs := newCallSystem(t)
	p, rec := startPort(t, Options{Device: cs.slave, Role: RoleControlStation, StatusBlocks: true,
		PollInterval: 20 * time.Millisecond})

	// A call comes in when we poll ...
	cs.expectEOT()
	cs.expectENQ('1')
	cs.send('2', espa.ENQ)
	cs.expectACK()
	cs.send(zenitel...)
	cs.expectACK()
	cs.send(espa.EOT)
	ev := recv(t, rec.committed, "call")

	// ... and its status goes back: '1' NAK, sent again, ACK.
	p.AlarmChanged(vakt.Alarm{ID: "a-1", Transmitter: ev.Transmitter, Kind: ev.Kind, State: vakt.StateOffered})
	paged := espa.Encode(espa.StatusBlock("550", espa.StatusPaged))
	cs.answerPollsUntilSelected()
	cs.send(espa.ACK)
	cs.expectBlock(paged)
	cs.send(espa.NAKTransmission, espa.NAK)
	cs.expectBlock(paged) // retry
	cs.send(espa.ACK)
	cs.expectEOT()

	// A page NAKed twice: EOT, and it is tried again in a later transaction.
	if err := p.Page(vakt.Alarm{ID: "a-2", Priority: vakt.PriorityHigh, State: vakt.StateOffered}, "200", "ROOM 200"); err != nil {
		t.Fatal(err)
	}
	page := espa.Encode(espa.CallBlock(espa.Call{CallAddress: "200", Message: "ROOM 200", CallType: 3, Priority: 2}))
	cs.answerPollsUntilSelected()
	cs.send(espa.ACK)
	cs.expectBlock(page)
	cs.send(espa.NAKTransmission, espa.NAK)
	cs.expectBlock(page)
	cs.send(espa.NAK)
	cs.expectEOT() // two failed attempts: give up this transaction

	cs.answerPollsUntilSelected()
	cs.send(espa.ACK)
	cs.expectBlock(page)
	cs.send(espa.ACK)
	cs.expectEOT()
	if s := p.Stats(); s.Sent != 2 || s.Failed != 1 || s.Queued != 0 || s.Calls != 1 {
		t.Errorf("stats %+v", s)
	}
}

// The specification's recovery: the peer holds the line and goes quiet; after the
// recovery time the Control Station sends EOT and polls again.
func TestControlStationRecovery(t *testing.T) {
	cs := newCallSystem(t)
	startPort(t, Options{Device: cs.slave, Role: RoleControlStation, PollInterval: 20 * time.Millisecond,
		Recovery: 200 * time.Millisecond})
	cs.expectEOT()
	cs.expectENQ('1')
	cs.send('2', espa.ENQ)
	cs.expectACK()
	start := time.Now()
	cs.expectEOT() // recovery
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Errorf("recovered after %v, before the recovery time", d)
	}
	cs.expectENQ('1') // the recovery EOT, the guard time, the poll
}

func TestControlStationSilentLine(t *testing.T) {
	cs := newCallSystem(t)
	p, rec := startPort(t, Options{Device: cs.slave, Role: RoleControlStation, PollInterval: 10 * time.Millisecond,
		ReplyTimeout: 30 * time.Millisecond, MissedPolls: 3})
	ev := techEvent(t, rec, vakt.EventOffline) // nobody answers
	if ev.Transmitter != "nurse-call-line" || !strings.Contains(ev.Text, "no answer to 3 polls") {
		t.Errorf("offline event %+v", ev)
	}
	if s := p.Stats(); s.Online || s.MissedPolls < 3 {
		t.Errorf("stats %+v", s)
	}
	for {
		tok := cs.next()
		if tok.Type == espa.TokenENQ && tok.Addr == '1' {
			cs.send(espa.EOT)
			break
		}
	}
	techEvent(t, rec, vakt.EventCheckIn)
	if s := p.Stats(); !s.Online {
		t.Errorf("stats %+v", s)
	}
}

// R4: the adapter is unplugged (the device path disappears) and comes back: a
// technical alarm, and the port reopens within 2 s.
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
	plugged := time.Now()
	if err := os.Symlink(cs2.slave, link); err != nil {
		t.Fatal(err)
	}
	techEvent(t, rec, vakt.EventCheckIn)
	if d := time.Since(plugged); d > 2*time.Second {
		t.Errorf("reopened after %v, want within 2s", d)
	}
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
	p, err := New(Options{Device: t.TempDir() + "/nothing", Mapper: testMapper(), Ingest: rec})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if ev := techEvent(t, rec, vakt.EventOffline); !strings.Contains(ev.Text, "unavailable") {
		t.Errorf("event %+v", ev)
	}
	stopWithin(t, p, time.Second)

	// And on an open, idle line, Stop returns although a Read is pending.
	cs := newCallSystem(t)
	p2, _ := startPort(t, Options{Device: cs.slave})
	stopWithin(t, p2, time.Second)
}

func stopWithin(t *testing.T, p *Port, d time.Duration) {
	t.Helper()
	done := make(chan struct{})
	go func() { p.Stop(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("Stop took longer than %v", d)
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
	p, err := New(Options{Device: sl.Name(), Name: "bench", Mapper: testMapper(), Ingest: in})
	if err != nil {
		b.Fatal(err)
	}
	p.Start(context.Background())
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

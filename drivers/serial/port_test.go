package serial

import (
	"bytes"
	"errors"
	"testing"

	"github.com/vakt/vakt"
	"github.com/vakt/vakt/drivers/espa"
)

// These test the port's glue between the link and Vakt (mapping, ingest, status
// blocks, pages) without a line: the link is fed bytes and writes to a buffer.

func newTestPort(t *testing.T, o Options) (*Port, *recorder, *bytes.Buffer) {
	t.Helper()
	rec := newRecorder()
	o.Device, o.Name, o.Mapper = "/dev/null", "test", testMapper()
	p, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	p.in = rec // not started: the test feeds the link itself
	var out bytes.Buffer
	if err := p.link.Attach(&out); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.link.Detach)
	return p, rec, &out
}

// commitResult hands a call to the port and returns what it tells the link.
func commitResult(t *testing.T, p *Port, c espa.Call) error {
	t.Helper()
	res := make(chan error, 1)
	p.onCall(espa.Inbound{Call: c, Raw: espa.Encode(espa.CallBlock(c)), Commit: func(err error) { res <- err }})
	return recv(t, res, "commit")
}

func TestPortCallsToEvents(t *testing.T) {
	p, rec, _ := newTestPort(t, Options{})
	for _, tc := range []struct {
		call espa.Call
		id   vakt.TransmitterID
		kind vakt.EventKind
		prio vakt.Priority
	}{
		{espa.Call{CallAddress: "550", Message: "CALL ME 101", CallType: espa.CallReset}, "room-101", vakt.EventCancel, 0},
		{espa.Call{CallAddress: "9", Message: "ROOM 9", Priority: 1}, "room-9", vakt.EventEmergency, vakt.PriorityEmergency},
		{espa.Call{CallAddress: "777", Message: "KITCHEN"}, "nurse-call-line", vakt.EventCall, 0},
	} {
		if err := commitResult(t, p, tc.call); err != nil {
			t.Fatal(err)
		}
		ev := recv(t, rec.committed, string(tc.id))
		if ev.Transmitter != tc.id || ev.Kind != tc.kind || ev.Priority != tc.prio || ev.Source != "espa:test" {
			t.Errorf("got %+v, want %+v", ev, tc)
		}
	}
	if s := p.Stats(); s.Cancels != 1 || s.Unmapped != 1 {
		t.Errorf("stats %+v", s)
	}
	// Refused by the ingester, or not committed: the link answers busy.
	rec.refuse.Store(true)
	if err := commitResult(t, p, espa.Call{CallAddress: "1", Message: "ROOM 4"}); !errors.Is(err, vakt.ErrBusy) {
		t.Errorf("refused: %v", err)
	}
	rec.refuse.Store(false)
	rec.fail.Store(true)
	if err := commitResult(t, p, espa.Call{CallAddress: "1", Message: "ROOM 4"}); err == nil {
		t.Error("failed commit reported as committed")
	}
}

// pollOut polls the port (slave role) and acknowledges everything it sends; it
// returns the blocks.
func pollOut(t *testing.T, p *Port, out *bytes.Buffer) []espa.Block {
	t.Helper()
	out.Reset()
	var blocks []espa.Block
	var f espa.Framer
	p.link.Feed([]byte{espa.EOT, '2', espa.ENQ})
	for range 20 {
		var toks []espa.Token
		f.Feed(out.Bytes(), func(tok espa.Token) { toks = append(toks, tok) })
		out.Reset()
		if len(toks) == 0 {
			t.Fatal("port wrote nothing")
		}
		last := toks[len(toks)-1]
		if last.Type == espa.TokenEOT {
			return blocks
		}
		if last.Type == espa.TokenBlock {
			blocks = append(blocks, last.Block)
		}
		p.link.Feed([]byte{espa.ACK})
	}
	t.Fatal("port never ended its transaction")
	return nil
}

func TestPortStatusBlocks(t *testing.T) {
	p, rec, out := newTestPort(t, Options{StatusBlocks: true})
	if err := commitResult(t, p, espa.Call{CallAddress: "550", Message: "CALL ME 101"}); err != nil {
		t.Fatal(err)
	}
	ev := recv(t, rec.committed, "call")
	a := vakt.Alarm{ID: "a-1", Transmitter: ev.Transmitter, Kind: vakt.EventCall, State: vakt.StateRaised}
	p.AlarmChanged(a) // raised: nothing to say
	a.State = vakt.StateOffered
	p.AlarmChanged(a)
	p.AlarmChanged(a)                                                                     // offered again (next tier): said already
	p.AlarmChanged(vakt.Alarm{ID: "a-2", Transmitter: "other", State: vakt.StateOffered}) // not ours
	p.AlarmChanged(vakt.Alarm{ID: "a-3", Transmitter: ev.Transmitter, Kind: vakt.EventOffline, State: vakt.StateOffered})
	p.AlarmChanged(vakt.Alarm{ID: "a-4", Transmitter: ev.Transmitter, WalkTest: true, State: vakt.StateOffered})
	a.State = vakt.StateAccepted
	p.AlarmChanged(a)
	a.State = vakt.StatePresent
	p.AlarmChanged(a) // still "acknowledged"
	a.State = vakt.StateCompleted
	p.AlarmChanged(a)
	got := pollOut(t, p, out)
	want := []espa.Block{espa.StatusBlock("550", espa.StatusPaged), espa.StatusBlock("550", espa.StatusAcknowledged),
		espa.StatusBlock("550", espa.StatusTerminated)}
	if len(got) != len(want) {
		t.Fatalf("blocks %v", got)
	}
	for i := range want {
		if !bytes.Equal(espa.Encode(got[i]), espa.Encode(want[i])) {
			t.Errorf("block %d: %v, want %v", i, got[i], want[i])
		}
	}
}

func TestPortPageText(t *testing.T) {
	for _, tc := range []struct {
		bits int
		msg  string
	}{{8, "Rom 101 fall ? hjelp \xf8"}, {7, "Rom 101 fall ? hjelp ?"}} {
		p, _, out := newTestPort(t, Options{DataBits: tc.bits, Parity: "none", StopBits: 1})
		a := vakt.Alarm{ID: "a-9", Transmitter: "room-101", Priority: vakt.PriorityEmergency, State: vakt.StateOffered}
		var done []error
		if err := p.PageResult(a, "1234", "Rom 101 fall – hjelp ø", func(err error) { done = append(done, err) }); err != nil {
			t.Fatal(err)
		}
		a.State = vakt.StateCancelled
		if err := p.Page(a, "1234", "Rom 101"); err != nil {
			t.Fatal(err)
		}
		got := pollOut(t, p, out)
		if len(got) != 2 {
			t.Fatalf("blocks %v", got)
		}
		for i, w := range []espa.Call{
			{Header: '1', CallAddress: "1234", Message: tc.msg, CallType: espa.CallStandard, Priority: 1},
			{Header: '1', CallAddress: "1234", Message: "Rom 101", CallType: espa.CallReset, Priority: 1},
		} {
			if c, err := espa.ParseCall(got[i]); err != nil || c != w {
				t.Errorf("%d bits, block %d: %+v %v, want %+v", tc.bits, i, c, err, w)
			}
		}
		if len(done) != 1 || done[0] != nil {
			t.Errorf("page outcome %v", done)
		}
	}
}

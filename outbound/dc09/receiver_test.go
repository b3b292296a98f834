package dc09_test

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vakt/vakt/internal/fakeclock"
	"github.com/vakt/vakt/outbound/dc09"
)

type recorder struct {
	mu  sync.Mutex
	got []dc09.Received
}

func (r *recorder) add(x dc09.Received) {
	r.mu.Lock()
	r.got = append(r.got, x)
	r.mu.Unlock()
}

func (r *recorder) snapshot() []dc09.Received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]dc09.Received(nil), r.got...)
}

func startReceiver(t *testing.T, rc *dc09.Receiver) (*dc09.Receiver, *recorder) {
	rec := &recorder{}
	rc.OnFrame = rec.add
	if err := rc.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rc.Close() })
	return rc, rec
}

// exchange writes raw bytes on a fresh connection and returns the answer frame.
func exchange(t *testing.T, addr string, raw []byte) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second)) // hang guard only
	if _, err := c.Write(raw); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	if _, err := br.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	s, err := br.ReadString('\r')
	if err != nil {
		t.Fatal(err)
	}
	body := strings.TrimSuffix(s, "\r")[8:]
	if got, want := s[:8], crcHeader([]byte(body)); got != want {
		t.Errorf("receiver answered header %s, body gives %s", got, want)
	}
	return body
}

func TestReceiverAnswers(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	rc, rec := startReceiver(t, &dc09.Receiver{Now: func() time.Time { return now }})
	addr := rc.Addr().String()
	emergency := readFile(t, filepath.Join("testdata", "golden", "adm-cid-emergency.bin"))

	if got, want := exchange(t, addr, emergency), string(readFile(t, filepath.Join("testdata", "golden", "ack-0001.bin"))); "\n"+crcHeader([]byte(got))+got+"\r" != want {
		t.Errorf("ACK %q, want the golden %q", got, want)
	}
	badCRC := bytes.Clone(emergency)
	badCRC[1] = 'F'
	if got := exchange(t, addr, badCRC); got != `"NAK"0000R0L0A0[]_10:00:00,12-01-2026` {
		t.Errorf("bad CRC answered %q", got)
	}
	badLen := bytes.Clone(emergency)
	badLen[8] = '8'
	if got := exchange(t, addr, badLen); !strings.HasPrefix(got, `"NAK"`) {
		t.Errorf("bad length answered %q", got)
	}
	if got := exchange(t, addr, wire(`"XYZ-ABC"0007R0L0#1234[#1234|1]`)); got != `"DUH"0007R0L0#1234[]` {
		t.Errorf("unknown id answered %q", got)
	}
	if got := exchange(t, addr, wire(`"ADM-CID"0008R0L0#1234[#1234|1101 01 015`)); got != `"DUH"0008R0L0#1234[]` {
		t.Errorf("a frame with a right CRC but no ']' answered %q; resending cannot help, want DUH", got)
	}
	if got := exchange(t, addr, wire(`"NULL"0005R0L0#1234[]_09:59:00,12-01-2026`)); !strings.HasPrefix(got, `"NAK"`) {
		t.Errorf("a timestamp 60 s old answered %q", got)
	}
	if got := exchange(t, addr, wire(`"NULL"0005R0L0#1234[]_09:59:45,12-01-2026`)); got != `"ACK"0005R0L0#1234[]` {
		t.Errorf("a timestamp 15 s old answered %q", got)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.got) != 7 || rec.got[0].Frame.Data != "#1234|1101 01 015" || rec.got[0].Reply != dc09.Ack || rec.got[1].Reply != dc09.Nak {
		t.Errorf("recorded %+v", rec.got)
	}
}

// The package's Link against the package's Receiver: AES and a clock that differs.
func TestLinkWithReceiver(t *testing.T) {
	key := []byte("0123456789ABCDEF0123456789ABCDEF")
	rcvNow := t0.Add(-3 * time.Minute) // the ARC's clock is behind ours
	rc, rec := startReceiver(t, &dc09.Receiver{Key: key, Accounts: []string{"1234"}, Now: func() time.Time { return rcvNow }})
	clk := fakeclock.New(t0)
	l, err := dc09.NewLink(dc09.LinkConfig{Addr: rc.Addr().String(), Account: "1234", Receiver: "0", Key: key, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second) // hang guard
	defer cancel()
	if _, err := l.Send(ctx, dc09.ContactID{Qualifier: 3, Event: 101, Group: 1, Zone: 15}.Message()); err != nil {
		t.Fatal(err)
	}
	got := rec.snapshot()
	if len(got) != 2 || got[0].Reply != dc09.Nak || got[1].Reply != dc09.Ack {
		t.Fatalf("receiver saw %+v; want NAK (clock) then ACK", got)
	}
	f := got[1].Frame
	if !f.Encrypted || f.Data != "#1234|3101 01 015" || !f.Time.Equal(rcvNow) {
		t.Errorf("receiver decoded %+v", f)
	}

	// Another account is not understood: the link gives up at once.
	l2, _ := dc09.NewLink(dc09.LinkConfig{Addr: rc.Addr().String(), Account: "9999", Key: key, Clock: clk})
	defer l2.Close()
	_, err = l2.Send(ctx, emergency)
	if err == nil || !strings.Contains(err.Error(), "DUH") {
		t.Errorf("unknown account: %v, want a DUH rejection", err)
	}
}

func TestReceiverOut(t *testing.T) {
	var out syncBuffer
	rc, _ := startReceiver(t, &dc09.Receiver{Out: &out})
	exchange(t, rc.Addr().String(), readFile(t, filepath.Join("testdata", "golden", "sia-dcs-medical.bin")))
	if got := out.String(); !strings.Contains(got, `ACK SIA-DCS seq=0003 account=1234 data="#1234|Nri1/MA015"`) {
		t.Errorf("printed %q", got)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

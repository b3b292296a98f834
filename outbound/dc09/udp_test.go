package dc09_test

import (
	"net"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/vakt/vakt/outbound/dc09"
)

// Over UDP a lost datagram is a timeout: the link resends the same sequence.
func TestLinkUDP(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	type dgram struct {
		body string
		from net.Addr
	}
	got := make(chan dgram, 8)
	go func() {
		buf := make([]byte, 8192)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			raw := string(buf[:n])
			if len(raw) < 10 || raw[0] != '\n' || raw[n-1] != '\r' {
				t.Errorf("datagram %q is not one LF..CR frame", raw)
				continue
			}
			body := raw[9 : n-1]
			crc, _ := strconv.ParseUint(raw[1:5], 16, 16)
			length, _ := strconv.ParseUint(raw[5:9], 16, 16)
			if uint16(crc) != crc16arc([]byte(body)) || int(length) != len(body) {
				t.Errorf("datagram %q: bad crc or length", raw)
			}
			got <- dgram{body, from}
		}
	}()
	next := func() dgram {
		select {
		case d := <-got:
			return d
		case <-time.After(10 * time.Second):
			t.Fatal("no datagram")
			return dgram{}
		}
	}
	h := newHarness(t, &stub{ln: fakeListener{pc.LocalAddr()}}, func(c *dc09.LinkConfig) { c.Network = "udp" })
	res := h.send(emergency)
	first := next() // dropped: no answer
	h.clk.Advance(timeout)
	h.await("backoff")
	h.clk.Advance(backoff)
	second := next()
	seq := regexp.MustCompile(`^"ADM-CID"(\d{4})`)
	a, b := seq.FindStringSubmatch(first.body), seq.FindStringSubmatch(second.body)
	if a == nil || b == nil || a[1] != b[1] {
		t.Fatalf("datagrams %q then %q; want the same sequence", first.body, second.body)
	}
	if _, err := pc.WriteTo(wire(`"ACK"`+b[1]+`R0L0#1234[]`), second.from); err != nil {
		t.Fatal(err)
	}
	if r := h.result(res); r.err != nil {
		t.Fatal(r.err)
	}
}

// fakeListener lends a UDP address to the harness, which asks its stub for one.
type fakeListener struct{ a net.Addr }

func (f fakeListener) Accept() (net.Conn, error) { return nil, net.ErrClosed }
func (f fakeListener) Close() error              { return nil }
func (f fakeListener) Addr() net.Addr            { return f.a }

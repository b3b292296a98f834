package serial

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/vakt/vakt/drivers/espa"
)

func TestMonitor(t *testing.T) {
	cs := newCallSystem(t)
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Monitor(ctx, Options{Device: cs.slave, Mapper: testMapper()}, pw)
		pw.Close()
	}()
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	expect := func(want ...string) {
		t.Helper()
		for {
			l := recv(t, lines, strings.Join(want, " "))
			ok := true
			for _, w := range want {
				ok = ok && strings.Contains(l, w)
			}
			if ok {
				return
			}
			if strings.Contains(l, "←") {
				t.Fatalf("got %q, want %q", l, want)
			}
		}
	}
	expect("monitoring "+cs.slave, "9600 7E2", "read-only")
	expect("open " + cs.slave)

	bad := bytes.Clone(zenitel)
	bad[len(bad)-1] = 0x07
	cs.send(espa.EOT, '1', espa.ENQ, '2', espa.ENQ)
	cs.send(zenitel...)
	cs.send(bad...)
	cs.send(espa.NAKTransmission, espa.NAK, espa.ACK)
	cs.send([]byte("zz")...)
	cs.send(callFrame("777", "KITCHEN")[:8]...) // half a frame, then quiet

	expect("← EOT")
	expect("← ENQ addr=1")
	expect("← ENQ addr=2")
	expect(`← BLOCK hdr=1 call="550" msg="CALL ME 101" beep=3 type=3 tx=3 prio=3 → room-101 call`)
	expect("← BCC ERROR want=03 got=07")
	expect("hint:")
	expect("← NAK '1'")
	expect("← ACK")
	expect("← NOISE 2 bytes: 7A 7A")
	expect("← HALF FRAME 8 bytes")

	// Read-only: a live port would have answered the selection and the blocks.
	cs.quiet()

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(wait):
		t.Fatal("Monitor did not return")
	}
}

func TestMonitorRejectsBadSettings(t *testing.T) {
	if err := Monitor(context.Background(), Options{Device: "/dev/null", Baud: 1234}, io.Discard); err == nil {
		t.Fatal("bad baud accepted")
	}
}

// TestMonitorRefusesHeldPort: serial-monitor on a port the gateway holds stops at
// once with a message saying so, instead of stealing bytes from the live link.
func TestMonitorRefusesHeldPort(t *testing.T) {
	cs := newCallSystem(t)
	held, err := openTTY(&Options{Device: cs.slave, Baud: 9600, DataBits: 7, Parity: "even", StopBits: 2})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- Monitor(context.Background(), Options{Device: cs.slave}, io.Discard) }()
	select {
	case err := <-done:
		if !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), cs.slave) {
			t.Fatalf("Monitor = %v, want the port named as in use", err)
		}
	case <-time.After(wait):
		t.Fatal("Monitor did not refuse a held port")
	}
	// Released with the holder: the next open succeeds.
	held.Close()
	again, err := openTTY(&Options{Device: cs.slave, Baud: 9600, DataBits: 7, Parity: "even", StopBits: 2})
	if err != nil {
		t.Fatalf("open after the holder closed: %v", err)
	}
	again.Close()
}

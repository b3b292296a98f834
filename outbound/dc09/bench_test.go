package dc09_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/vakt/vakt/outbound/dc09"
)

// BenchmarkSendACK measures Link.Send → the package's Receiver → ACK on loopback
// (plain and AES-256), next to the floor: the same frame echoed back by a bare TCP
// server in the same run. Reported: µs per round trip and the ratio to the floor.
func BenchmarkSendACK(b *testing.B) {
	frame := readFile(b, filepath.Join("testdata", "golden", "adm-cid-emergency.bin"))
	for _, tc := range []struct {
		name string
		key  []byte
	}{{"plain", nil}, {"aes256", []byte("0123456789ABCDEF0123456789ABCDEF")}} {
		b.Run(tc.name, func(b *testing.B) {
			rc := &dc09.Receiver{Key: tc.key}
			if err := rc.Listen("127.0.0.1:0"); err != nil {
				b.Fatal(err)
			}
			defer rc.Close()
			l, err := dc09.NewLink(dc09.LinkConfig{Addr: rc.Addr().String(), Account: "1234", Receiver: "0", Key: tc.key})
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			ctx := context.Background()
			m := dc09.ContactID{Qualifier: 1, Event: 101, Group: 1, Zone: 15}.Message()
			if _, err := l.Send(ctx, m); err != nil { // connect outside the loop
				b.Fatal(err)
			}
			floor := echoRoundTrip(b, frame) // in the same run, right before
			start := time.Now()
			for b.Loop() {
				if _, err := l.Send(ctx, m); err != nil {
					b.Fatal(err)
				}
			}
			per := time.Since(start) / time.Duration(b.N)
			b.ReportMetric(float64(per.Nanoseconds())/1e3, "µs/send")
			b.ReportMetric(float64(floor.Nanoseconds())/1e3, "µs/echo-floor")
			b.ReportMetric(float64(per)/float64(floor), "x-floor")
		})
	}
}

// echoRoundTrip is the floor: write a frame, read it back from an echo server.
func echoRoundTrip(b *testing.B, frame []byte) time.Duration {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.Copy(c, c)
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	const n = 5000
	start := time.Now()
	for range n {
		if _, err := c.Write(frame); err != nil {
			b.Fatal(err)
		}
		if _, err := br.ReadSlice('\r'); err != nil {
			b.Fatal(err)
		}
	}
	return time.Since(start) / n
}

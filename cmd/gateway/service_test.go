package main

import (
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/vakt/vakt/internal/fakeclock"
)

// TestSystemdNotify: run as a Type=notify service, the gateway sends READY=1 once it
// is ready (and /readyz says so), then WATCHDOG=1 at half of WATCHDOG_USEC on its
// clock for as long as the engine loop answers. (That no ping comes while the loop
// is stuck is shown in internal/sdnotify and engine's TestPingAnswersOnlyWhileLoopRuns.)
func TestSystemdNotify(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	got := make(chan string, 64)
	go func() {
		buf := make([]byte, 512)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			got <- string(buf[:n])
		}
	}()
	t.Setenv("NOTIFY_SOCKET", sock)
	t.Setenv("WATCHDOG_USEC", "20000000") // 20 s
	t.Setenv("WATCHDOG_PID", "")

	clock := fakeclock.New(time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC))
	_, c := startGateway(t, demoConfig(t, freePort(t), freePort(t), true), clock)
	select {
	case s := <-got:
		if s != "READY=1" {
			t.Fatalf("first notification %q, want READY=1", s)
		}
	case <-time.After(waitLimit):
		t.Fatal("no READY=1")
	}
	resp, err := http.Get(c.base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("READY=1 sent while /readyz answers %d", resp.StatusCode)
	}
	// Move the gateway's clock in steps of half the interval: each step is one ping.
	// The watchdog goroutine may not have armed its first timer when the first step
	// comes, so a step without a ping is retried, a bounded number of times.
	pings := 0
	for step := 0; pings < 3 && step < 40; step++ {
		clock.Advance(10 * time.Second)
		select {
		case s := <-got:
			if s != "WATCHDOG=1" {
				t.Fatalf("got %q, want WATCHDOG=1", s)
			}
			pings++
		case <-time.After(250 * time.Millisecond):
		}
	}
	if pings < 3 {
		t.Fatalf("%d WATCHDOG=1 in 40 half-intervals", pings)
	}
}

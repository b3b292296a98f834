package sdnotify_test

import (
	"context"
	"net"
	"path/filepath"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	vakt "github.com/vakt/vakt"
	"github.com/vakt/vakt/internal/sdnotify"
)

// listen opens the unix datagram socket a service manager would, sets NOTIFY_SOCKET
// to it and returns the datagrams it receives.
func listen(t *testing.T) <-chan string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	got := make(chan string, 64)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			got <- string(buf[:n])
		}
	}()
	return got
}

func recv(t *testing.T, got <-chan string) string {
	t.Helper()
	select {
	case s := <-got:
		return s
	case <-time.After(5 * time.Second):
		t.Fatal("no datagram on NOTIFY_SOCKET")
		return ""
	}
}

// none asserts nothing is queued on the socket right now: every send is synchronous
// (the write returns after the datagram is in the receiver's buffer), and the reader
// goroutine is given the chance to drain by the round trip of a marker datagram.
func none(t *testing.T, n *sdnotify.Notifier, got <-chan string) {
	t.Helper()
	if err := n.Send("MARK=1"); err != nil {
		t.Fatal(err)
	}
	if s := recv(t, got); s != "MARK=1" {
		t.Fatalf("got %q while none was expected", s)
	}
}

func TestReadyAndStopping(t *testing.T) {
	got := listen(t)
	n := sdnotify.FromEnv()
	if err := n.Ready(); err != nil {
		t.Fatal(err)
	}
	if s := recv(t, got); s != "READY=1" {
		t.Fatalf("got %q", s)
	}
	if err := n.Stopping(); err != nil {
		t.Fatal(err)
	}
	if s := recv(t, got); s != "STOPPING=1" {
		t.Fatalf("got %q", s)
	}
}

func TestNoSocketNoop(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	n := sdnotify.FromEnv()
	if n != nil || n.Ready() != nil {
		t.Fatal("without NOTIFY_SOCKET the notifier must be a silent no-op")
	}
}

func TestWatchdogInterval(t *testing.T) {
	t.Setenv("WATCHDOG_USEC", "20000000")
	t.Setenv("WATCHDOG_PID", "")
	d, ok, err := sdnotify.WatchdogInterval()
	if err != nil || !ok || d != 20*time.Second {
		t.Fatalf("%v %v %v", d, ok, err)
	}
	t.Setenv("WATCHDOG_PID", "1")
	if _, ok, _ := sdnotify.WatchdogInterval(); ok {
		t.Fatal("WATCHDOG_PID of another process must turn the watchdog off here")
	}
	t.Setenv("WATCHDOG_PID", "")
	t.Setenv("WATCHDOG_USEC", "soon")
	if _, _, err := sdnotify.WatchdogInterval(); err == nil {
		t.Fatal("bad WATCHDOG_USEC accepted")
	}
}

// TestWatchdogOnlyWhileAlive: WATCHDOG=1 comes every half interval while alive
// answers; while it hangs (a stuck engine loop) none comes; once it answers again the
// pings resume. Time is synctest's fake clock, through the injected vakt.Clock.
func TestWatchdogOnlyWhileAlive(t *testing.T) {
	got := listen(t) // outside the bubble: its reader does real I/O
	n := sdnotify.FromEnv()
	synctest.Test(t, func(t *testing.T) {
		var stuck atomic.Bool
		release := make(chan struct{})
		alive := func(ctx context.Context) error {
			if stuck.Load() {
				select {
				case <-release:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			return nil
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- n.Watchdog(ctx, vakt.SystemClock{}, 20*time.Second, alive) }()
		beat := func(want bool) {
			t.Helper()
			time.Sleep(9 * time.Second)
			synctest.Wait()
			none(t, n, got) // never before half the interval
			time.Sleep(time.Second)
			synctest.Wait()
			if !want {
				none(t, n, got)
				return
			}
			if s := recv(t, got); s != "WATCHDOG=1" {
				t.Fatalf("got %q", s)
			}
		}
		for range 3 {
			beat(true)
		}
		stuck.Store(true)
		for range 3 {
			beat(false) // asked, no answer within half the interval: no ping
		}
		stuck.Store(false)
		close(release) // the loop answers the probe still waiting: a ping at once
		synctest.Wait()
		if s := recv(t, got); s != "WATCHDOG=1" {
			t.Fatalf("after recovery got %q", s)
		}
		beat(true)
		cancel()
		if err := <-done; err != context.Canceled {
			t.Fatalf("watchdog ended with %v", err)
		}
	})
}

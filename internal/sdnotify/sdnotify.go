// Package sdnotify speaks systemd's notify protocol (sd_notify(3)) without a library:
// one datagram per state change to the unix socket named in NOTIFY_SOCKET. READY=1
// tells systemd a Type=notify service is up; WATCHDOG=1, sent at half of
// WATCHDOG_USEC, keeps WatchdogSec= from restarting it — and Watchdog sends it only
// while the process proves it still works (for the gateway: the engine loop answers).
package sdnotify

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	vakt "github.com/vakt/vakt"
)

// Notifier sends states to the service manager. A nil *Notifier (not run by
// systemd) accepts every call and sends nothing.
type Notifier struct {
	addr *net.UnixAddr
}

// FromEnv returns the notifier for NOTIFY_SOCKET, or nil when it is unset. A socket
// name starting with '@' is in the abstract namespace.
func FromEnv() *Notifier {
	name := os.Getenv("NOTIFY_SOCKET")
	if name == "" {
		return nil
	}
	if strings.HasPrefix(name, "@") {
		name = "\x00" + name[1:]
	}
	return &Notifier{addr: &net.UnixAddr{Name: name, Net: "unixgram"}}
}

// Send sends one state ("READY=1", "STOPPING=1", "STATUS=...").
func (n *Notifier) Send(state string) error {
	if n == nil {
		return nil
	}
	c, err := net.DialUnix("unixgram", nil, n.addr)
	if err != nil {
		return fmt.Errorf("sd_notify: dial NOTIFY_SOCKET: %w", err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(state)); err != nil {
		return fmt.Errorf("sd_notify: send %q: %w", state, err)
	}
	return nil
}

// Ready sends READY=1.
func (n *Notifier) Ready() error { return n.Send("READY=1") }

// Stopping sends STOPPING=1.
func (n *Notifier) Stopping() error { return n.Send("STOPPING=1") }

// WatchdogInterval reads WATCHDOG_USEC (and WATCHDOG_PID, when set, must be this
// process): the time within which systemd expects WATCHDOG=1. ok is false when the
// watchdog is off.
func WatchdogInterval() (d time.Duration, ok bool, err error) {
	usec := os.Getenv("WATCHDOG_USEC")
	if usec == "" {
		return 0, false, nil
	}
	if pid := os.Getenv("WATCHDOG_PID"); pid != "" && pid != strconv.Itoa(os.Getpid()) {
		return 0, false, nil // meant for another process
	}
	n, err := strconv.ParseInt(usec, 10, 64)
	if err != nil || n <= 0 {
		return 0, false, fmt.Errorf("sd_notify: WATCHDOG_USEC=%q is not a positive number of microseconds", usec)
	}
	return time.Duration(n) * time.Microsecond, true, nil
}

// Watchdog sends WATCHDOG=1 every interval/2 of clock for as long as alive answers
// within that half interval, until ctx ends. When alive hangs or fails (the engine
// loop is stuck) it sends nothing, so systemd restarts the service once interval
// has passed without a ping. alive gets a context cancelled after interval/2.
func (n *Notifier) Watchdog(ctx context.Context, clock vakt.Clock, interval time.Duration, alive func(context.Context) error) error {
	if n == nil || interval <= 0 {
		return nil
	}
	half := interval / 2
	for {
		tick := make(chan struct{})
		t := clock.AfterFunc(half, func() { close(tick) })
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-tick:
		}
		if err := probe(ctx, clock, half, alive); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			continue // no ping: systemd will act if this lasts
		}
		if err := n.Send("WATCHDOG=1"); err != nil {
			return err
		}
	}
}

// errNoAnswer is alive not answering within its time.
var errNoAnswer = errors.New("sd_notify: no answer within half the watchdog interval")

func probe(ctx context.Context, clock vakt.Clock, within time.Duration, alive func(context.Context) error) error {
	pctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	t := clock.AfterFunc(within, func() { cancel(errNoAnswer) })
	defer t.Stop()
	done := make(chan error, 1)
	go func() { done <- alive(pctx) }()
	select {
	case err := <-done:
		if err == nil && pctx.Err() != nil {
			return context.Cause(pctx)
		}
		return err
	case <-pctx.Done():
		return context.Cause(pctx)
	}
}

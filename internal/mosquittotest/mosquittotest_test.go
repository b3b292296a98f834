package mosquittotest

import (
	"errors"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
)

// TestStartStopRestart: the broker is ready when Start returns (a connect succeeds
// at once), runs with the shared settings, stops by PID and comes back on the same
// port.
func TestStartStopRestart(t *testing.T) {
	b := Start(t, Options{})
	conf, err := os.ReadFile(b.Conf)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"max_inflight_messages 0", "max_queued_messages 100000", "set_tcp_nodelay true", "persistence true"} {
		if !strings.Contains(string(conf), "\n"+want+"\n") {
			t.Errorf("per-run configuration lacks %q", want)
		}
	}
	dial := func() error {
		c, err := net.Dial("tcp", b.Addr)
		if err == nil {
			c.Close()
		}
		return err
	}
	if err := dial(); err != nil {
		t.Fatalf("not reachable after Start: %v", err)
	}
	pid := b.PID()
	b.Stop()
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("process %d still exists after Stop: %v", pid, err)
	}
	if err := dial(); err == nil {
		t.Fatal("still reachable after Stop")
	}
	b.Start(t)
	if err := dial(); err != nil {
		t.Fatalf("not reachable after restart: %v", err)
	}
}

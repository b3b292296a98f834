package mqtt_test

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vakt/vakt/broker"
	"github.com/vakt/vakt/internal/mosquittotest"
)

// testBroker is a broker the driver tests run against: a Mosquitto process the test
// owns, or the embedded broker.
type testBroker struct {
	name string
	url  string
	// gateway and publisher credentials ("" for Mosquitto's anonymous access).
	gwUser, gwPass   string
	pubUser, pubPass string
	// stop and start take the broker down and bring it back on the same address
	// (Mosquitto keeps sessions in its persistence file across this).
	stop, start func(t *testing.T)
}

// eachBroker runs f against a Mosquitto process and against the embedded broker.
func eachBroker(t *testing.T, f func(t *testing.T, b *testBroker)) {
	for _, name := range []string{"mosquitto", "embedded"} {
		t.Run(name, func(t *testing.T) {
			if name == "mosquitto" {
				f(t, startMosquitto(t))
			} else {
				f(t, startEmbedded(t))
			}
		})
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// waitListening polls until addr accepts a TCP connection.
func waitListening(t *testing.T, addr string, exited <-chan struct{}) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-exited:
			t.Fatalf("broker exited before listening on %s", addr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("broker not listening on %s: %v", addr, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// lockedBuffer collects a child's output for failure messages.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startMosquitto runs a Mosquitto the test owns, with firmware-notes/mosquitto.conf:
// persistence, a large max_queued_messages (Mosquitto drops QoS 1 beyond it) and
// set_tcp_nodelay (otherwise ~40 ms outliers). max_inflight_messages 0 (no window):
// with the default window of 20, Mosquitto 2.0.11 was seen reordering QoS 1 messages
// to a subscriber that acknowledges after commit (TestOrder, ~1 run in 7).
func startMosquitto(t *testing.T) *testBroker {
	t.Helper()
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		t.Fatal("mosquitto is not on PATH; install it (Debian: apt-get install -y mosquitto mosquitto-clients) — these tests need a real broker")
	}
	dir := t.TempDir()
	port := freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	conf := filepath.Join(dir, "mosquitto.conf")
	// The one Mosquitto configuration of tests, scripts and sites
	// (firmware-notes/mosquitto.conf) with this run's listener and folder.
	cfg := mosquittotest.Config(t, port, dir, mosquittotest.Options{})
	if err := os.WriteFile(conf, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	var (
		mu     sync.Mutex
		cmd    *exec.Cmd
		exited chan struct{}
		out    lockedBuffer
	)
	b := &testBroker{name: "mosquitto", url: "tcp://" + addr}
	b.start = func(t *testing.T) {
		t.Helper()
		mu.Lock()
		c := exec.Command(bin, "-c", conf)
		c.Stdout, c.Stderr = &out, &out
		if err := c.Start(); err != nil {
			mu.Unlock()
			t.Fatalf("start mosquitto: %v", err)
		}
		ex := make(chan struct{})
		go func() { _ = c.Wait(); close(ex) }()
		cmd, exited = c, ex
		mu.Unlock()
		waitListening(t, addr, ex)
	}
	b.stop = func(t *testing.T) {
		t.Helper()
		mu.Lock()
		defer mu.Unlock()
		if cmd == nil {
			return
		}
		// SIGTERM: Mosquitto writes its persistence file (sessions, queues) on the way out.
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		cmd = nil
	}
	b.start(t)
	t.Cleanup(func() {
		b.stop(t)
		if t.Failed() {
			t.Logf("mosquitto output:\n%s", out.String())
		}
	})
	return b
}

const (
	gwUser, gwPass   = "gateway", "gw-secret"
	pubUser, pubPass = "z2m", "z2m-secret"
)

// startEmbedded runs the embedded broker with per-client credentials.
func startEmbedded(t *testing.T) *testBroker {
	t.Helper()
	opts := broker.Options{
		Listen: "127.0.0.1:0",
		// The gateway reads its embedded broker in-process; here it stands in for an
		// external broker that the driver reads over TCP, so the hand-over takes all.
		OnPublish: func(string, []byte) error { return nil },
		Clients: []broker.Client{
			{Username: gwUser, Password: gwPass, Subscribe: []string{"#"}},
			{Username: pubUser, Password: pubPass, Publish: []string{"#"}, Subscribe: []string{"flush/#"}},
		},
	}
	var (
		mu sync.Mutex
		br *broker.Broker
	)
	b := &testBroker{name: "embedded", gwUser: gwUser, gwPass: gwPass, pubUser: pubUser, pubPass: pubPass}
	b.start = func(t *testing.T) {
		t.Helper()
		mu.Lock()
		defer mu.Unlock()
		nb, err := broker.New(opts)
		if err != nil {
			t.Fatal(err)
		}
		if err := nb.Start(); err != nil {
			t.Fatal(err)
		}
		br = nb
		opts.Listen = nb.Addr() // come back on the same port
		b.url = "tcp://" + nb.Addr()
	}
	b.stop = func(t *testing.T) {
		mu.Lock()
		defer mu.Unlock()
		if br != nil {
			_ = br.Close()
			br = nil
		}
	}
	b.start(t)
	t.Cleanup(func() { b.stop(t) })
	return b
}

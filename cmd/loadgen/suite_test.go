package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The short versions of the load suites (scripts/storm.sh, scripts/crash-loop.sh).
// They assert correctness only — nothing acknowledged lost, nothing stored twice,
// integrity_check ok, every press offered — never a time: the figures belong to the
// long runs in docs/benchmarks.md.

var (
	buildOnce sync.Once
	gwBin     string
	buildErr  error
)

func gatewayBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "vakt-loadgen-gw")
		if err != nil {
			buildErr = err
			return
		}
		gwBin = filepath.Join(dir, "gateway")
		out, err := exec.Command("go", "build", "-o", gwBin, "../gateway").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v: %s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return gwBin
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// mosquitto starts a Mosquitto process with firmware-notes' settings (persistence
// on), stopped by PID when the test ends.
func mosquitto(t *testing.T, port int) {
	t.Helper()
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		t.Fatal("mosquitto is not installed (apt-get install mosquitto; .ci/run does this)")
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "mosquitto.conf")
	body := fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location %s/\n"+
		"max_queued_messages 1000000\nmax_inflight_messages 0\nset_tcp_nodelay true\n", port, dir)
	if os.Geteuid() == 0 {
		body += "user root\n" // else it drops to user mosquitto, who cannot write the temp dir
	}
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", conf)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Signal(syscall.SIGKILL); _, _ = cmd.Process.Wait() })
	// The loader's bridges retry their connection while the broker comes up.
}

func newSite(t *testing.T, embedded bool) (siteSpec, int) {
	t.Helper()
	s := siteSpec{Dir: t.TempDir(), Transmitters: 500, Staff: 200, APIPort: freePort(t), BrokerPort: freePort(t), Embedded: embedded}
	if err := writeSite(s); err != nil {
		t.Fatal(err)
	}
	if !embedded {
		mosquitto(t, s.BrokerPort)
	}
	return s, s.APIPort
}

// TestStormShort: a short storm through the embedded broker with 200 phones: every
// press is offered to a phone, every PUBACKed message is in the database once.
func TestStormShort(t *testing.T) {
	for _, embedded := range []bool{true, false} {
		t.Run(map[bool]string{true: "embedded", false: "mosquitto"}[embedded], func(t *testing.T) {
			s, api := newSite(t, embedded)
			gw, err := startGateway(gatewayBinary(t), sitePath(s.Dir), filepath.Join(s.Dir, "gateway.log"), api, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { gw.signal(syscall.SIGKILL) })
			var out bytes.Buffer
			drain := "0s"
			if !embedded {
				drain = "30s"
			}
			code, err := run(context.Background(), []string{"run", "-dir", s.Dir,
				"-api", fmt.Sprintf("http://127.0.0.1:%d", api), "-broker", fmt.Sprintf("127.0.0.1:%d", s.BrokerPort),
				"-rate", "200", "-duration", "2s", "-checkins", "100", "-conns", "4", "-accept-after", "50ms",
				"-offer-timeout", "30s", "-verify-db", dbPath(s.Dir), "-drain", drain}, &out)
			t.Log(out.String())
			if err != nil || code != 0 {
				t.Fatalf("storm: code %d, %v\n%s", code, err, out.String())
			}
			if !strings.Contains(out.String(), " 0 presses without an offer") {
				t.Fatalf("some presses were never offered:\n%s", out.String())
			}
		})
	}
}

// TestCrashLoopShort: a few SIGKILLs at random moments during a storm, with the
// embedded broker and with Mosquitto: every acknowledged message stored, none twice,
// integrity_check ok.
func TestCrashLoopShort(t *testing.T) {
	for _, embedded := range []bool{true, false} {
		t.Run(map[bool]string{true: "embedded", false: "mosquitto"}[embedded], func(t *testing.T) {
			s, api := newSite(t, embedded)
			args := []string{"crash", "-gateway", gatewayBinary(t), "-dir", s.Dir, "-api-port", fmt.Sprint(api),
				"-broker", fmt.Sprintf("127.0.0.1:%d", s.BrokerPort), "-cycles", "3", "-rate", "500", "-conns", "4"}
			if !embedded {
				args = append(args, "-external")
			}
			var out bytes.Buffer
			code, err := run(context.Background(), args, &out)
			t.Log(out.String())
			if err != nil || code != 0 {
				t.Fatalf("crash loop: code %d, %v\n%s", code, err, out.String())
			}
		})
	}
}

// TestBrokerRestartShort: R2's short version. Mosquitto restarted once: a press
// published when it is back reaches a phone; presses published while the gateway was
// down are all stored after its start. (How fast is the long run's business.)
func TestBrokerRestartShort(t *testing.T) {
	s := siteSpec{Dir: t.TempDir(), Transmitters: 500, Staff: 200, APIPort: freePort(t), BrokerPort: freePort(t)}
	if err := writeSite(s); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	_, err := run(context.Background(), []string{"broker-restart", "-gateway", gatewayBinary(t), "-dir", s.Dir,
		"-api-port", fmt.Sprint(s.APIPort), "-broker-port", fmt.Sprint(s.BrokerPort), "-cycles", "1", "-presses-while-down", "50"}, &out)
	t.Log(out.String())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "R2 cycle 0: broker back → offer") {
		t.Fatalf("no offer after the broker's return:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "after its start: PASS: 100 acknowledged, 100 stored, 0 lost") {
		t.Fatalf("presses published while the gateway was down are missing:\n%s", out.String())
	}
}

// TestPhoneDropShort: R8. A phone that drops with open offers gets them again on
// reconnect; an alarm offered to a phone that never confirms goes to someone else.
func TestPhoneDropShort(t *testing.T) {
	s, api := newSite(t, true)
	gw, err := startGateway(gatewayBinary(t), sitePath(s.Dir), filepath.Join(s.Dir, "gateway.log"), api, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gw.signal(syscall.SIGKILL) })
	var out bytes.Buffer
	_, err = run(context.Background(), []string{"phone-drop", "-dir", s.Dir,
		"-api", fmt.Sprintf("http://127.0.0.1:%d", api), "-broker", fmt.Sprintf("127.0.0.1:%d", s.BrokerPort)}, &out)
	t.Log(out.String())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"offered again: true", "went to the next staff member: true"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("want %q:\n%s", want, out.String())
		}
	}
}

// TestWearShort: scripts/wear.sh's short version (P6). Check-ins linger behind
// Mosquitto and are stored as their transmitter's health row; every acknowledged
// one is found stored, and the gateway's disk writes during the load are read and
// reported. Correctness only: the bytes belong to the long run.
func TestWearShort(t *testing.T) {
	s, api := newSite(t, false)
	site := sitePath(s.Dir)
	cfg, err := os.ReadFile(site)
	if err != nil {
		t.Fatal(err)
	}
	lingered := strings.Replace(string(cfg), "storage: {path: ", "storage: {checkin_linger: 1s, path: ", 1)
	if lingered == string(cfg) {
		t.Fatal("the site has no storage line to add checkin_linger to")
	}
	if err := os.WriteFile(site, []byte(lingered), 0o600); err != nil {
		t.Fatal(err)
	}
	gw, err := startGateway(gatewayBinary(t), site, filepath.Join(s.Dir, "gateway.log"), api, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gw.signal(syscall.SIGKILL) })
	var out bytes.Buffer
	code, err := run(context.Background(), []string{"run", "-dir", s.Dir,
		"-api", fmt.Sprintf("http://127.0.0.1:%d", api), "-broker", fmt.Sprintf("127.0.0.1:%d", s.BrokerPort),
		"-rate", "0", "-duration", "2s", "-checkins", "50", "-no-phones", "-blind", "-conns", "4",
		"-verify-db", dbPath(s.Dir), "-drain", "30s", "-io-pid", fmt.Sprint(gw.cmd.Process.Pid)}, &out)
	t.Log(out.String())
	if err != nil || code != 0 {
		t.Fatalf("wear: code %d, %v\n%s", code, err, out.String())
	}
	for _, want := range []string{" 0 lost,", " check-ins stored as their health row", "vakt: disk: pid "} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("want %q in the output:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), " 0 check-ins stored as their health row") {
		t.Fatalf("no check-in was stored as its health row:\n%s", out.String())
	}
}

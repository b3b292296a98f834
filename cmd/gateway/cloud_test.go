package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	stdlog "log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	stdsync "sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	vakt "github.com/vakt/vakt"
	"github.com/vakt/vakt/store"
	"github.com/vakt/vakt/sync/cloudsim"
	"github.com/vakt/vakt/sync/cloudsim/sqlitestore"
	"github.com/vakt/vakt/sync/wire"
)

const (
	demoGateway = "solbakken-demo"
	demoToken   = "demo"
)

// cloud is a reference cloud (sync/cloudsim over its SQLite store) on a fixed
// loopback port, which can be stopped and started again on the same port and file:
// the gateway sees a cloud that goes away and comes back.
type cloud struct {
	t      testing.TB
	port   int
	dbPath string
	db     *sqlitestore.DB
	sim    *cloudsim.Sim
	stopFn func()
}

func startCloud(t testing.TB) *cloud {
	c := &cloud{t: t, port: freePort(t), dbPath: filepath.Join(t.TempDir(), "cloud.db")}
	c.start()
	t.Cleanup(c.stop)
	return c
}

func (c *cloud) start() {
	c.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	db, err := sqlitestore.Open(ctx, c.dbPath)
	if err != nil {
		c.t.Fatal(err)
	}
	sim := cloudsim.New(db, cloudsim.Options{Tokens: map[string]string{demoToken: demoGateway}})
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- sim.Serve(ctx, fmt.Sprintf("127.0.0.1:%d", c.port), ready) }()
	select {
	case <-ready:
	case err := <-done:
		cancel()
		c.t.Fatalf("cloudsim: %v", err)
	}
	c.db, c.sim = db, sim
	c.stopFn = func() { cancel(); <-done; _ = db.Close() }
}

// stop takes the cloud away: connections are refused until start.
func (c *cloud) stop() {
	if c.stopFn != nil {
		c.stopFn()
		c.stopFn = nil
	}
}

func (c *cloud) url() string { return fmt.Sprintf("http://127.0.0.1:%d", c.port) }

// seqs are the gateway's entries as the cloud stored them, in arrival order.
func (c *cloud) seqs() []int64 {
	c.t.Helper()
	s, err := c.db.Seqs(context.Background(), demoGateway)
	if err != nil {
		c.t.Fatal(err)
	}
	return s
}

func (c *cloud) entry(seq int64) wire.Envelope {
	c.t.Helper()
	e, err := c.db.Entry(context.Background(), demoGateway, seq)
	if err != nil {
		c.t.Fatal(err)
	}
	return e
}

// raised lists the transmitters of the alarm.raised entries the cloud holds, in
// seq order.
func (c *cloud) raised() []string {
	c.t.Helper()
	var out []string
	for _, s := range c.seqs() {
		e := c.entry(s)
		if e.Kind != wire.KindAlarm {
			continue
		}
		var a wire.Alarm
		if err := json.Unmarshal(e.Body, &a); err != nil {
			c.t.Fatal(err)
		}
		if a.Transition == "alarm.raised" {
			out = append(out, a.Transmitter)
		}
	}
	return out
}

// cloudDemoConfig is the demo configuration syncing with c (or with any URL),
// polling an empty outbox every 100 ms so tests do not wait for the default.
func cloudDemoConfig(t testing.TB, apiPort, brokerPort int, url, extra string) string {
	t.Helper()
	path := demoConfig(t, apiPort, brokerPort, true)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(b), "cloud:\n  enabled: false\n  url: http://127.0.0.1:8090\n",
		"cloud:\n  enabled: true\n  url: "+url+"\n  upload_interval: 100ms\n"+extra, 1)
	if strings.Contains(extra, "directory_interval:") {
		s = strings.Replace(s, "  directory_interval: 10s\n", "", 1)
	}
	if !strings.Contains(s, "url: "+url) {
		t.Fatal("demo.yaml's cloud section changed")
	}
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// logChild is the gateway binary as a child process with its JSON log (stdout)
// kept, so a test can count what it logged.
type logChild struct {
	cmd    *exec.Cmd
	exited chan struct{}
	mu     stdsync.Mutex
	lines  []string
	notify chan struct{}
}

func startLogChild(t *testing.T, cfg string, apiPort int, env ...string) *logChild {
	t.Helper()
	cmd := exec.Command(gatewayBinary(t), "run", "-config", cfg)
	cmd.Env = append(os.Environ(), env...)
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &logChild{cmd: cmd, exited: make(chan struct{}), notify: make(chan struct{}, 1)}
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			c.mu.Lock()
			c.lines = append(c.lines, sc.Text())
			c.mu.Unlock()
			select {
			case c.notify <- struct{}{}:
			default:
			}
		}
	}()
	go func() { <-scanned; _ = cmd.Wait(); close(c.exited) }()
	t.Cleanup(c.kill)
	eventually(t, "gateway ready", func() bool {
		select {
		case <-c.exited:
			t.Fatalf("gateway exited during start:\n%s", c.log())
		default:
		}
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", apiPort))
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return c
}

func (c *logChild) kill() {
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	<-c.exited
}

// term stops the gateway as systemd does and waits for it.
func (c *logChild) term() {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	<-c.exited
}

func (c *logChild) log() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Join(c.lines, "\n")
}

// count is how many log lines contain s.
func (c *logChild) count(s string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, l := range c.lines {
		if strings.Contains(l, s) {
			n++
		}
	}
	return n
}

// gatewayOutbox opens the stopped gateway's database and returns what waits in its
// outbox and the seq the cloud acknowledged.
func gatewayOutbox(t *testing.T, cfg string) (pending []vakt.OutboxEntry, acked int64) {
	t.Helper()
	path := filepath.Join(filepath.Dir(cfg), "vakt.db")
	ctx := context.Background()
	db, err := store.Open(ctx, path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if pending, err = db.Outbox(ctx, 0, 0); err != nil {
		t.Fatal(err)
	}
	if acked, err = db.OutboxAcked(ctx); err != nil {
		t.Fatal(err)
	}
	return pending, acked
}

// exactlyOnceInOrder checks that the cloud holds seqs 1..n, each once, stored in
// increasing order (nothing compacted in these tests, so no holes).
func exactlyOnceInOrder(t *testing.T, seqs []int64) {
	t.Helper()
	for i, s := range seqs {
		if s != int64(i+1) {
			t.Fatalf("cloud seqs are not 1..%d each once in order: %v", len(seqs), seqs)
		}
	}
}

// TestCloudOutageWhileAlarmsKeepComing: the gateway syncs with cloudsim; cloudsim
// goes away while presses keep coming; the presses are alarmed as before (the phone
// gets its offers), the outage is logged once (not once per retry), and when
// cloudsim is back everything arrives, in order, exactly once.
func TestCloudOutageWhileAlarmsKeepComing(t *testing.T) {
	cl := startCloud(t)
	brokerPort, apiPort := freePort(t), freePort(t)
	cfg := cloudDemoConfig(t, apiPort, brokerPort, cl.url(), "")
	gw := startLogChild(t, cfg, apiPort)
	c := client{t: t, base: fmt.Sprintf("http://127.0.0.1:%d", apiPort)}

	press(t, brokerPort, "zigbee2mqtt/room101/sos", `{"action":"emergency"}`)
	eventually(t, "the first alarm in the cloud", func() bool { return len(cl.raised()) == 1 })

	cl.stop()
	for _, p := range [][2]string{{"room201/sos", `{"action":"emergency"}`}, {"room111/cord", `{"action":"single"}`},
		{"room102/sos", `{"sos":true}`}} {
		press(t, brokerPort, "zigbee2mqtt/"+p[0], p[1]) // returns after the PUBACK: committed
	}
	eventually(t, "the outage logged", func() bool { return gw.count("cloud unreachable") > 0 })
	// The alarm path does not wait for the cloud: all four are open for the lead.
	eventually(t, "four open alarms", func() bool { return strings.Count(openAlarms(t, c), `"id":"a-`) == 4 })

	cl.start()
	eventually(t, "the backlog drained", func() bool { return gw.count("cloud reachable again") > 0 && len(cl.raised()) == 4 })
	if n := gw.count("cloud unreachable"); n != 1 {
		t.Errorf("the outage was logged %d times, want once:\n%s", n, gw.log())
	}
	gw.term()

	seqs := cl.seqs()
	exactlyOnceInOrder(t, seqs)
	pending, acked := gatewayOutbox(t, cfg)
	if acked != seqs[len(seqs)-1] {
		t.Errorf("gateway acked %d, cloud holds up to %d", acked, seqs[len(seqs)-1])
	}
	for _, e := range pending {
		if e.Seq <= acked {
			t.Errorf("entry %d (%s) still in the outbox after its acknowledgement", e.Seq, e.Kind)
		}
	}
	if got := strings.Join(cl.raised(), " "); got != "room-101-sos room-201-sos room-111-cord room-102-sos" {
		t.Errorf("raised in the cloud in the order %s, want the presses' order", got)
	}
	kinds := map[string]bool{}
	for _, s := range seqs {
		e := cl.entry(s)
		kinds[e.Kind] = true
		if e.Boot == "" {
			t.Errorf("entry %d has no boot id", s)
		}
		if strings.Contains(string(e.Body), "lat") || strings.Contains(string(e.Body), "lon\"") {
			t.Errorf("entry %d carries a position: %s", s, e.Body)
		}
	}
	if !kinds["alarm"] || !kinds["audit"] {
		t.Errorf("kinds in the cloud: %v", kinds)
	}
}

// technicianSees waits until the technician is offered the technical alarm on
// transmitter id and returns it.
func technicianSees(t *testing.T, c client, id string) pushMsg {
	t.Helper()
	p := c.phone("tech-1", c.login("tech-1", "demo"))
	for {
		m := p.expect("offer")
		if m.Alarm != nil && m.Alarm.Transmitter.ID == id {
			return m
		}
	}
}

// TestCloudUntrustedCertificate: a cloud whose TLS certificate the gateway does not
// trust gets nothing (not one request reaches it), the log says what to change,
// and the technician is offered a technical alarm naming the cause.
func TestCloudUntrustedCertificate(t *testing.T) {
	var requests atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { requests.Add(1) }))
	srv.Config.ErrorLog = stdlog.New(io.Discard, "", 0) // the refused handshakes are expected
	srv.StartTLS()
	defer srv.Close()
	var logs lockedBuffer
	brokerPort, apiPort := freePort(t), freePort(t)
	cfg := cloudDemoConfig(t, apiPort, brokerPort, srv.URL, "")
	m, c := startGatewayLog(t, cfg, &logs)
	press(t, brokerPort, "zigbee2mqtt/room101/sos", `{"action":"emergency"}`)

	offer := technicianSees(t, c, "gateway-sync-cloud-tls")
	if offer.Alarm.Priority != int(vakt.PriorityTechnical) {
		t.Errorf("technical alarm priority %d", offer.Alarm.Priority)
	}
	if n := requests.Load(); n != 0 {
		t.Errorf("%d requests reached the untrusted cloud", n)
	}
	if !strings.Contains(logs.String(), "cloud.ca_file") {
		t.Errorf("the log does not say what to change:\n%s", logs.String())
	}
	st, err := m.Cloud.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !st.Upload.Fatal || st.Upload.Reason != "cloud-tls" || st.Backlog == 0 {
		t.Errorf("sync status %+v", st)
	}
}

// TestCloudTokenRefused: a token the cloud does not know (401) is fatal: nothing
// is stored, the technician gets a technical alarm naming cloud-auth, and the
// entries wait in the outbox.
func TestCloudTokenRefused(t *testing.T) {
	cl := startCloud(t)
	var logs lockedBuffer
	brokerPort, apiPort := freePort(t), freePort(t)
	dir := t.TempDir()
	tok := filepath.Join(dir, "token")
	if err := os.WriteFile(tok, []byte("not-the-gateways-token"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := cloudDemoConfig(t, apiPort, brokerPort, cl.url(), "  token_file: "+tok+"\n")
	m, c := startGatewayLog(t, cfg, &logs)
	press(t, brokerPort, "zigbee2mqtt/room101/sos", `{"action":"emergency"}`)

	technicianSees(t, c, "gateway-sync-cloud-auth")
	if n := len(cl.seqs()); n != 0 {
		t.Errorf("the cloud stored %d entries from a refused token", n)
	}
	if s := logs.String(); !strings.Contains(s, "cloud.token_file") || strings.Contains(s, "not-the-gateways-token") {
		t.Errorf("the log should name cloud.token_file and never the token:\n%s", s)
	}
	if n := strings.Count(logs.String(), "cloud sync stopped"); n != 1 {
		t.Errorf("the fatal condition was logged %d times, want once", n)
	}
	if st, _ := m.Cloud.Stats(context.Background()); st.Backlog == 0 {
		t.Error("the outbox is empty: entries were dropped")
	}
}

// lockedBuffer is a log sink safe for the gateway's goroutines and the test.
type lockedBuffer struct {
	mu  stdsync.Mutex
	buf strings.Builder
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startGatewayLog is startGateway (in-process) with the JSON log kept.
func startGatewayLog(t *testing.T, cfgPath string, log io.Writer) (*Main, client) {
	t.Helper()
	m := &Main{ConfigPath: cfgPath, Log: log}
	return m, runMain(t, m)
}

// TestCloudGatewayKilledMidUpload: the gateway is killed with SIGKILL while a batch
// is on its way, once before cloudsim committed it (stall) and once after it
// committed but before the acknowledgement reached the gateway (slow). After the
// restart nothing is lost and nothing is stored twice: the cloud holds 1..n, each
// once, in order, and the gateway's outbox is acknowledged up to n.
func TestCloudGatewayKilledMidUpload(t *testing.T) {
	for _, tc := range []struct {
		name      string
		fault     cloudsim.Fault
		committed bool
	}{
		{"before the cloud commits", cloudsim.Fault{Mode: cloudsim.FaultStall}, false},
		{"after the cloud commits", cloudsim.Fault{Mode: cloudsim.FaultSlow, Delay: cloudsim.Duration(time.Hour)}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cl := startCloud(t)
			cl.sim.SetFault(tc.fault)
			brokerPort, apiPort := freePort(t), freePort(t)
			cfg := cloudDemoConfig(t, apiPort, brokerPort, cl.url(), "")
			gw := startLogChild(t, cfg, apiPort)
			press(t, brokerPort, "zigbee2mqtt/room101/sos", `{"action":"emergency"}`) // committed locally
			eventually(t, "a batch on its way", func() bool { return cl.sim.Uploads() > 0 })
			if tc.committed {
				eventually(t, "the cloud committed the batch", func() bool { return len(cl.seqs()) > 0 })
			} else if n := len(cl.seqs()); n != 0 {
				t.Fatalf("the stalled cloud stored %d entries", n)
			}
			gw.kill()
			if _, acked := gatewayOutbox(t, cfg); acked != 0 {
				t.Fatalf("the gateway recorded acked %d though no acknowledgement reached it", acked)
			}

			cl.sim.SetFault(cloudsim.Fault{})
			t0 := time.Now()
			gw = startLogChild(t, cfg, apiPort)
			press(t, brokerPort, "zigbee2mqtt/room201/sos", `{"action":"emergency"}`)
			t.Logf("restarted in %v", time.Since(t0))
			eventually(t, "both presses in the cloud", func() bool { return len(cl.raised()) == 2 })
			t.Logf("drained in %v", time.Since(t0))
			gw.term()
			seqs := cl.seqs()
			exactlyOnceInOrder(t, seqs)
			pending, acked := gatewayOutbox(t, cfg)
			// The gateway may have stopped between the cloud's commit and its own
			// acknowledgement's: then it still holds (and would send again) the tail.
			if acked > seqs[len(seqs)-1] {
				t.Errorf("gateway acked %d; the cloud holds only 1..%d", acked, seqs[len(seqs)-1])
			}
			// Nothing lost: what the cloud holds and what still waits are 1..n together.
			for i, e := range pending {
				if e.Seq != acked+int64(i)+1 {
					t.Errorf("outbox after the acknowledged %d: seq %d at %d (a hole or a repeat)", acked, e.Seq, i)
				}
			}
			if len(pending) > 0 && pending[len(pending)-1].Seq < seqs[len(seqs)-1] {
				t.Errorf("the cloud holds seqs the gateway never had")
			}
			t.Logf("cloud 1..%d, gateway acked %d, %d pending", len(seqs), acked, len(pending))
			if got := strings.Join(cl.raised(), " "); got != "room-101-sos room-201-sos" {
				t.Errorf("raised in the cloud: %s", got)
			}
			if strings.Contains(gw.log(), "cloud-conflict") {
				t.Errorf("the resent batch conflicted (its content changed):\n%s", gw.log())
			}
		})
	}
}

// TestCloudFatalAlarmClosesAfterRestart: the token was refused and the technical
// alarm raised; the site fixes the token file and restarts the gateway; once an
// upload works, the alarm left open by the earlier run closes.
func TestCloudFatalAlarmClosesAfterRestart(t *testing.T) {
	cl := startCloud(t)
	brokerPort, apiPort := freePort(t), freePort(t)
	tok := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tok, []byte("not-the-gateways-token"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := cloudDemoConfig(t, apiPort, brokerPort, cl.url(), "  token_file: "+tok+"\n")
	open := func() (*Main, client, func()) {
		m := &Main{ConfigPath: cfg, Log: &lockedBuffer{}}
		ctx, cancel := context.WithCancel(context.Background())
		if err := m.Open(ctx); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- m.Run(ctx) }()
		<-m.Ready()
		return m, client{t: t, base: "http://" + m.APIAddr()}, func() { cancel(); <-done; _ = m.Close() }
	}
	m, c, stop := open()
	ingest(t, m, vakt.Event{Transmitter: "room-201-sos", Kind: vakt.EventEmergency, Source: "test"})
	technicianSees(t, c, "gateway-sync-cloud-auth")
	stop()

	if err := os.WriteFile(tok, []byte(demoToken), 0o600); err != nil {
		t.Fatal(err)
	}
	m, c, stop = open()
	defer stop()
	eventually(t, "an upload accepted", func() bool { return len(cl.raised()) > 0 })
	m.Cloud.CheckBacklog()
	eventually(t, "the earlier run's alarm closed", func() bool {
		m.Cloud.CheckBacklog()
		return !containsAlarm(openAlarms(t, c), "gateway-sync-cloud-auth")
	})
}

// eventually checks cond every 5 ms until it holds, failing after waitLimit. It is
// for state in another process or behind HTTP (cloudsim's database, the child
// gateway's /readyz, the gateway's outbox as the uploader empties it), which has no
// signal to wait on; in-process alarm changes are waited on with alarmWatch.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(waitLimit)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		}
	}
}

package main

import (
	"bufio"
	"database/sql"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/vakt/vakt/drivers/espa"
)

// These tests run the real gateway binary as a child process and kill it with SIGKILL
// at the two moments that matter for "durable before acknowledged".

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// TestMain removes the binary built for the package's tests when they end.
func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

func gatewayBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "vakt-gateway-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "gateway")
		out, err := exec.Command("go", "build", "-tags", "failpoint", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v: %s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

type child struct {
	cmd    *exec.Cmd
	stderr chan string
	exited chan struct{}
}

func startChild(t *testing.T, cfg string, apiPort int, env ...string) *child {
	t.Helper()
	cmd := exec.Command(gatewayBinary(t), "run", "-config", cfg)
	cmd.Env = append(os.Environ(), env...)
	errPipe, _ := cmd.StderrPipe()
	outPipe, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, stderr: make(chan string, 256), exited: make(chan struct{})}
	ready := make(chan struct{})
	go func() {
		// The JSON log on stdout: "gateway ready" is logged once every part runs.
		sc := bufio.NewScanner(outPipe)
		once := false
		for sc.Scan() {
			if !once && strings.Contains(sc.Text(), `"msg":"gateway ready"`) {
				once = true
				close(ready)
			}
		}
	}()
	go func() {
		sc := bufio.NewScanner(errPipe)
		for sc.Scan() {
			select {
			case c.stderr <- sc.Text():
			default:
			}
		}
	}()
	go func() { _ = cmd.Wait(); close(c.exited) }()
	t.Cleanup(c.kill)
	select {
	case <-ready:
	case <-c.exited:
		var last []string
		for len(c.stderr) > 0 {
			last = append(last, <-c.stderr)
		}
		t.Fatalf("gateway exited during start; stderr:\n%s", strings.Join(last, "\n"))
	case <-time.After(waitLimit):
		t.Fatalf("gateway not ready within %v", waitLimit)
	}
	return c
}

func (c *child) kill() {
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	<-c.exited
}

// waitLog waits for a line containing s.
func waitLog(t *testing.T, lines <-chan string, s string) {
	t.Helper()
	timeout := time.After(waitLimit)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("log ended before %q", s)
			}
			if strings.Contains(l, s) {
				return
			}
		case <-timeout:
			t.Fatalf("no log line with %q", s)
		}
	}
}

// openAlarms lists every open alarm as the nurse lead sees them.
func openAlarms(t *testing.T, c client) string {
	t.Helper()
	code, body := c.do("GET", "/api/v1/alarms", c.login("lead-1", "demo"), nil)
	if code != http.StatusOK {
		t.Fatalf("alarms: %d %s", code, body)
	}
	return string(body)
}

// TestKilledAfterPubackKeepsAlarm: the broker saw the gateway's PUBACK, then the
// gateway died. The alarm must be on disk and offered again after the restart.
func TestKilledAfterPubackKeepsAlarm(t *testing.T) {
	brokerPort, apiPort := freePort(t), freePort(t)
	logs, _ := mosquitto(t, brokerPort)
	cfg := demoConfig(t, apiPort, brokerPort, false)
	gw := startChild(t, cfg, apiPort)
	waitLog(t, logs, "Sending SUBACK to vakt-")
	c := client{t: t, base: fmt.Sprintf("http://127.0.0.1:%d", apiPort)}
	token := c.login("nurse-1", "demo") // nurse-1's phone was logged in before the crash

	press(t, brokerPort, "zigbee2mqtt/room101/sos", `{"action":"emergency","battery":97}`)
	waitLog(t, logs, "Received PUBACK from vakt-")
	gw.kill()

	startChild(t, cfg, apiPort)
	// The phone reconnects with the token it already had: no new login needed.
	offer := c.phone("nurse-1", token).expect("offer")
	if offer.Alarm.Transmitter.ID != "room-101-sos" || offer.Alarm.Count != 1 {
		t.Fatalf("offer after restart = %+v", *offer.Alarm)
	}
	if n := strings.Count(openAlarms(t, c), `"id":"a-`); n != 1 {
		t.Fatalf("%d open alarms after restart, want 1", n)
	}
}

// TestKilledBeforeCommitBrokerRedelivers: the gateway died holding the press but
// before committing it, so it never acknowledged it; the broker redelivers to the
// restarted gateway (persistent session) and exactly one alarm results.
func TestKilledBeforeCommitBrokerRedelivers(t *testing.T) {
	brokerPort, apiPort := freePort(t), freePort(t)
	logs, _ := mosquitto(t, brokerPort)
	cfg := demoConfig(t, apiPort, brokerPort, false)
	gw := startChild(t, cfg, apiPort, "VAKT_FAILPOINT=before-commit")
	waitLog(t, logs, "Sending SUBACK to vakt-")

	press(t, brokerPort, "zigbee2mqtt/room101/sos", `{"action":"emergency","battery":97}`)
	waitLog(t, gw.stderr, "failpoint: before-commit")
	gw.kill()

	startChild(t, cfg, apiPort)
	c := client{t: t, base: fmt.Sprintf("http://127.0.0.1:%d", apiPort)}
	offer := c.phone("nurse-1", c.login("nurse-1", "demo")).expect("offer")
	if offer.Alarm.Transmitter.ID != "room-101-sos" || offer.Alarm.Count != 1 {
		t.Fatalf("offer after redelivery = %+v", *offer.Alarm)
	}
	if n := strings.Count(openAlarms(t, c), `"id":"a-`); n != 1 {
		t.Fatalf("%d open alarms after redelivery, want 1", n)
	}
}

// TestSerialKilledBeforeAckCallSystemResends: the gateway dies holding a call block it
// has not committed; the call system got no ACK, so it sends the block again to the
// restarted gateway, and exactly one alarm results.
func TestSerialKilledBeforeAckCallSystemResends(t *testing.T) {
	cs := newCallSystem(t)
	apiPort := freePort(t)
	cfg := serialConfig(t, cs.path, apiPort, freePort(t))
	gw := startChild(t, cfg, apiPort, "VAKT_FAILPOINT=before-commit")
	cs.send(espa.EOT, '1', espa.ENQ, '2', espa.ENQ) // idle, poll itself, select us
	cs.expect(espa.TokenACK)
	cs.send(callBlock("ROOM 201")...)
	waitLog(t, gw.stderr, "failpoint: before-commit")
	gw.kill()
	if !cs.Silent() {
		t.Fatal("the gateway answered a block it had not committed")
	}

	startChild(t, cfg, apiPort)
	cs.send(espa.EOT, '1', espa.ENQ, '2', espa.ENQ) // the call system tries again
	cs.expect(espa.TokenACK)
	cs.send(callBlock("ROOM 201")...)
	cs.expect(espa.TokenACK)
	cs.send(espa.EOT)
	c := client{t: t, base: fmt.Sprintf("http://127.0.0.1:%d", apiPort)}
	if offer := c.phone("nurse-4", c.login("nurse-4", "demo")).expect("offer"); offer.Alarm.Transmitter.ID != "room-201-call" || offer.Alarm.Count != 1 {
		t.Fatalf("offer after resend = %+v", *offer.Alarm)
	}
	if n := strings.Count(openAlarms(t, c), `"id":"a-`); n != 1 {
		t.Fatalf("%d open alarms, want 1", n)
	}
}

// TestSerialKilledAfterAckKeepsAlarm: once the call system has its ACK the alarm is on
// disk; a gateway killed right then offers it again after the restart.
func TestSerialKilledAfterAckKeepsAlarm(t *testing.T) {
	cs := newCallSystem(t)
	apiPort := freePort(t)
	cfg := serialConfig(t, cs.path, apiPort, freePort(t))
	gw := startChild(t, cfg, apiPort)
	cs.send(espa.EOT, '1', espa.ENQ, '2', espa.ENQ) // idle, poll itself, select us
	cs.expect(espa.TokenACK)
	cs.send(callBlock("ROOM 201")...)
	cs.expect(espa.TokenACK)
	gw.kill()

	startChild(t, cfg, apiPort)
	c := client{t: t, base: fmt.Sprintf("http://127.0.0.1:%d", apiPort)}
	if offer := c.phone("nurse-4", c.login("nurse-4", "demo")).expect("offer"); offer.Alarm.Transmitter.ID != "room-201-call" {
		t.Fatalf("offer after restart = %+v", *offer.Alarm)
	}
}

// TestEmbeddedBrokerKilledAfterPubackKeepsAlarm: the default deployment. The embedded
// broker dies with the gateway and keeps no sessions on disk, so the button's PUBACK
// must already mean "committed": mosquitto_pub returns once it has its PUBACK, the
// gateway is killed at once, and the alarm is there after the restart.
func TestEmbeddedBrokerKilledAfterPubackKeepsAlarm(t *testing.T) {
	brokerPort, apiPort := freePort(t), freePort(t)
	cfg := demoConfig(t, apiPort, brokerPort, true)
	gw := startChild(t, cfg, apiPort)
	press(t, brokerPort, "zigbee2mqtt/room101/sos", `{"action":"emergency","battery":97}`) // returns after the PUBACK
	gw.kill()

	startChild(t, cfg, apiPort)
	c := client{t: t, base: fmt.Sprintf("http://127.0.0.1:%d", apiPort)}
	if offer := c.phone("nurse-1", c.login("nurse-1", "demo")).expect("offer"); offer.Alarm.Transmitter.ID != "room-101-sos" {
		t.Fatalf("offer after restart = %+v", *offer.Alarm)
	}
}

// siteAlarms lists every open alarm as the nurse lead of prodConfig sees them.
func siteAlarms(t *testing.T, apiPort int) string {
	t.Helper()
	c := client{t: t, base: fmt.Sprintf("http://127.0.0.1:%d", apiPort)}
	code, body := c.do("GET", "/api/v1/alarms", c.login("lead-1", siteLeadSecret), nil)
	if code != http.StatusOK {
		t.Fatalf("alarms: %d %s", code, body)
	}
	return string(body)
}

// TestEmbeddedBrokerEveryListenFormKilledAfterPuback: whatever drivers.broker.listen
// says — loopback, every interface (a site with Zigbee2MQTT on another box), an empty
// host, IPv6, a name — the bridge's PUBACK means the press is committed: the gateway
// is killed the moment the PUBACK arrives and the alarm is there after the restart.
func TestEmbeddedBrokerEveryListenFormKilledAfterPuback(t *testing.T) {
	for _, form := range []string{"127.0.0.1:%d", "0.0.0.0:%d", ":%d", "[::]:%d", "localhost:%d"} {
		t.Run(strings.TrimSuffix(form, "%d"), func(t *testing.T) {
			brokerPort, apiPort := freePort(t), freePort(t)
			cfg := prodConfig(t, apiPort, fmt.Sprintf(form, brokerPort))
			gw := startChild(t, cfg, apiPort)
			br, err := connectBridge(t, brokerPort, "test-z2m-bridge")
			if err != nil {
				t.Fatal(err)
			}
			if err := br.publish("zigbee2mqtt/room101/sos", `{"action":"emergency","battery":97}`); err != nil {
				t.Fatal(err)
			}
			gw.kill()

			startChild(t, cfg, apiPort)
			alarms := siteAlarms(t, apiPort)
			if n := strings.Count(alarms, `"id":"a-`); n != 1 || !strings.Contains(alarms, "room-101-sos") {
				t.Fatalf("after a PUBACKed press and SIGKILL: %d open alarms, want 1 on room-101-sos:\n%s", n, alarms)
			}
		})
	}
}

// campaign is a crash campaign against the gateway child process with its embedded
// broker listening on 0.0.0.0: publishers standing in for Zigbee2MQTT bridges send
// presses without pause, each with a unique sequence number, and record every PUBACK;
// the gateway is stopped (SIGKILL, or SIGTERM with term) at a random moment — after
// a random number of PUBACKs, while presses are in flight — and started again.
// Afterwards every PUBACKed press must be an event in the database.
type campaignResult struct {
	cycles, published, acked, lost int
	firstLost                      []int
}

func runCampaign(t *testing.T, cycles, maxAcks int, sig syscall.Signal) campaignResult {
	t.Helper()
	const publishers, window = 4, 16
	brokerPort, apiPort := freePort(t), freePort(t)
	cfg := prodConfig(t, apiPort, fmt.Sprintf("0.0.0.0:%d", brokerPort))
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0))

	var (
		mu        sync.Mutex
		acked     = map[int]bool{}
		published int
		next      int
	)
	res := campaignResult{cycles: cycles}
	for cycle := range cycles {
		gw := startChild(t, cfg, apiPort)
		// Stop after a random number of PUBACKs in this cycle, with presses in flight.
		target := 50 + rng.IntN(maxAcks)
		var cycleAcks atomic.Int64
		stopAt := make(chan struct{})
		var once sync.Once
		var wg sync.WaitGroup
		for p := range publishers {
			br, err := connectBridge(t, brokerPort, fmt.Sprintf("campaign-bridge-%d", p))
			if err != nil {
				t.Fatalf("cycle %d: %v", cycle, err)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer br.close()
				type inflight struct {
					seq int
					tok paho.Token
				}
				var q []inflight
				settle := func(f inflight) bool {
					ok := f.tok.WaitTimeout(waitLimit) && f.tok.Error() == nil
					if ok {
						mu.Lock()
						acked[f.seq] = true
						mu.Unlock()
						if cycleAcks.Add(1) == int64(target) {
							once.Do(func() { close(stopAt) })
						}
					}
					return ok
				}
				for {
					mu.Lock()
					seq := next
					next++
					published++
					mu.Unlock()
					tok := br.c.Publish("zigbee2mqtt/room101/sos", 1, false, fmt.Sprintf(`{"action":"emergency","seq":%d}`, seq))
					q = append(q, inflight{seq, tok})
					if len(q) < window {
						continue
					}
					ok := settle(q[0])
					q = q[1:]
					if !ok {
						for _, f := range q {
							settle(f)
						}
						return // the gateway is gone
					}
				}
			}()
		}
		select {
		case <-stopAt:
		case <-time.After(time.Minute):
			t.Fatalf("cycle %d: only %d PUBACKs in a minute", cycle, cycleAcks.Load())
		}
		_ = gw.cmd.Process.Signal(sig)
		<-gw.exited
		wg.Wait()
	}

	db, err := sql.Open("sqlite", "file:"+filepath.Join(filepath.Dir(cfg), "vakt.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT raw FROM events WHERE transmitter = 'room-101-sos'`)
	if err != nil {
		t.Fatal(err)
	}
	stored := map[int]bool{}
	for rows.Next() {
		var raw []byte
		if err := rows.Scan(&raw); err != nil {
			t.Fatal(err)
		}
		var p struct{ Seq *int }
		if json.Unmarshal(raw, &p) == nil && p.Seq != nil {
			stored[*p.Seq] = true
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	res.published, res.acked = published, len(acked)
	for seq := range acked {
		if !stored[seq] {
			res.lost++
			if len(res.firstLost) < 10 {
				res.firstLost = append(res.firstLost, seq)
			}
		}
	}
	t.Logf("campaign (%v): %d cycles, %d presses published, %d PUBACKed, %d events stored, %d PUBACKed presses lost",
		sig, res.cycles, res.published, res.acked, len(stored), res.lost)
	return res
}

// TestEmbeddedBrokerCrashCampaign: a few SIGKILL cycles under continuous publishing;
// no PUBACKed press may be missing from the database. VAKT_CAMPAIGN_CYCLES=50 runs a
// long campaign, VAKT_CAMPAIGN_MAX_ACKS=20000 longer cycles (scripts/crash-campaign.sh).
func TestEmbeddedBrokerCrashCampaign(t *testing.T) {
	cycles, maxAcks := envInt(t, "VAKT_CAMPAIGN_CYCLES", 3), envInt(t, "VAKT_CAMPAIGN_MAX_ACKS", 1500)
	if res := runCampaign(t, cycles, maxAcks, syscall.SIGKILL); res.lost > 0 {
		t.Fatalf("%d of %d PUBACKed presses lost after %d SIGKILLs (e.g. seq %v)", res.lost, res.acked, cycles, res.firstLost)
	}
}

// TestEmbeddedBrokerCleanRestartUnderLoad: a SIGTERM restart while presses keep
// arriving loses no PUBACKed press.
func TestEmbeddedBrokerCleanRestartUnderLoad(t *testing.T) {
	if res := runCampaign(t, envInt(t, "VAKT_CAMPAIGN_TERM_CYCLES", 2), envInt(t, "VAKT_CAMPAIGN_MAX_ACKS", 1500), syscall.SIGTERM); res.lost > 0 {
		t.Fatalf("%d of %d PUBACKed presses lost over clean restarts (e.g. seq %v)", res.lost, res.acked, res.firstLost)
	}
}

// envInt is a positive number from the environment, or def when unset.
func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive number", name, s)
	}
	return n
}

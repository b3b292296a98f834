package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/gorilla/websocket"
	vakt "github.com/vakt/vakt"
	"github.com/vakt/vakt/internal/mosquittotest"
)

// The helpers here drive the gateway the way its users do: mosquitto_pub for a
// button, HTTP and a real WebSocket client for a phone.

const waitLimit = 10 * time.Second

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// demoConfig writes a copy of the demo configuration with its own database, ports
// and broker, so tests never touch data/ or fixed ports.
func demoConfig(t testing.TB, apiPort, brokerPort int, embedded bool) string {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("..", "..", "config", "examples", "demo.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	s := string(src)
	replace := func(old, new string) {
		if !strings.Contains(s, old) {
			t.Fatalf("demo.yaml no longer contains %q", old)
		}
		s = strings.ReplaceAll(s, old, new)
	}
	replace("path: ../../data/vakt.db", "path: "+filepath.Join(dir, "vakt.db"))
	replace("listen: 127.0.0.1:8080", fmt.Sprintf("listen: 127.0.0.1:%d", apiPort))
	replace("listen: 127.0.0.1:1883", fmt.Sprintf("listen: 127.0.0.1:%d", brokerPort))
	// The alarm receiving centre: a free port nobody listens on, not a demo
	// receiver someone may be running on 7777 (arcConfig points it at one).
	replace("address: 127.0.0.1:7777", fmt.Sprintf("address: 127.0.0.1:%d", freePort(t)))
	if !embedded {
		// An external broker (Mosquitto) on brokerPort: the driver connects to it.
		s = disableEmbeddedBroker(t, s)
		replace("  mqtt:\n    enabled: true\n", fmt.Sprintf("  mqtt:\n    enabled: true\n    url: tcp://127.0.0.1:%d\n", brokerPort))
	}
	// No test syncs with whatever listens on the demo's cloud port; the cloud
	// tests (cloud_test.go) point it at their own cloudsim.
	replace("cloud:\n  enabled: true\n", "cloud:\n  enabled: false\n")
	path := filepath.Join(dir, "gateway.yaml")
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// disableEmbeddedBroker flips drivers.broker.enabled to false.
func disableEmbeddedBroker(t testing.TB, s string) string {
	t.Helper()
	lines := strings.Split(s, "\n")
	inBroker := false
	for i, l := range lines {
		trim := strings.TrimSpace(l)
		if trim == "broker:" {
			inBroker = true
			continue
		}
		if inBroker && strings.HasPrefix(trim, "enabled:") {
			lines[i] = strings.Replace(l, "true", "false", 1)
			return strings.Join(lines, "\n")
		}
	}
	t.Fatal("demo.yaml has no drivers.broker.enabled")
	return s
}

// mosquitto starts a real Mosquitto process on port, owned by the test, with the
// shared settings of firmware-notes/mosquitto.conf (internal/mosquittotest): it
// returns once the broker logged that it runs. Its log goes to the returned channel
// line by line (crash tests watch it for PUBACKs).
func mosquitto(t testing.TB, port int) (logs <-chan string, stop func()) {
	t.Helper()
	b := mosquittotest.Start(t, mosquittotest.Options{Port: port, LogAll: true})
	return b.Logs, b.Kill
}

// press publishes like a Zigbee2MQTT bridge does: QoS 1.
func press(t *testing.T, port int, topic, payload string) {
	t.Helper()
	out, err := exec.Command("mosquitto_pub", "-h", "127.0.0.1", "-p", fmt.Sprint(port),
		"-q", "1", "-i", "test-z2m-bridge", "-t", topic, "-m", payload).CombinedOutput()
	if err != nil {
		t.Fatalf("mosquitto_pub: %v: %s", err, out)
	}
}

type client struct {
	t    testing.TB
	base string
}

func (c client) do(method, path, token string, body any) (int, []byte) {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, c.base+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func (c client) login(staff, secret string) string {
	c.t.Helper()
	code, body := c.do("POST", "/api/v1/sessions", "", map[string]string{"staff_id": staff, "secret": secret})
	if code != http.StatusCreated {
		c.t.Fatalf("login %s: %d %s", staff, code, body)
	}
	var r struct{ Token string }
	_ = json.Unmarshal(body, &r)
	return r.Token
}

type pushMsg struct {
	Type    string `json:"type"`
	AlarmID string `json:"alarm_id"`
	By      string `json:"by"`
	Alarm   *struct {
		ID          string `json:"id"`
		Kind        string `json:"kind"`
		Priority    int    `json:"priority"`
		State       string `json:"state"`
		Tier        int    `json:"tier"`
		Count       int    `json:"count"`
		Assignee    *string
		Transmitter struct {
			ID   string `json:"id"`
			Room string `json:"room"`
		} `json:"transmitter"`
	} `json:"alarm"`
}

func (m pushMsg) id() string {
	if m.Alarm != nil {
		return m.Alarm.ID
	}
	return m.AlarmID
}

// phone is a staff member's WebSocket. Like the real app it confirms every offer
// as delivered the moment it arrives.
type phone struct {
	t     testing.TB
	staff string
	ws    *websocket.Conn
	msgs  chan pushMsg
}

func (c client) phone(staff, token string) *phone {
	c.t.Helper()
	url := "ws" + strings.TrimPrefix(c.base, "http") + "/api/v1/stream?token=" + token
	ws, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		c.t.Fatalf("phone %s: %v", staff, err)
	}
	p := &phone{t: c.t, staff: staff, ws: ws, msgs: make(chan pushMsg, 256)}
	go func() {
		defer close(p.msgs)
		for {
			_, data, err := ws.ReadMessage()
			if err != nil {
				return
			}
			var m pushMsg
			if json.Unmarshal(data, &m) != nil {
				continue
			}
			if m.Type == "offer" {
				_ = ws.WriteJSON(map[string]string{"type": "delivered", "alarm_id": m.id()})
			}
			p.msgs <- m
		}
	}()
	c.t.Cleanup(func() { ws.Close() })
	return p
}

// expect waits for the next message of type typ (others are skipped).
func (p *phone) expect(typ string) pushMsg {
	p.t.Helper()
	timeout := time.After(waitLimit)
	for {
		select {
		case m, ok := <-p.msgs:
			if !ok {
				p.t.Fatalf("%s: stream closed while waiting for %q", p.staff, typ)
			}
			if m.Type == typ {
				return m
			}
		case <-timeout:
			p.t.Fatalf("%s: no %q within %v", p.staff, typ, waitLimit)
		}
	}
}

// quiet asserts nothing of type typ is already queued for the phone (used after a
// later message proves the earlier ones have arrived).
func (p *phone) none(typ string) {
	p.t.Helper()
	for {
		select {
		case m := <-p.msgs:
			if m.Type == typ {
				p.t.Fatalf("%s: unexpected %q for %s", p.staff, typ, m.id())
			}
		default:
			return
		}
	}
}

// Credentials of prodConfig (not sample values: it is not a demo).
const (
	siteZ2MUser, siteZ2MPass = "zigbee2mqtt", "Zq8-crash-41x"
	siteLeadSecret           = "Lk5-crash-93v"
)

// prodConfig writes a minimal production-mode (site.demo: false) configuration whose
// embedded broker listens on brokerListen, the way a site with Zigbee2MQTT on another
// box writes it (0.0.0.0:1883). Zigbee2MQTT logs in as siteZ2MUser; the nurse lead
// (lead-1, secret siteLeadSecret) sees every open alarm.
func prodConfig(t testing.TB, apiPort int, brokerListen string) string {
	t.Helper()
	dir := t.TempDir()
	body := fmt.Sprintf(`site: {id: crash-site, name: Crash site}
zones: [{id: east, name: East wing, floor: 1}]
roles: [nurse, nurse-lead]
transmitters:
  - {id: room-101-sos, kind: sos-pendant, driver: zigbee2mqtt, address: room101/sos, room: "101", zone: east, floor: 1}
staff:
  - {id: lead-1, name: Lead, roles: [nurse-lead], zone: east, secret: %q}
policies:
  - name: everyone
    tiers: [{target: site, wait: 1m}]
drivers:
  broker:
    enabled: true
    listen: %q
    clients:
      - username: %s
        password: %q
        publish: ["zigbee2mqtt/#"]
        subscribe: ["zigbee2mqtt/#"]
  mqtt:
    enabled: true
    base_topic: zigbee2mqtt
api:
  listen: 127.0.0.1:%d
  see_all_roles: [nurse-lead]
storage:
  path: %s
`, siteLeadSecret, brokerListen, siteZ2MUser, siteZ2MPass, apiPort, filepath.Join(dir, "vakt.db"))
	path := filepath.Join(dir, "gateway.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// bridge is a raw MQTT publisher standing in for the Zigbee2MQTT bridge: paho, QoS 1,
// with the site's Zigbee2MQTT credentials. A publish returns once the broker's PUBACK
// arrived (or the connection failed).
type bridge struct {
	t testing.TB
	c paho.Client
}

func connectBridge(t testing.TB, brokerPort int, id string) (*bridge, error) {
	t.Helper()
	o := paho.NewClientOptions().
		AddBroker(fmt.Sprintf("tcp://127.0.0.1:%d", brokerPort)).
		SetClientID(id).
		SetUsername(siteZ2MUser).
		SetPassword(siteZ2MPass).
		SetCleanSession(true).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetConnectTimeout(waitLimit).
		SetWriteTimeout(waitLimit)
	c := paho.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(waitLimit) {
		return nil, fmt.Errorf("connect to 127.0.0.1:%d timed out", brokerPort)
	}
	if err := tok.Error(); err != nil {
		return nil, err
	}
	b := &bridge{t: t, c: c}
	t.Cleanup(b.close)
	return b, nil
}

func (b *bridge) close() { b.c.Disconnect(0) }

// publish sends one QoS 1 message and reports whether the broker acknowledged it.
func (b *bridge) publish(topic, payload string) error {
	tok := b.c.Publish(topic, 1, false, payload)
	if !tok.WaitTimeout(waitLimit) {
		return fmt.Errorf("publish %s: no PUBACK within %v", topic, waitLimit)
	}
	return tok.Error()
}

// containsAlarm reports whether an alarm list (GET /api/v1/alarms) holds an alarm of
// the transmitter.
func containsAlarm(list, transmitter string) bool {
	return strings.Contains(list, `"id":"a-`) && strings.Contains(list, `"id":"`+transmitter+`"`)
}

// alarmWatch is an Observer of the gateway (Main.Observers): it receives every
// committed alarm change, so a test waits on the commit itself instead of polling.
type alarmWatch struct{ ch chan vakt.Alarm }

func newAlarmWatch() *alarmWatch { return &alarmWatch{ch: make(chan vakt.Alarm, 4096)} }

func (w *alarmWatch) AlarmChanged(a vakt.Alarm) {
	select {
	case w.ch <- a:
	default: // a test that stopped watching must not block the engine
	}
}

// until waits for a committed change of which cond holds.
func (w *alarmWatch) until(t testing.TB, what string, cond func(vakt.Alarm) bool) vakt.Alarm {
	t.Helper()
	timeout := time.After(waitLimit)
	for {
		select {
		case a := <-w.ch:
			if cond(a) {
				return a
			}
		case <-timeout:
			t.Fatalf("no committed alarm change with %s within %v", what, waitLimit)
			return vakt.Alarm{}
		}
	}
}

// offerIs reports whether staff's offer of alarm id has status st.
func offerIs(id string, staff vakt.StaffID, st vakt.OfferStatus) func(vakt.Alarm) bool {
	return func(a vakt.Alarm) bool {
		if string(a.ID) != id {
			return false
		}
		for _, o := range a.Offers {
			if o.Staff == staff && o.Status == st {
				return true
			}
		}
		return false
	}
}

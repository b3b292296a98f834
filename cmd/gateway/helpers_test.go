package main

import (
	"bufio"
	"bytes"
	"context"
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

	"github.com/gorilla/websocket"
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
	replace("url: tcp://127.0.0.1:1883", fmt.Sprintf("url: tcp://127.0.0.1:%d", brokerPort))
	replace("listen: 127.0.0.1:1883", fmt.Sprintf("listen: 127.0.0.1:%d", brokerPort))
	if !embedded {
		s = disableEmbeddedBroker(t, s)
	}
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

// mosquitto starts a real Mosquitto process on port, owned by the test. Its log goes
// to the returned channel line by line (crash tests watch it for PUBACKs).
func mosquitto(t testing.TB, port int) (logs <-chan string, stop func()) {
	t.Helper()
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		t.Fatal("mosquitto is not installed (apt-get install mosquitto; .ci/run does this)")
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "mosquitto.conf")
	// The settings firmware-notes recommend: no silent drops of queued QoS 1
	// messages, no Nagle delays; persistence so sessions survive.
	body := fmt.Sprintf(`listener %d 127.0.0.1
allow_anonymous true
persistence true
persistence_location %s/
max_queued_messages 100000
set_tcp_nodelay true
log_dest stderr
log_type all
`, port, dir)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", conf)
	// stderr, because Mosquitto buffers its stdout log when it is not a terminal.
	out, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ch := make(chan string, 4096)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			select {
			case ch <- sc.Text():
			default: // nobody is watching; never block the broker
			}
		}
		close(ch)
	}()
	waitPort(t, port)
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			_ = cmd.Process.Kill()
			_, _ = cmd.Process.Wait()
		}
	}
	t.Cleanup(stop)
	return ch, stop
}

func waitPort(t testing.TB, port int) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 100*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		time.Sleep(10 * time.Millisecond) // polling a port that is coming up
	}
	t.Fatalf("nothing listens on port %d", port)
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

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-time.After(5 * time.Millisecond): // polling for a state change, not a timing assumption
		}
	}
}

package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vakt/vakt/outbound/dc09"
)

// arcReceiver is a DC-09 receiver on loopback that reports every frame and, while
// holding, withholds its ACK until released: the centre that has not answered yet.
type arcReceiver struct {
	r       *dc09.Receiver
	addr    string
	frames  chan dc09.Received
	hold    chan bool // one value per frame: true withholds the ACK until release
	release chan struct{}
}

func startARCReceiver(t *testing.T) *arcReceiver {
	t.Helper()
	a := &arcReceiver{frames: make(chan dc09.Received, 64), release: make(chan struct{})}
	a.r = &dc09.Receiver{OnFrame: func(rc dc09.Received) {
		a.frames <- rc
		if a.holding() {
			<-a.release
		}
	}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a.addr = ln.Addr().String()
	go a.r.Serve(ln)
	t.Cleanup(func() { a.r.Close() })
	return a
}

var holdState = make(chan bool, 1)

func (a *arcReceiver) holding() bool {
	select {
	case h := <-holdState:
		holdState <- h
		return h
	default:
		return false
	}
}

func (a *arcReceiver) setHold(h bool) {
	select {
	case <-holdState:
	default:
	}
	holdState <- h
}

// next is the next frame that is not a NULL link test.
func (a *arcReceiver) next(t *testing.T) dc09.Frame {
	t.Helper()
	timeout := time.After(waitLimit)
	for {
		select {
		case rc := <-a.frames:
			if rc.Frame.ID == dc09.Null {
				continue
			}
			if rc.Reply != dc09.Ack {
				t.Fatalf("receiver answered %s to %+v: %v", rc.Reply, rc.Frame, rc.Err)
			}
			return rc.Frame
		case <-timeout:
			t.Fatal("timed out waiting for a DC-09 frame")
		}
	}
}

// arcConfig is the demo with the embedded broker, its ARC pointed at addr and the
// emergency tiers shortened to 1 s, so an alarm nobody accepts is forwarded at once.
func arcConfig(t *testing.T, apiPort, brokerPort int, addr string) string {
	t.Helper()
	path := demoConfig(t, apiPort, brokerPort, true)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := regexp.MustCompile(`address: 127\.0\.0\.1:\d+`).ReplaceAllString(string(b), "address: "+addr)
	for _, r := range [][2]string{
		{"        wait: 30s\n        include_busy: true", "        wait: 1s\n        include_busy: true"},
		{"      - target: zone\n        wait: 30s", "      - target: zone\n        wait: 1s"},
		{"      - target: site\n        wait: 60s\n      # Nobody", "      - target: site\n        wait: 1s\n      # Nobody"},
	} {
		if !strings.Contains(s, r[0]) {
			t.Fatalf("demo.yaml no longer contains %q", r[0])
		}
		s = strings.Replace(s, r[0], r[1], 1)
	}
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// alarmOf finds the open alarm of a transmitter, as the nurse lead sees it.
func alarmOf(t *testing.T, c client, transmitter string) string {
	t.Helper()
	var list []struct {
		ID          string `json:"id"`
		Transmitter struct {
			ID string `json:"id"`
		} `json:"transmitter"`
	}
	if err := json.Unmarshal([]byte(openAlarms(t, c)), &list); err != nil {
		t.Fatal(err)
	}
	for _, a := range list {
		if a.Transmitter.ID == transmitter {
			return a.ID
		}
	}
	t.Fatalf("no open alarm of %s", transmitter)
	return ""
}

// finish accepts, attends and completes an alarm as staff.
func finish(t *testing.T, c client, staff, id string) {
	t.Helper()
	tok := c.login(staff, "demo")
	for _, verb := range []string{"accept", "presence", "complete"} {
		if code, body := c.do("POST", "/api/v1/alarms/"+id+"/"+verb, tok, nil); code != http.StatusOK {
			t.Fatalf("%s %s: %d %s", verb, id, code, body)
		}
	}
}

// TestKilledBeforeARCAckResends: the gateway is killed with SIGKILL between
// routing's forward and the centre's ACK. After the restart the forward is sent
// again with the same content and sequence number; a forward of an alarm completed
// on site before its ACK is never sent again; completing the forwarded alarm sends
// its restore (qualifier 3).
func TestKilledBeforeARCAckResends(t *testing.T) {
	arc := startARCReceiver(t)
	brokerPort, apiPort := freePort(t), freePort(t)
	cfg := arcConfig(t, apiPort, brokerPort, arc.addr)
	arc.setHold(true)
	gw := startChild(t, cfg, apiPort)
	c := client{t: t, base: fmt.Sprintf("http://127.0.0.1:%d", apiPort)}

	press(t, brokerPort, "zigbee2mqtt/room101/sos", `{"action":"emergency","battery":97}`)
	first := arc.next(t) // held: no ACK
	if first.Data != "#1234|1101 01 101" || first.Seq == 0 {
		t.Fatalf("forward = %+v, want Contact ID 1101 group 01 zone 101", first)
	}
	// A second emergency is forwarded too, queued behind the first; it is completed
	// on site before the centre answered, which withdraws its forward.
	press(t, brokerPort, "zigbee2mqtt/room102/sos", `{"action":"emergency","battery":97}`)
	second := alarmOf(t, c, "room-102-sos")
	eventually(t, "the second alarm forwarded", func() bool {
		return strings.Contains(openAlarms(t, c), `"state":"forwarded"`) &&
			strings.Count(openAlarms(t, c), `"state":"forwarded"`) == 2
	})
	finish(t, c, "nurse-1", second)
	gw.kill()
	arc.setHold(false)
	close(arc.release) // the ACK goes to a dead connection

	startChild(t, cfg, apiPort)
	again := arc.next(t)
	if again.Data != first.Data || again.Seq != first.Seq || again.Account != first.Account {
		t.Fatalf("after restart sent %+v, want the same message as %+v", again, first)
	}
	// The next frame is the restore of the first alarm, not the withdrawn forward.
	finish(t, c, "nurse-1", alarmOf(t, c, "room-101-sos"))
	restore := arc.next(t)
	if restore.Data != "#1234|3101 01 101" {
		t.Fatalf("after completion sent %+v, want the restore 3101 01 101 (the withdrawn forward of zone 102 must never go out)", restore)
	}
}

package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	vakt "github.com/vakt/vakt"
	"github.com/vakt/vakt/drivers/espa"
	"github.com/vakt/vakt/internal/espatest"
)

// callSystem is a nurse call system on the master side of a pseudo-terminal
// (internal/espatest); the gateway opens the slave side through tarm/serial, the
// real serial code path, by a symlink as /dev/serial/by-id/... would be.
type callSystem struct {
	*espatest.CallSystem
	t    testing.TB
	path string
}

func newCallSystem(t testing.TB) *callSystem {
	t.Helper()
	cs := espatest.New(t)
	link := filepath.Join(t.TempDir(), "usb-nurse-call")
	if err := os.Symlink(cs.SlavePath, link); err != nil {
		t.Fatal(err)
	}
	return &callSystem{CallSystem: cs, t: t, path: link}
}

func (cs *callSystem) send(b ...byte)                       { cs.Send(b...) }
func (cs *callSystem) next() espa.Token                     { return cs.Next() }
func (cs *callSystem) expect(typ espa.TokenType) espa.Token { return cs.ExpectType(typ) }

// pollUntilSelected polls the gateway, as a Control Station does, until it has
// something to send and selects the call system ('1' ENQ).
func (cs *callSystem) pollUntilSelected() {
	cs.t.Helper()
	for range 100 {
		cs.send(espa.EOT, '2', espa.ENQ)
		switch tok := cs.next(); tok.Type {
		case espa.TokenEOT: // nothing to send yet
		case espa.TokenENQ:
			if tok.Addr != '1' {
				cs.t.Fatalf("gateway selected %q, want the call system '1'", tok.Addr)
			}
			return
		default:
			cs.t.Fatalf("gateway answered a poll with %v", tok)
		}
	}
	cs.t.Fatal("gateway never had a status block to send")
}

// serialConfig is the demo site with one ESPA port in the common role: the call
// system (address 1) is Control Station and selects the gateway (address 2).
func serialConfig(t testing.TB, device string, apiPort, brokerPort int) string {
	t.Helper()
	path := demoConfig(t, apiPort, brokerPort, true)
	b, _ := os.ReadFile(path)
	port := fmt.Sprintf(`drivers:
  serial:
    - name: nurse-call
      device: %s
      baud: 9600
      data_bits: 7
      parity: even
      stop_bits: 2
      role: slave
      address: "2"
      peer: "1"
      status_blocks: true
      rules:
        - call_address: "550"
          text: 'ROOM (\d+)'
          transmitter: room-$1-call
      fallback: nurse-call-unknown
`, device)
	s := strings.Replace(string(b), "drivers:\n", port, 1)
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func callBlock(msg string) []byte {
	return espa.Encode(espa.CallBlock(espa.Call{CallAddress: "550", Message: msg, CallType: espa.CallStandard, Priority: 3}))
}

// TestNurseCallReachesNearestPhone is issue 3's promise end to end: a call block from
// the wired nurse call system → ACK after commit → an offer on the nearest on-duty
// phone → status blocks back to the call system as the alarm moves.
func TestNurseCallReachesNearestPhone(t *testing.T) {
	cs := newCallSystem(t)
	_, c := startGateway(t, serialConfig(t, cs.path, freePort(t), freePort(t)), nil)
	nurse4 := c.phone("nurse-4", c.login("nurse-4", "demo")) // 4 m from room 201, same floor
	nurse1 := c.phone("nurse-1", c.login("nurse-1", "demo")) // 5 m away, but a floor down

	cs.send(espa.EOT, '1', espa.ENQ, '2', espa.ENQ) // idle, poll itself, select us
	cs.expect(espa.TokenACK)
	cs.send(callBlock("ROOM 201")...)
	cs.expect(espa.TokenACK) // only after the alarm is on disk
	cs.send(espa.EOT)

	offer := nurse4.expect("offer")
	if offer.Alarm.Transmitter.ID != "room-201-call" || offer.Alarm.Kind != "call" || offer.Alarm.Transmitter.Room != "201" {
		t.Fatalf("offer = %+v", *offer.Alarm)
	}

	// Polled, the gateway becomes Temporary Master and tells the call system the
	// call was paged (status 3), then returns the line.
	cs.pollUntilSelected()
	cs.send(espa.ACK)
	status := cs.expect(espa.TokenBlock)
	if want := espa.Encode(espa.StatusBlock("550", espa.StatusPaged)); string(status.Raw) != string(want) {
		t.Fatalf("status block %q, want %q", status.Raw, want)
	}
	cs.send(espa.ACK)
	cs.expect(espa.TokenEOT)

	if code, body := c.do("POST", "/api/v1/alarms/"+offer.Alarm.ID+"/accept", c.login("nurse-4", "demo"), nil); code != http.StatusOK {
		t.Fatalf("accept: %d %s", code, body)
	}
	cs.pollUntilSelected()
	cs.send(espa.ACK)
	if want := espa.Encode(espa.StatusBlock("550", espa.StatusAcknowledged)); string(cs.expect(espa.TokenBlock).Raw) != string(want) {
		t.Fatal("no 'acknowledged by called party' status block after accept")
	}
	cs.send(espa.ACK)
	cs.expect(espa.TokenEOT)
	nurse1.none("offer")
}

// TestPagerTierCallsDECT: nobody accepts a call from room 201 in time, so the night
// policy's second tier pages the DECT handset "100" through the ESPA port: the paging
// system gets a call-to-pager block with the room and the kind, no name.
func TestPagerTierCallsDECT(t *testing.T) {
	m, _, cs, clock, watch, id := pagerSite(t)
	settle(t, m)
	clock.Advance(31 * time.Second)
	// The page is queued on the port when tier 2 starts; poll only after that.
	watch.until(t, "tier 2 (the pager)", func(a vakt.Alarm) bool { return string(a.ID) == id && a.Tier == 2 })
	settle(t, m)
	cs.pollUntilSelected()
	cs.send(espa.ACK)
	page := cs.expect(espa.TokenBlock)
	call, err := espa.ParseCall(page.Block)
	if err != nil || page.Block.Header != espa.HeaderCall || call.CallAddress != "100" || call.Message != "ROOM 201 CALL" {
		t.Fatalf("page block %v (%+v, %v), want a call to pager 100 saying ROOM 201 CALL", page, call, err)
	}
}

// pagerLine is the demo site with an ESPA port "dect" in the Control Station role
// toward a scripted paging system (internal/espatest.PagingSystem, address 2) that
// ignores a selection arriving in the EOT's burst, and a policy that pages the
// handset "100" first for an emergency in room 101. guard is the port's
// guard_time line ("" for the default). The gateway runs on the real clock: the
// link's timers are tens of milliseconds, and no escalation is waited for.
func pagerLine(t *testing.T, guard string) (*Main, client, *espatest.PagingSystem, *alarmWatch, int) {
	t.Helper()
	ps := espatest.NewPagingSystem(t, '2', '1')
	link := filepath.Join(t.TempDir(), "usb-dect")
	if err := os.Symlink(ps.SlavePath, link); err != nil {
		t.Fatal(err)
	}
	brokerPort := freePort(t)
	cfg := demoConfig(t, freePort(t), brokerPort, true)
	b, _ := os.ReadFile(cfg)
	port := fmt.Sprintf(`drivers:
  serial:
    - name: dect
      device: %s
      role: control-station
      address: "1"
      peer: "2"
%s      fallback: nurse-call-unknown
`, link, guard)
	policy := `policies:
  - name: page-101
    kinds: [emergency]
    rooms: ["101"]
    tiers:
      - {target: pager, pager: dect, call_address: "100", wait: 10m}
`
	s := strings.Replace(string(b), "drivers:\n", port, 1)
	s = strings.Replace(s, "policies:\n", policy, 1)
	if err := os.WriteFile(cfg, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	watch := newAlarmWatch()
	m, c := startGateway(t, cfg, nil, watch)
	return m, c, ps, watch, brokerPort
}

// isPage reports whether tok is a call-to-pager block for handset 100 saying ROOM
// 101 EMERGENCY.
func isPage(tok espa.Token) bool {
	call, err := espa.ParseCall(tok.Block)
	return err == nil && tok.Block.Header == espa.HeaderCall && call.CallAddress == "100" && call.Message == "ROOM 101 EMERGENCY"
}

// TestPagerGuardTimeSelectionHeard is issue 11 on a real line: the paging system
// ignores a selection that comes in the same burst as the EOT; with the default
// guard time the gateway's selection arrives on its own, the page is delivered,
// and the alarm is "paged" only once the paging system has ACKed it.
func TestPagerGuardTimeSelectionHeard(t *testing.T) {
	m, _, ps, watch, brokerPort := pagerLine(t, "")
	ps.SetHold(true)
	press(t, brokerPort, "zigbee2mqtt/room101/sos", `{"action":"emergency","battery":97}`)
	a := watch.until(t, "the emergency in room 101", func(a vakt.Alarm) bool { return a.Transmitter == "room-101-sos" })
	id := string(a.ID)

	var page espa.Token
	select {
	case page = <-ps.Blocks:
	case <-time.After(espatest.Wait):
		t.Fatalf("the paging system got no block (%d selections ignored as in the EOT's burst)", ps.IgnoredCount())
	}
	if !isPage(page) {
		t.Fatalf("page block %v, want a call to 100 saying ROOM 101 EMERGENCY", page)
	}
	if audited(t, m, "alarm.paged", id) {
		t.Fatal("alarm.paged recorded before the paging system's ACK")
	}
	ps.Release()
	eventually(t, "alarm.paged after the ACK", func() bool { return audited(t, m, "alarm.paged", id) })
}

// TestPagerNoGuardTimeRaisesLinkAlarm: with guard_time 0s (the old single-burst
// behaviour) the paging system never answers the selection; after repeated failures
// the technician sees exactly one technical alarm naming the port, and it closes
// when pages go through again. The unanswered selections are not counted as missed
// polls: the line is not reported silent too (one fault, one alarm).
func TestPagerNoGuardTimeRaisesLinkAlarm(t *testing.T) {
	_, c, ps, watch, brokerPort := pagerLine(t, "      guard_time: 0s\n")
	techToken := c.login("tech-1", "demo")
	press(t, brokerPort, "zigbee2mqtt/room101/sos", `{"action":"emergency","battery":97}`)
	const linkAlarm = "outbound-pager-dect"
	tech := watch.until(t, "the technical alarm on the pager line", func(a vakt.Alarm) bool { return a.Transmitter == linkAlarm })
	// The paging system is fixed at once (it now answers any selection; the page has
	// tries left), but holds its ACK of the page until the technician has looked.
	ps.SetHold(true)
	ps.SetStrict(false)
	if tech.Priority != vakt.PriorityTechnical || !tech.State.Open() {
		t.Fatalf("link alarm %+v, want an open technical alarm", tech)
	}
	if n := ps.IgnoredCount(); n < 3 {
		t.Fatalf("link alarm after %d ignored selections, want at least 3 failed transactions", n)
	}
	select {
	case tok := <-ps.Blocks:
		t.Fatalf("the paging system got %v though it never answered a selection", tok)
	default:
	}
	code, body := c.do("GET", "/api/v1/alarms", techToken, nil)
	if code != http.StatusOK {
		t.Fatalf("alarms as tech-1: %d %s", code, body)
	}
	if n := strings.Count(string(body), `"id":"`+linkAlarm+`"`); n != 1 {
		t.Fatalf("tech-1 sees %d alarms on %s, want exactly one: %s", n, linkAlarm, body)
	}
	if strings.Contains(string(body), `"id":"nurse-call-unknown"`) {
		t.Fatalf("the line is also reported silent, a second alarm for the same fault: %s", body)
	}

	// The page goes through and the link alarm closes, with no second one raised.
	select {
	case page := <-ps.Blocks:
		if !isPage(page) {
			t.Fatalf("page block %v, want a call to 100 saying ROOM 101 EMERGENCY", page)
		}
	case <-time.After(espatest.Wait):
		t.Fatal("no page once the paging system answers selections")
	}
	ps.Release()
	watch.until(t, "the link alarm closed", func(a vakt.Alarm) bool {
		if a.Transmitter == linkAlarm && a.ID != tech.ID {
			t.Fatalf("a second link alarm %s raised", a.ID)
		}
		return a.ID == tech.ID && !a.State.Open()
	})
}

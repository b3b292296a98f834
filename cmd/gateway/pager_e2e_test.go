package main

import (
	"context"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	vakt "github.com/vakt/vakt"
	"github.com/vakt/vakt/drivers/espa"
	"github.com/vakt/vakt/internal/fakeclock"
)

// pagerSite is serialConfig with a policy for room 201 whose second tier pages the
// DECT handset "100", and the gateway started in-process on a fake clock; the
// call from room 201 has been offered to nurse-4 and the status blocks drained.
func pagerSite(t *testing.T) (*Main, client, *callSystem, *fakeclock.Clock, *alarmWatch, string) {
	t.Helper()
	cs := newCallSystem(t)
	cfg := serialConfig(t, cs.path, freePort(t), freePort(t))
	b, _ := os.ReadFile(cfg)
	night := `policies:
  - name: night-201
    kinds: [call]
    rooms: ["201"]
    tiers:
      - {target: nearest, count: 1, wait: 30s}
      - {target: pager, pager: nurse-call, call_address: "100", wait: 60s}
`
	if err := os.WriteFile(cfg, []byte(strings.Replace(string(b), "policies:\n", night, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	clock := fakeclock.New(time.Date(2026, 11, 28, 2, 0, 0, 0, time.UTC))
	watch := newAlarmWatch()
	m, c := startGateway(t, cfg, clock, watch)
	nurse4 := c.phone("nurse-4", c.login("nurse-4", "demo"))
	cs.send(espa.EOT, '1', espa.ENQ, '2', espa.ENQ)
	cs.expect(espa.TokenACK)
	cs.send(callBlock("ROOM 201")...)
	cs.expect(espa.TokenACK)
	cs.send(espa.EOT)
	offer := nurse4.expect("offer")
	watch.until(t, "nurse-4's offer delivered", offerIs(offer.Alarm.ID, "nurse-4", vakt.OfferDelivered))
	drainStatus(cs)
	settle(t, m)
	return m, c, cs, clock, watch, offer.Alarm.ID
}

// audited reports whether the audit log holds action for alarm id.
func audited(t *testing.T, m *Main, action, id string) bool {
	t.Helper()
	entries, err := m.DB.AuditRange(context.Background(), 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Action == action && e.Subject == "alarm:"+id {
			return true
		}
	}
	return false
}

// nextPage polls the gateway and returns the next call-to-pager block for call
// address 100, ACKing every block on the way (status blocks included).
func nextPage(t *testing.T, cs *callSystem) espa.Call {
	t.Helper()
	for range 20 {
		cs.pollUntilSelected()
		cs.send(espa.ACK)
		for {
			tok := cs.ExpectType(espa.TokenBlock, espa.TokenEOT)
			if tok.Type == espa.TokenEOT {
				break
			}
			cs.send(espa.ACK)
			if tok.Block.Header != espa.HeaderCall {
				continue
			}
			if call, err := espa.ParseCall(tok.Block); err == nil && call.CallAddress == "100" {
				cs.ExpectType(espa.TokenBlock, espa.TokenEOT) // the rest of the transaction
				return call
			}
		}
	}
	t.Fatal("no page to 100")
	return espa.Call{}
}

// TestPagerPagedOnlyOnACKThenReset: the pager tier's block is "paged" in the
// alarm's history only after the paging system ACKed it, and when the alarm is
// then accepted on a phone the pager gets its reset (call type 1).
func TestPagerPagedOnlyOnACKThenReset(t *testing.T) {
	m, c, cs, clock, watch, id := pagerSite(t)
	clock.Advance(31 * time.Second)
	watch.until(t, "tier 2 (the pager)", func(a vakt.Alarm) bool { return string(a.ID) == id && a.Tier == 2 })
	settle(t, m)
	cs.pollUntilSelected()
	cs.send(espa.ACK)
	page := cs.expect(espa.TokenBlock)
	call, err := espa.ParseCall(page.Block)
	if err != nil || call.CallAddress != "100" || call.Message != "ROOM 201 CALL" || call.CallType != espa.CallStandard {
		t.Fatalf("page %+v, %v; want a standard call to 100 saying ROOM 201 CALL", call, err)
	}
	if audited(t, m, "alarm.paged", id) {
		t.Fatal("alarm.paged recorded before the paging system's ACK")
	}
	cs.send(espa.ACK)
	eventually(t, "alarm.paged after the ACK", func() bool { return audited(t, m, "alarm.paged", id) })
	cs.ExpectType(espa.TokenBlock, espa.TokenEOT)

	if code, body := c.do("POST", "/api/v1/alarms/"+id+"/accept", c.login("nurse-4", "demo"), nil); code != http.StatusOK {
		t.Fatalf("accept: %d %s", code, body)
	}
	reset := nextPage(t, cs)
	if reset.CallType != espa.CallReset {
		t.Fatalf("after the accept the pager got %+v, want a reset (call type 1)", reset)
	}
	eventually(t, "alarm.page_reset", func() bool { return audited(t, m, "alarm.page_reset", id) })
}

// TestPagerWithdrawnWhenAcceptedFirst: the page is queued but the paging system has
// not selected the gateway yet when a phone accepts the alarm: the page is dropped
// unsent, and no reset follows a page that never rang.
func TestPagerWithdrawnWhenAcceptedFirst(t *testing.T) {
	m, c, cs, clock, watch, id := pagerSite(t)
	clock.Advance(31 * time.Second)
	watch.until(t, "tier 2 (the pager)", func(a vakt.Alarm) bool { return string(a.ID) == id && a.Tier == 2 })
	settle(t, m)
	if code, body := c.do("POST", "/api/v1/alarms/"+id+"/accept", c.login("nurse-4", "demo"), nil); code != http.StatusOK {
		t.Fatalf("accept: %d %s", code, body)
	}
	watch.until(t, "the alarm accepted", func(a vakt.Alarm) bool { return string(a.ID) == id && a.Assignee != "" })
	settle(t, m)
	// Everything the gateway sends now: status blocks only, no page to 100.
	for {
		cs.send(espa.EOT, '2', espa.ENQ)
		if tok := cs.next(); tok.Type == espa.TokenEOT {
			break
		}
		cs.send(espa.ACK)
		for {
			tok := cs.ExpectType(espa.TokenBlock, espa.TokenEOT)
			if tok.Type == espa.TokenEOT {
				break
			}
			if call, err := espa.ParseCall(tok.Block); err == nil && tok.Block.Header == espa.HeaderCall && call.CallAddress == "100" {
				t.Fatalf("the gateway paged %+v after the alarm was accepted", call)
			}
			cs.send(espa.ACK)
		}
	}
	if audited(t, m, "alarm.paged", id) || audited(t, m, "alarm.page_reset", id) {
		t.Fatal("a withdrawn page was recorded as paged or reset")
	}
}

// TestFallbackAlarmCarriesCallText: a call no mapping rule knows raises the fallback
// alarm, and its alarm object carries the call address and display text, so the
// phone can show where to go.
func TestFallbackAlarmCarriesCallText(t *testing.T) {
	cs := newCallSystem(t)
	cfg := serialConfig(t, cs.path, freePort(t), freePort(t))
	clock := fakeclock.New(time.Date(2026, 11, 28, 14, 0, 0, 0, time.UTC))
	watch := newAlarmWatch()
	_, c := startGateway(t, cfg, clock, watch)
	cs.send(espa.EOT, '1', espa.ENQ, '2', espa.ENQ)
	cs.expect(espa.TokenACK)
	cs.send(espa.Encode(espa.CallBlock(espa.Call{CallAddress: "777", Message: "WC 2ND FLOOR", CallType: espa.CallStandard, Priority: 3}))...)
	cs.expect(espa.TokenACK)
	cs.send(espa.EOT)
	a := watch.until(t, "the fallback alarm", func(a vakt.Alarm) bool { return a.Transmitter == "nurse-call-unknown" })
	if a.Text != "call 777: WC 2ND FLOOR" {
		t.Fatalf("fallback alarm text = %q, want the call address and display text", a.Text)
	}
	if body := openAlarms(t, c); !strings.Contains(body, `"text":"call 777: WC 2ND FLOOR"`) {
		t.Fatalf("alarm JSON %s has no text with the call address and display text", body)
	}
}

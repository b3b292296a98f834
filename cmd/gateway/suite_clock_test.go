package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	vakt "github.com/vakt/vakt"
	"github.com/vakt/vakt/internal/fakeclock"
	"github.com/vakt/vakt/sync/wire"
)

// R5 suite (scripts/clock-jump.sh). The gateway runs in-process on fakeclock.Wall: the
// real clock and real timers, with a wall reading the test steps as NTP or an
// operator steps a system clock (Go's monotonic reading is kept, as it is on a real
// box). libfaketime cannot do this for a Go binary (Go reads the clock through the
// vDSO, not libc), so there is no child-process variant.

// clockConfig is the demo site with the emergency policy's first tier shortened to
// wait: the escalation timer the steps must not move.
func clockConfig(t *testing.T, apiPort, brokerPort int, url string, wait time.Duration) string {
	t.Helper()
	var path string
	if url != "" {
		path = cloudDemoConfig(t, apiPort, brokerPort, url, "")
	} else {
		path = demoConfig(t, apiPort, brokerPort, true)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	old := "        wait: 30s\n        include_busy: true\n"
	if !strings.Contains(string(b), old) {
		t.Fatal("demo.yaml's emergency policy changed")
	}
	s := strings.Replace(string(b), old, fmt.Sprintf("        wait: %s\n        include_busy: true\n", wait), 1)
	// The call policy's first tier waits half as long: its escalation re-arms the
	// engine's one timer, after the step, for the emergency's deadline.
	if old := "        wait: 45s\n"; !strings.Contains(s, old) {
		t.Fatal("demo.yaml's call policy changed")
	} else {
		s = strings.Replace(s, old, fmt.Sprintf("        wait: %s\n", wait/2), 1)
	}
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestSuiteClockJump: an emergency is offered to the nearest nurse, the wall clock
// steps by +1 h or -1 h, the engine re-arms its timer (a call's shorter tier ends), and the
// escalation to the next tier must come neither early (before the tier's wait, by the
// monotonic clock) nor an hour late (it must come within the usual wait bound).
func TestSuiteClockJump(t *testing.T) {
	const wait = 2 * time.Second
	for _, step := range []time.Duration{time.Hour, -time.Hour} {
		t.Run(fmt.Sprintf("step %v", step), func(t *testing.T) {
			apiPort, brokerPort := freePort(t), freePort(t)
			clk := &fakeclock.Wall{}
			watch := newAlarmWatch()
			m := &Main{ConfigPath: clockConfig(t, apiPort, brokerPort, "", wait), Log: io.Discard, Clock: clk, Observers: []vakt.Observer{watch}}
			c := runMain(t, m)
			c.phone("nurse-1", c.login("nurse-1", "demo")) // confirms delivery, accepts nothing

			// A call first (its tier waits wait/2), then the emergency (wait).
			press(t, brokerPort, "zigbee2mqtt/room103/button", `{"action":"single"}`)
			pressed := time.Now()
			press(t, brokerPort, "zigbee2mqtt/room101/sos", `{"action":"emergency"}`)
			first := watch.until(t, "the emergency offered", func(a vakt.Alarm) bool {
				return a.Transmitter == "room-101-sos" && len(a.Offers) > 0
			})
			clk.Jump(step)
			// The call's escalation fires next; the engine then re-arms its timer for
			// the emergency's deadline, computed before the step, from the stepped clock.
			watch.until(t, "the call escalated", func(a vakt.Alarm) bool {
				return a.Transmitter == "room-103-button" && a.Tier > 0
			})
			next := watch.until(t, "the escalation to the next tier", func(a vakt.Alarm) bool {
				return a.ID == first.ID && a.Tier > first.Tier
			})
			took := time.Since(pressed)
			if took < wait {
				t.Fatalf("tier %d → %d after %v, before the tier's wait of %v: the %v step fired the timer early",
					first.Tier, next.Tier, took, wait, step)
			}
			t.Logf("clock-jump: step %v: escalation after %v (tier wait %v): not early, not late",
				step, took.Round(time.Millisecond), wait)
		})
	}
}

// TestSuiteClockBoot1970: a box without a real-time clock boots at 1970 (no NTP
// yet). A press still reaches the nearest nurse; what is recorded before the clock
// is synchronised reaches the cloud flagged clock_synced=false, with the boot id and
// time since boot the cloud re-dates it by; after NTP steps the clock, new records
// are flagged synchronised. ClockSynced applies sync.ClockSynced's rule (not before
// 2024) to the stepped clock; the kernel's STA_UNSYNC half of that check cannot be
// stepped from a test (sync.TestClockSynced covers it with a fake).
func TestSuiteClockBoot1970(t *testing.T) {
	cl := startCloud(t)
	apiPort, brokerPort := freePort(t), freePort(t)
	clk := &fakeclock.Wall{}
	clk.Set(time.Date(1970, 1, 1, 0, 0, 7, 0, time.UTC))
	floor := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	m := &Main{ConfigPath: clockConfig(t, apiPort, brokerPort, cl.url(), 30*time.Second), Log: io.Discard, Clock: clk,
		ClockSynced: func() bool { return !clk.Now().Before(floor) }}
	c := runMain(t, m)
	nurse := c.phone("nurse-1", c.login("nurse-1", "demo"))

	press(t, brokerPort, "zigbee2mqtt/room101/sos", `{"action":"emergency"}`)
	if o := nurse.expect("offer"); o.Alarm.Transmitter.ID != "room-101-sos" {
		t.Fatalf("offer at 1970 = %+v", *o.Alarm)
	}
	eventually(t, "the 1970 alarm in the cloud", func() bool { return len(cl.raised()) >= 1 })
	clk.Set(time.Now()) // NTP
	press(t, brokerPort, "zigbee2mqtt/room201/sos", `{"action":"emergency"}`)
	eventually(t, "the second alarm in the cloud", func() bool { return len(cl.raised()) >= 2 })

	var unsynced, synced, alarms int
	for _, s := range cl.seqs() {
		e := cl.entry(s)
		if e.Boot == "" {
			t.Errorf("entry %d has no boot id", s)
		}
		if e.ClockSynced {
			synced++
			if e.At.Year() < 2024 {
				t.Errorf("entry %d at %v flagged synchronised", s, e.At)
			}
		} else {
			unsynced++
			if e.At.Year() != 1970 {
				t.Errorf("entry %d at %v flagged unsynchronised", s, e.At)
			}
		}
		if e.Kind != wire.KindAlarm {
			continue
		}
		var a wire.Alarm
		if err := json.Unmarshal(e.Body, &a); err != nil {
			t.Fatal(err)
		}
		if a.Transition != "alarm.raised" {
			continue
		}
		alarms++
		switch a.Transmitter {
		case "room-101-sos":
			if e.ClockSynced || e.At.Year() != 1970 {
				t.Errorf("the alarm raised at 1970: clock_synced %v at %v; want false at 1970", e.ClockSynced, e.At)
			}
		case "room-201-sos":
			if !e.ClockSynced {
				t.Errorf("the alarm raised after NTP: clock_synced false at %v", e.At)
			}
		}
	}
	if alarms != 2 {
		t.Fatalf("the cloud holds %d raised alarms, want 2", alarms)
	}
	t.Logf("clock-jump: boot at 1970: alarm offered; %d entries flagged clock_synced=false, %d true after NTP", unsynced, synced)
}

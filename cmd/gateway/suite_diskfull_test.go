package main

import (
	"bytes"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// R6 suite (scripts/disk-full.sh): the real gateway binary with its database on a
// 2 MB tmpfs that the test fills. A button pressed while the disk is full must still
// reach the nearest phone (from memory), the technician must get the "database not
// writable" technical alarm, the press must not be acknowledged to the button
// (nothing on disk yet), and nothing may crash. When space returns, the bridge sends
// the unacknowledged press again (as a QoS 1 publisher does after it reconnects): it
// is then acknowledged, the technical alarm closes, and after a restart the alarm is
// still there, counted once — it was committed.
//
// Mounting needs root (CAP_SYS_ADMIN). Where it fails the same test runs with an
// injected write failure instead (VAKT_FAILPOINT=disk-full:<file>, failpoint.go) and
// logs "disk-full: mode injected". VAKT_SUITE_DISKFULL_MODE=tmpfs makes a failed
// mount an error (the script's full run); =injected runs the fallback on purpose.
func TestSuiteDiskFull(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "db")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	mode := "tmpfs"
	if os.Getenv("VAKT_SUITE_DISKFULL_MODE") == "injected" {
		mode = "injected"
	} else if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", dir).CombinedOutput(); err != nil {
		if os.Getenv("VAKT_SUITE_DISKFULL_MODE") == "tmpfs" {
			t.Fatalf("mount a 2 MB tmpfs on %s: %v: %s (run as root)", dir, err, bytes.TrimSpace(out))
		}
		mode = "injected"
		t.Logf("disk-full: cannot mount a tmpfs (%v: %s): falling back to an injected write failure", err, bytes.TrimSpace(out))
	} else {
		t.Cleanup(func() {
			if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
				t.Errorf("umount %s: %v: %s", dir, err, out)
			}
		})
	}
	t.Logf("disk-full: mode %s", mode)

	apiPort, brokerPort := freePort(t), freePort(t)
	cfg := demoConfig(t, apiPort, brokerPort, true)
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	old := "path: " + filepath.Join(filepath.Dir(cfg), "vakt.db")
	if !bytes.Contains(b, []byte(old)) {
		t.Fatalf("config has no %q", old)
	}
	b = bytes.Replace(b, []byte(old), []byte("path: "+filepath.Join(dir, "vakt.db")), 1)
	if err := os.WriteFile(cfg, b, 0o600); err != nil {
		t.Fatal(err)
	}
	flag := filepath.Join(t.TempDir(), "disk-full")
	var env []string
	if mode == "injected" {
		env = append(env, "VAKT_FAILPOINT=disk-full:"+flag)
	}
	gw := startChild(t, cfg, apiPort, env...)
	c := client{t: t, base: fmt.Sprintf("http://127.0.0.1:%d", apiPort)}
	nurse := c.phone("nurse-1", c.login("nurse-1", "demo"))
	tech := c.phone("tech-1", c.login("tech-1", "demo"))
	z2m, err := anonBridge(t, brokerPort)
	if err != nil {
		t.Fatal(err)
	}

	// Fill the disk.
	filler := filepath.Join(dir, "filler")
	var filled int64
	if mode == "tmpfs" {
		filled = fill(t, filler)
	} else if err := os.WriteFile(flag, nil, 0o600); err != nil {
		t.Fatal(err)
	}

	// Press: the nurse is offered the alarm although nothing can be written.
	pressedAt := time.Now()
	tok := z2m.c.Publish("zigbee2mqtt/room101/sos", 1, false, `{"action":"emergency"}`)
	offer := nurse.expect("offer")
	offerLatency := time.Since(pressedAt)
	if offer.Alarm.Transmitter.ID != "room-101-sos" {
		t.Fatalf("offer while the disk is full = %+v", *offer.Alarm)
	}
	techOffer := tech.expect("offer")
	if techOffer.Alarm.Transmitter.ID != "gateway-storage" {
		t.Fatalf("technician offered %+v, want the storage alarm", *techOffer.Alarm)
	}
	if tok.WaitTimeout(0) {
		t.Fatalf("the press was acknowledged (err %v) while the disk was full", tok.Error())
	}
	select {
	case <-gw.exited:
		t.Fatal("gateway exited on a full disk")
	default:
	}

	// Space returns. The bridge reconnects and sends the press it holds again.
	if mode == "tmpfs" {
		if err := os.Remove(filler); err != nil {
			t.Fatal(err)
		}
	} else if err := os.Remove(flag); err != nil {
		t.Fatal(err)
	}
	z2m.close()
	z2m, err = anonBridge(t, brokerPort)
	if err != nil {
		t.Fatal(err)
	}
	resumed := time.Now()
	if err := z2m.publish("zigbee2mqtt/room101/sos", `{"action":"emergency"}`); err != nil {
		t.Fatalf("press again after space returned: %v", err)
	}
	resumeLatency := time.Since(resumed)
	if w := tech.expect("withdrawn"); w.id() != techOffer.Alarm.ID {
		t.Fatalf("withdrawn %s, want the storage alarm %s", w.id(), techOffer.Alarm.ID)
	}

	// Committed: a restart still has the alarm, counted once per press the site saw.
	gw.cmd.Process.Signal(syscall.SIGTERM)
	<-gw.exited
	onDisk := committedFor(t, filepath.Join(dir, "vakt.db"), offer.Alarm.ID)
	t.Logf("disk-full: on disk for %s after space returned: %s", offer.Alarm.ID, onDisk)
	// What happened while the disk was full is written once it has room again: the
	// alarm's audit trail begins with its raising. (The demo has no cloud, so
	// nothing is queued for one: store.Options.LocalOnly.)
	if !strings.Contains(onDisk, "audit [alarm.raised,") || !strings.Contains(onDisk, "outbox []") {
		t.Errorf("the transitions made while the disk was full were never written: %s", onDisk)
	}
	startChild(t, cfg, apiPort, env...)
	c2 := client{t: t, base: c.base}
	after := c2.phone("nurse-1", c2.login("nurse-1", "demo")).expect("offer")
	if after.Alarm.Transmitter.ID != "room-101-sos" || after.Alarm.ID != offer.Alarm.ID {
		t.Fatalf("after the restart nurse-1 is offered %+v, want alarm %s", *after.Alarm, offer.Alarm.ID)
	}
	if n := strings.Count(openAlarms(t, c2), `"id":"room-101-sos"`); n != 1 {
		t.Fatalf("%d open alarms of room 101 after the restart, want 1", n)
	}
	t.Logf("disk-full: mode %s, filled %d bytes; offer from memory in %v; storage alarm raised and closed; "+
		"press acknowledged %v after space returned; alarm %s committed, count %d after restart",
		mode, filled, offerLatency.Round(time.Millisecond), resumeLatency.Round(time.Millisecond),
		offer.Alarm.ID, after.Alarm.Count)
}

// committedFor describes what the database holds of alarm id: its event rows, its
// audit actions and its outbox transitions, and the result of an integrity check.
func committedFor(t *testing.T, path, id string) string {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var events int
	var audit, outbox, integrity sql.NullString
	if err := db.QueryRow(`SELECT count(*) FROM events WHERE alarm_id = ?`, id).Scan(&events); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(`SELECT group_concat(action, ',') FROM (SELECT action FROM audit WHERE subject = ? ORDER BY seq)`, "alarm:"+id).Scan(&audit); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(`SELECT group_concat(json_extract(body, '$.transition'), ',') FROM (SELECT body FROM outbox WHERE kind = 'alarm' AND json_extract(body, '$.id') = ? ORDER BY seq)`, id).Scan(&outbox); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(`PRAGMA integrity_check`).Scan(&integrity); err != nil {
		t.Fatal(err)
	}
	if integrity.String != "ok" {
		t.Fatalf("integrity check after the disk was full: %s", integrity.String)
	}
	return fmt.Sprintf("%d event rows; audit [%s]; outbox [%s]; integrity %s", events, audit.String, outbox.String, integrity.String)
}

// anonBridge is the demo site's Zigbee2MQTT bridge: paho, QoS 1, no login (the demo's
// embedded broker on 127.0.0.1 takes none).
func anonBridge(t *testing.T, brokerPort int) (*bridge, error) {
	t.Helper()
	o := paho.NewClientOptions().
		AddBroker(fmt.Sprintf("tcp://127.0.0.1:%d", brokerPort)).
		SetClientID("suite-z2m").
		SetCleanSession(true).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetConnectTimeout(waitLimit).
		SetWriteTimeout(waitLimit)
	c := paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(waitLimit) {
		return nil, fmt.Errorf("connect to 127.0.0.1:%d timed out", brokerPort)
	} else if err := tok.Error(); err != nil {
		return nil, err
	}
	b := &bridge{t: t, c: c}
	t.Cleanup(b.close)
	return b, nil
}

// fill writes zeros to path until the filesystem is full and returns how much fit.
func fill(t *testing.T, path string) int64 {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n, err := io.Copy(f, io.LimitReader(zeros{}, 64<<20))
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("filling the tmpfs: wrote %d bytes, err %v; want ENOSPC", n, err)
	}
	return n
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

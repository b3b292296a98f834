package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestLedgerKeepsTransmitterAndSendTime: a saved ledger read back still tells
// which transmitter sent each message and when, which the verdict needs for a
// check-in stored as its health row; a ledger of the old three-column form still
// reads (without them).
func TestLedgerKeepsTransmitterAndSendTime(t *testing.T) {
	l := newLedger()
	at := time.Unix(0, 1764590000123456789)
	l.add(kindPress, 3, at)
	l.ack(l.add(kindCheckIn, 7, at.Add(time.Second)))
	path := filepath.Join(t.TempDir(), "ledger")
	if err := l.save(path); err != nil {
		t.Fatal(err)
	}
	got, err := loadLedger(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.run != l.run || len(got.kind) != 2 || got.tx[1] != 7 || got.sent[1] != at.Add(time.Second).UnixNano() || !got.acked[1] || got.acked[0] {
		t.Fatalf("read back %+v, want %+v", got, l)
	}
	old := filepath.Join(t.TempDir(), "old")
	if err := os.WriteFile(old, []byte("run x\n0 k 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err = loadLedger(old); err != nil || got.tx[0] != -1 || !got.acked[0] {
		t.Fatalf("old ledger: %+v, %v", got, err)
	}
}

func TestParseWriteBytes(t *testing.T) {
	n, err := parseWriteBytes(strings.NewReader("rchar: 10\nwchar: 20\nsyscr: 1\nsyscw: 2\nread_bytes: 0\nwrite_bytes: 40960\ncancelled_write_bytes: 0\n"))
	if err != nil || n != 40960 {
		t.Fatalf("write_bytes = %d, %v; want 40960", n, err)
	}
	if _, err := parseWriteBytes(strings.NewReader("rchar: 10\n")); err == nil {
		t.Fatal("no write_bytes line, no error")
	}
}

// TestMinutesLine: a long run's summary names the weakest full minute against the
// first, so a storm that falls off a cliff shows in one line.
func TestMinutesLine(t *testing.T) {
	got := minutesLine([]minuteResult{{Offers: 1000, P99: 12}, {Offers: 990, P99: 14}, {Offers: 400, P99: 900}, {Offers: 20, P99: 3}}, 180.5)
	want := "alarms offered per full minute 1000 990 400; p99 ms 12 14 900; weakest minute (3) = 0.40× the first"
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

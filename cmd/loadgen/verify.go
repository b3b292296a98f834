package main

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"time"

	_ "modernc.org/sqlite" // read the result file: cmd/loadgen's exception in deps_test.go
)

// verdict compares what the broker acknowledged with what the database holds.
type verdict struct {
	Acked      int64   `json:"acked"`       // messages PUBACKed to the transmitters
	Stored     int64   `json:"stored"`      // distinct load messages in the events table
	Lost       int64   `json:"lost"`        // acknowledged but not stored
	Duplicated int64   `json:"duplicated"`  // stored more than once as a new (non-duplicate) event
	Redelivery int64   `json:"redelivered"` // rows the gateway recognised as redeliveries
	Repeats    int64   `json:"press_not_new_alarm"`
	Integrity  string  `json:"integrity"`
	FirstLost  []int64 `json:"first_lost,omitempty"`
}

func (v verdict) ok() bool { return v.Lost == 0 && v.Duplicated == 0 && v.Integrity == "ok" }

func (v verdict) String() string {
	s := "PASS"
	if !v.ok() {
		s = "FAIL"
	}
	return fmt.Sprintf("%s: %d acknowledged, %d stored, %d lost, %d duplicated, %d redeliveries recognised, %d presses that did not open a new alarm, integrity_check %s",
		s, v.Acked, v.Stored, v.Lost, v.Duplicated, v.Redelivery, v.Repeats, v.Integrity)
}

// verify reads the events table (columns raw, alarm_id, duplicate: the gateway's
// schema, which the Node-RED flow copies) and PRAGMA integrity_check. With drain > 0 it
// re-reads until nothing acknowledged is missing or drain has passed (a gateway behind
// an external broker still receiving its queued backlog).
func verify(ctx context.Context, path string, led *ledger, drain time.Duration) (verdict, error) {
	// The wait restarts while the database keeps growing (a long backlog draining),
	// bounded by ten times drain.
	deadline, hard := time.Now().Add(drain), time.Now().Add(10*drain)
	var last int64
	for {
		v, err := verifyOnce(ctx, path, led)
		if err != nil || v.Lost == 0 || time.Now().After(deadline) || time.Now().After(hard) {
			return v, err
		}
		if v.Stored > last {
			last, deadline = v.Stored, time.Now().Add(drain)
		}
		time.Sleep(time.Second) // polling a database another process fills
	}
}

func verifyOnce(ctx context.Context, path string, led *ledger) (verdict, error) {
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		return verdict{}, err
	}
	defer db.Close()
	var v verdict
	if err := db.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&v.Integrity); err != nil {
		return v, fmt.Errorf("integrity_check on %s: %w", path, err)
	}
	rows, err := db.QueryContext(ctx, "SELECT raw, alarm_id, duplicate FROM events")
	if err != nil {
		return v, fmt.Errorf("read events of %s: %w", path, err)
	}
	defer rows.Close()
	led.mu.Lock()
	defer led.mu.Unlock()
	tag := []byte(`"run":"` + led.run + `"`)
	n := int64(len(led.kind))
	fresh := make([]uint8, n) // non-duplicate rows per seq (saturating)
	any := make([]bool, n)
	alarms := map[string]int{}
	for rows.Next() {
		var raw []byte
		var alarm sql.NullString
		var dup int
		if err := rows.Scan(&raw, &alarm, &dup); err != nil {
			return v, err
		}
		if !bytes.Contains(raw, tag) {
			continue // another run's message
		}
		seq, ok := seqOf(raw)
		if !ok || seq < 0 || seq >= n {
			continue
		}
		any[seq] = true
		if dup != 0 {
			v.Redelivery++
			continue
		}
		if fresh[seq] < 255 {
			fresh[seq]++
		}
		if led.kind[seq] == kindPress && alarm.String != "" {
			alarms[alarm.String]++
		}
	}
	if err := rows.Err(); err != nil {
		return v, err
	}
	for seq := range n {
		if led.acked[seq] {
			v.Acked++
			if !any[seq] {
				v.Lost++
				if len(v.FirstLost) < 10 {
					v.FirstLost = append(v.FirstLost, seq)
				}
			}
		}
		if any[seq] {
			v.Stored++
		}
		if fresh[seq] > 1 {
			v.Duplicated++
		}
	}
	for _, c := range alarms {
		v.Repeats += int64(c - 1)
	}
	return v, nil
}

// seqOf finds "seq":N in a payload without a full JSON decode.
func seqOf(raw []byte) (int64, bool) {
	i := bytes.Index(raw, []byte(`"seq":`))
	if i < 0 {
		return 0, false
	}
	j := i + 6
	k := j
	for k < len(raw) && raw[k] >= '0' && raw[k] <= '9' {
		k++
	}
	n, err := strconv.ParseInt(string(raw[j:k]), 10, 64)
	return n, err == nil
}

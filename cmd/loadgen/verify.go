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
	Stored     int64   `json:"stored"`      // distinct load messages stored (events table, or health row for a check-in)
	HealthOnly int64   `json:"health_only"` // check-ins among them found as their transmitter's health row
	Held       int64   `json:"held"`        // acknowledged check-ins whose health the gateway writes later (not lost)
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
	return fmt.Sprintf("%s: %d acknowledged, %d stored, %d lost, %d duplicated, %d redeliveries recognised, %d presses that did not open a new alarm, %d check-ins stored as their health row, %d check-ins held for the gateway's next health write, integrity_check %s",
		s, v.Acked, v.Stored, v.Lost, v.Duplicated, v.Redelivery, v.Repeats, v.HealthOnly, v.Held, v.Integrity)
}

// verify reads the events table (columns raw, alarm_id, duplicate: the gateway's
// schema, which the Node-RED flow copies), the health table when there is one, and
// PRAGMA integrity_check.
//
// The gateway stores a check-in that changes nothing but health as its
// transmitter's health row, without an events row (P6). Such a check-in counts as
// stored when that row's last_seen is not before the moment the check-in was
// handed to its connection: a commit made after the check-in was sent holds the
// transmitter's health, and one transmitter's messages travel on one connection,
// in order, through one engine queue, so that commit came with or after the
// check-in's own. The gateway writes a known transmitter's health only every 15
// minutes (engine/health.go: a check-in is state, acknowledged without a commit),
// so an acknowledged check-in not yet on disk counts as held, not lost — unless
// the database has no health table (the Node-RED flow's), where every check-in
// must be an events row. With drain > 0 it
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
	seen, health, err := lastSeen(ctx, db)
	if err != nil {
		return v, fmt.Errorf("read health of %s: %w", path, err)
	}
	for seq := range n {
		if !any[seq] && led.kind[seq] == kindCheckIn && seq < int64(len(led.tx)) && led.tx[seq] >= 0 {
			if at, ok := seen[txID(int(led.tx[seq]))]; ok && at >= led.sent[seq] {
				any[seq] = true
				v.HealthOnly++
			}
		}
		if led.acked[seq] {
			v.Acked++
			if !any[seq] && health && led.kind[seq] == kindCheckIn {
				v.Held++
			} else if !any[seq] {
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

// lastSeen reads each transmitter's last_seen (Unix ns) from the health table, and
// whether there is one (the Node-RED flow's database has none).
func lastSeen(ctx context.Context, db *sql.DB) (map[string]int64, bool, error) {
	var tables int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'health'`).Scan(&tables); err != nil {
		return nil, false, err
	}
	out := map[string]int64{}
	if tables == 0 {
		return out, false, nil
	}
	rows, err := db.QueryContext(ctx, `SELECT transmitter_id, last_seen FROM health WHERE last_seen IS NOT NULL`)
	if err != nil {
		return nil, true, err
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var at int64
		if err := rows.Scan(&id, &at); err != nil {
			return nil, true, err
		}
		out[id] = at
	}
	return out, true, rows.Err()
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

package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"

	vakt "github.com/vakt/vakt"
)

// Load's SeenSources holds the events received within Options.SeenWindow, and in
// any case the last seenMinEvents events, so a wall clock that jumped forward (a
// box that booted at 1970 and then synced) does not hide the events just before a
// restart.
const seenMinEvents = 10000

// seenMaxEvents bounds how many of the newest events Load reads for SeenSources,
// whatever the window, so the time to be ready after a restart does not grow with
// the history (R1: 1 s; P4: 300 ms with a 1 GB database). It used to read every
// event of the last 24 h: 0.9–1.1 s on a 712 MB file.
//
// Why this many is enough: the keys exist to recognise a message the source sends
// again because it never got its acknowledgement. Only an event that was committed
// but not yet acknowledged when the gateway died can come back and be counted
// twice (one not committed is simply new). An acknowledgement follows its commit
// at once, so those are the newest events, and how many there can be is the
// sources' window of unacknowledged messages: an MQTT session has at most 65,535
// (the packet-id space; Mosquitto's default max_inflight_messages is 20), each
// message yielding at most a couple of events, and the ESPA and serial drivers
// acknowledge one message at a time. 2^17 rows cover a full MQTT window with two
// events per message; the engine remembers as many (engine.recentCapacity). The
// newest rows are found by rowid (commit order), so no index is needed and the
// read is a bounded walk from the end of the table's B-tree.
const seenMaxEvents = 1 << 17

// Load reads the state the engine resumes from, in one read transaction:
//   - OpenAlarms: alarms not completed or cancelled, oldest first;
//   - Directory, Staff, Health: every row;
//   - OpenVisits: visits without an end;
//   - SeenSources: Source+"\x00"+SourceID → alarm id ("" for events that opened no
//     alarm) of the events with a SourceID received within Options.SeenWindow,
//     and of the last 10,000 events whatever their time (the newest wins), among
//     the newest 131,072 events (seenMaxEvents); SeenOrder lists those keys oldest
//     first;
//   - NextAlarm: one more than the highest n of any alarm id "<prefix>-<n>" ever
//     committed (1 on an empty database). It comes from a counter in the meta table,
//     not from the alarms table, so deleting old alarms never lets an id come back.
func (db *DB) Load(ctx context.Context) (*vakt.Snapshot, error) {
	tx, err := db.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("store: load: %w", err)
	}
	defer tx.Rollback()

	s := &vakt.Snapshot{SeenSources: make(map[string]vakt.AlarmID)}
	if s.OpenAlarms, err = collect(scanAlarm)(tx.QueryContext(ctx, `SELECT `+alarmColumns+` FROM alarms
		WHERE state NOT IN ('completed', 'cancelled') ORDER BY raised_at, id`)); err != nil {
		return nil, fmt.Errorf("store: load alarms: %w", err)
	}
	if s.Directory, err = collect(scanStaff)(tx.QueryContext(ctx, `SELECT `+staffColumns+` FROM staff ORDER BY id`)); err != nil {
		return nil, fmt.Errorf("store: load directory: %w", err)
	}
	if s.Staff, err = collect(scanState)(tx.QueryContext(ctx, `SELECT `+stateColumns+` FROM staff_state ORDER BY staff_id`)); err != nil {
		return nil, fmt.Errorf("store: load staff state: %w", err)
	}
	if s.Health, err = collect(scanHealth)(tx.QueryContext(ctx, `SELECT `+healthColumns+` FROM health ORDER BY transmitter_id`)); err != nil {
		return nil, fmt.Errorf("store: load health: %w", err)
	}
	if s.OpenVisits, err = collect(scanVisit)(tx.QueryContext(ctx, `SELECT `+visitColumns+` FROM visits
		WHERE end_at IS NULL ORDER BY start_at, id`)); err != nil {
		return nil, fmt.Errorf("store: load visits: %w", err)
	}

	// Newest first, by rowid (commit order), so no index on received_at is needed
	// and the first key seen is the newest; never more than seenMaxEvents rows.
	rows, err := tx.QueryContext(ctx, `SELECT source, source_id, alarm_id, received_at FROM events
		ORDER BY id DESC LIMIT ?`, db.seenMax)
	if err != nil {
		return nil, fmt.Errorf("store: load seen sources: %w", err)
	}
	defer rows.Close()
	cutoff := db.now().Add(-db.seenWindow).UnixNano()
	for n := 1; rows.Next(); n++ {
		var (
			source, id string
			alarm      vakt.AlarmID
			received   sql.NullInt64
		)
		if err := rows.Scan(&source, &id, &alarm, &received); err != nil {
			return nil, fmt.Errorf("store: load seen sources: %w", err)
		}
		if n > seenMinEvents && (!received.Valid || received.Int64 < cutoff) {
			break
		}
		if id == "" {
			continue
		}
		key := source + "\x00" + id
		if _, ok := s.SeenSources[key]; !ok {
			s.SeenSources[key] = alarm
			s.SeenOrder = append(s.SeenOrder, key)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: load seen sources: %w", err)
	}
	rows.Close()
	slices.Reverse(s.SeenOrder)

	srows, err := tx.QueryContext(ctx, `SELECT token_hash, staff_id, expires_at FROM sessions WHERE expires_at >= ?`, db.now().UnixNano())
	if err != nil {
		return nil, fmt.Errorf("store: load sessions: %w", err)
	}
	for srows.Next() {
		var se vakt.Session
		var exp int64
		if err := srows.Scan(&se.TokenHash, &se.Staff, &exp); err != nil {
			srows.Close()
			return nil, fmt.Errorf("store: load sessions: %w", err)
		}
		se.Expires = time.Unix(0, exp).UTC()
		s.Sessions = append(s.Sessions, se)
	}
	if err := srows.Err(); err != nil {
		return nil, fmt.Errorf("store: load sessions: %w", err)
	}
	srows.Close()

	var counter int64
	if err := tx.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'alarm_counter'`).Scan(&counter); err != nil {
		return nil, fmt.Errorf("store: load alarm counter: %w", err)
	}
	s.NextAlarm = counter + 1
	return s, nil
}

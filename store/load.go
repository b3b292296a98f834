package store

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strconv"
	"strings"
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
// twice; one not committed is simply new when it comes back (messages waiting in
// the MQTT driver's 65,536 queue or the engine's queue are in that case). How many
// committed-but-unacknowledged messages there can be is the source's window of
// unacknowledged messages: an MQTT session has at most 65,535 (the packet-id
// space; the broker counts every message it sent and got no PUBACK for, queued
// here or not), the embedded broker hands messages over in-process without a
// source id, and the ESPA and serial drivers acknowledge one message at a time.
// An acknowledgement follows its commit at once, and while a session is down no
// new message arrives on it, so those events are the newest of their source: the
// newest 65,536 rows hold one full MQTT window of single-event messages (a press
// is one event; the rare second event of a message, a low battery or a tamper
// beside a press, is technical). The newest rows are found by rowid (commit
// order): no index is needed and the read is a bounded walk from the end of the
// table's B-tree.
const seenMaxEvents = 1 << 16

// Load reads the state the engine resumes from, in one read transaction:
//   - OpenAlarms: alarms not completed or cancelled, oldest first;
//   - Directory, Staff, Health: every row;
//   - OpenVisits: visits without an end;
//   - SeenSources: Source+"\x00"+SourceID → alarm id ("" for events that opened no
//     alarm) of the events with a SourceID received within Options.SeenWindow,
//     and of the last 10,000 events whatever their time (the newest wins), among
//     the newest 65,536 events (seenMaxEvents); SeenOrder lists those keys oldest
//     first;
//   - NextAlarm: one more than the highest n of any alarm id "<prefix>-<n>" ever
//     committed (1 on an empty database). It comes from a counter in the meta table,
//     not from the alarms table, so deleting old alarms never lets an id come back;
//   - Newest: the newest time recorded (see newestRecorded), retention's bound.
func (db *DB) Load(ctx context.Context) (*vakt.Snapshot, error) {
	if db.loaded != nil {
		defer db.loadOnce.Do(func() { close(db.loaded) })
	}
	tx, err := db.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("store: load: %w", err)
	}
	defer tx.Rollback()

	s := &vakt.Snapshot{SeenSources: make(map[string]vakt.AlarmID)}
	// INDEXED BY: left to itself the planner walks alarms_raised to spare the sort,
	// reading every alarm ever raised (0.5–0.9 s of a 1 GB file's ready time); the
	// partial index holds only the open ones.
	if s.OpenAlarms, err = collect(scanAlarm)(tx.QueryContext(ctx, `SELECT `+alarmColumns+` FROM alarms
		INDEXED BY alarms_open WHERE state NOT IN ('completed', 'cancelled') ORDER BY raised_at, id`)); err != nil {
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

	if err := db.loadSeen(ctx, tx, s); err != nil {
		return nil, fmt.Errorf("store: load seen sources: %w", err)
	}

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

	if s.Deliveries, err = loadDeliveries(ctx, tx); err != nil {
		return nil, fmt.Errorf("store: load deliveries: %w", err)
	}

	var counter int64
	if err := tx.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'alarm_counter'`).Scan(&counter); err != nil {
		return nil, fmt.Errorf("store: load alarm counter: %w", err)
	}
	s.NextAlarm = counter + 1
	if s.Newest, err = newestRecorded(ctx, tx); err != nil {
		return nil, fmt.Errorf("store: load newest time: %w", err)
	}
	if err := tx.QueryRowContext(ctx, `SELECT `+ackedSeq).Scan(&s.OutboxAcked); err != nil {
		return nil, fmt.Errorf("store: load outbox acknowledgement: %w", err)
	}
	return s, nil
}

// loadSeen fills s.SeenSources and s.SeenOrder from the newest seenMaxEvents events,
// found by rowid (commit order), so no index on received_at is needed. The rows are
// packed into one string by SQLite (group_concat), newest first, each as
// "<len source>,<len source_id>,<len alarm_id>,<source><source_id><alarm_id>" with
// byte lengths: a row at a time through database/sql cost about 3 µs, most of the
// ready time. The first occurrence of a key, the newest, wins.
func (db *DB) loadSeen(ctx context.Context, tx *sql.Tx, s *vakt.Snapshot) error {
	// Rows among the last seenMinEvents count whatever their time.
	var recent int64
	if err := tx.QueryRowContext(ctx, `SELECT coalesce((SELECT id FROM events ORDER BY id DESC LIMIT 1 OFFSET ?), 0)`,
		seenMinEvents-1).Scan(&recent); err != nil {
		return err
	}
	// No ORDER BY in group_concat: it would sort the rows again in a temporary
	// B-tree (a third of the time); each row carries its id and the order is checked.
	var packed string
	err := tx.QueryRowContext(ctx, `SELECT coalesce(group_concat(id || ',' ||
			length(CAST(source AS BLOB)) || ',' || length(CAST(source_id AS BLOB)) || ',' ||
			length(CAST(alarm_id AS BLOB)) || ',' || source || source_id || alarm_id, ''), '')
		FROM (SELECT id, source, source_id, alarm_id, received_at FROM events ORDER BY id DESC LIMIT ?1)
		WHERE source_id <> '' AND (received_at >= ?2 OR id >= ?3)`,
		db.seenMax, db.now().Add(-db.seenWindow).UnixNano(), recent).Scan(&packed)
	if err != nil {
		return err
	}
	type row struct {
		id                 int64
		source, id2, alarm string
	}
	var rows []row
	sorted := true
	for packed != "" {
		var n [4]int64
		for i := range n {
			num, rest, ok := strings.Cut(packed, ",")
			v, err := strconv.ParseInt(num, 10, 64)
			if !ok || err != nil || v < 0 {
				return fmt.Errorf("malformed packed row %q", num)
			}
			n[i], packed = v, rest
		}
		if int64(len(packed)) < n[1]+n[2]+n[3] {
			return fmt.Errorf("packed row runs past the end")
		}
		r := row{id: n[0], source: packed[:n[1]], id2: packed[n[1] : n[1]+n[2]], alarm: packed[n[1]+n[2] : n[1]+n[2]+n[3]]}
		packed = packed[n[1]+n[2]+n[3]:]
		if len(rows) > 0 && rows[len(rows)-1].id <= r.id {
			sorted = false
		}
		rows = append(rows, r)
	}
	if !sorted {
		slices.SortFunc(rows, func(a, b row) int { return cmp.Compare(b.id, a.id) })
	}
	s.SeenSources = make(map[string]vakt.AlarmID, len(rows))
	for _, r := range rows {
		source, id, alarm := r.source, r.id2, r.alarm
		key := source + "\x00" + id
		if _, ok := s.SeenSources[key]; !ok {
			s.SeenSources[key] = vakt.AlarmID(alarm)
			s.SeenOrder = append(s.SeenOrder, key)
		}
	}
	slices.Reverse(s.SeenOrder)
	return nil
}

// loadDeliveries reads the outbound queue, oldest first.
func loadDeliveries(ctx context.Context, tx *sql.Tx) ([]vakt.Delivery, error) {
	rows, err := tx.QueryContext(ctx, `SELECT id, alarm_id, target, restore, address, zone, kind, text,
		seq, delivered, created_at FROM deliveries ORDER BY created_at, id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []vakt.Delivery
	for rows.Next() {
		var d vakt.Delivery
		var zone, seq, created int64
		if err := rows.Scan(&d.ID, &d.Alarm, &d.Target, &d.Restore, &d.Address, &zone, &d.Kind, &d.Text,
			&seq, &d.Delivered, &created); err != nil {
			return nil, err
		}
		d.Zone, d.Seq, d.Created = int(zone), int(seq), time.Unix(0, created).UTC()
		out = append(out, d)
	}
	return out, rows.Err()
}

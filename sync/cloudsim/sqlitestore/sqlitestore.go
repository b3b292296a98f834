// Package sqlitestore is the reference cloud's SQLite storage (modernc.org/sqlite).
// It belongs to cmd/cloudsim, a separate program: the gateway's rule that only its
// store package imports modernc does not cover it. Every accepted entry is one row of
// table entries with UNIQUE(gateway_id, seq), so `sqlite3 cloud.db 'select count(*)
// from entries'` counts what arrived.
package sqlitestore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/vakt/vakt/sync/cloudsim"
	"github.com/vakt/vakt/sync/wire"
	_ "modernc.org/sqlite"
)

//go:embed schema.sql
var schema string

// DB is a Storage in one SQLite file.
type DB struct {
	db  *sql.DB
	Now func() time.Time
}

var _ cloudsim.Storage = (*DB)(nil)

// Open opens (creating if needed) the database at path. Commits are fsync'd
// (synchronous=FULL): an acknowledgement promises the entries survive a crash.
func Open(ctx context.Context, path string) (*DB, error) {
	dsn := "file:" + url.PathEscape(path) + "?_pragma=busy_timeout(5000)&_pragma=synchronous(FULL)&_pragma=journal_mode(WAL)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open cloud database %s: %w", path, err)
	}
	db.SetMaxOpenConns(1) // one writer; a reference cloud needs no read pool
	if _, err := db.ExecContext(ctx, schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("open cloud database %s: schema: %w", path, err)
	}
	return &DB{db: db, Now: time.Now}, nil
}

// Close closes the database.
func (d *DB) Close() error { return d.db.Close() }

// digest identifies an envelope's content: every field, the body compacted so that
// white space does not count. Written out by hand: reflection-based re-encoding was
// a third of the cloud's time per entry.
func digest(e *wire.Envelope) (string, error) {
	h := sha256.New()
	buf := make([]byte, 0, 128+len(e.Body))
	buf = strconv.AppendInt(buf, e.Seq, 10)
	buf = append(buf, 0)
	buf = append(buf, e.Kind...)
	buf = append(buf, 0)
	buf = strconv.AppendInt(buf, int64(e.V), 10)
	buf = append(buf, 0)
	buf = e.At.UTC().AppendFormat(buf, time.RFC3339Nano)
	buf = append(buf, 0)
	buf = strconv.AppendBool(buf, e.ClockSynced)
	buf = append(buf, 0)
	buf = append(buf, e.Boot...)
	buf = append(buf, 0)
	buf = strconv.AppendInt(buf, e.SinceBootMS, 10)
	buf = append(buf, 0)
	var body bytes.Buffer
	if err := json.Compact(&body, e.Body); err != nil {
		return "", err
	}
	h.Write(buf)
	h.Write(body.Bytes())
	return hex.EncodeToString(h.Sum(nil)), nil
}

const entryCols = 9

// Append implements cloudsim.Storage.
func (d *DB) Append(ctx context.Context, gateway string, after int64, entries []wire.Envelope, take int) (wire.Ack, error) {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return wire.Ack{}, err
	}
	defer tx.Rollback()
	var acked int64
	var head wire.AuditHead
	var headSeq, headOut sql.NullInt64
	var headHash sql.NullString
	err = tx.QueryRowContext(ctx, `SELECT acked, audit_seq, audit_hash, audit_outbox_seq FROM gateways WHERE gateway_id = ?`, gateway).
		Scan(&acked, &headSeq, &headHash, &headOut)
	if errors.Is(err, sql.ErrNoRows) {
		err = nil
	}
	if err != nil {
		return wire.Ack{}, err
	}
	if after > acked {
		return wire.Ack{}, &cloudsim.RefusedError{Code: wire.CodeGap, Acked: acked,
			Message: fmt.Sprintf("batch follows seq %d but the cloud has committed only up to %d", after, acked)}
	}
	ack := wire.Ack{Acked: acked}
	now := d.Now().UnixNano()
	args := make([]any, 0, len(entries)*entryCols)
	headMoved := false
	for i := range entries {
		e := &entries[i]
		dg, err := digest(e)
		if err != nil {
			return wire.Ack{}, err
		}
		if e.Seq <= acked {
			var have string
			err := tx.QueryRowContext(ctx, `SELECT digest FROM entries WHERE gateway_id = ? AND seq = ?`, gateway, e.Seq).Scan(&have)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return wire.Ack{}, err
			}
			if have != dg {
				return wire.Ack{}, &cloudsim.RefusedError{Code: wire.CodeConflict, Acked: acked,
					Message: fmt.Sprintf("seq %d was already acknowledged with different content (was the gateway's database replaced? give it a new gateway id)", e.Seq)}
			}
			ack.Repeated++
			continue
		}
		if take > 0 && ack.Stored == take {
			break
		}
		args = append(args, gateway, e.Seq, e.Kind, e.V, e.At.UTC().Format(time.RFC3339Nano), e.ClockSynced, e.Boot, string(e.Body), dg)
		ack.Stored++
		ack.Acked = e.Seq
		if e.Kind == wire.KindAudit {
			var a wire.Audit
			if json.Unmarshal(e.Body, &a) == nil && a.Seq > head.Seq {
				head, headMoved = wire.AuditHead{Seq: a.Seq, Hash: a.Hash, OutboxSeq: e.Seq}, true
			}
		}
	}
	const perStmt = 200
	for len(args) > 0 {
		n := min(len(args)/entryCols, perStmt)
		q := `INSERT INTO entries (gateway_id, seq, kind, v, at, clock_synced, boot, body, digest, received_at) VALUES ` +
			strings.TrimSuffix(strings.Repeat("(?,?,?,?,?,?,?,?,?,"+strconv.FormatInt(now, 10)+"),", n), ",")
		if _, err := tx.ExecContext(ctx, q, args[:n*entryCols]...); err != nil {
			return wire.Ack{}, fmt.Errorf("insert entries: %w", err)
		}
		args = args[n*entryCols:]
	}
	if ack.Stored > 0 {
		if !headMoved && headSeq.Valid {
			head = wire.AuditHead{Seq: headSeq.Int64, Hash: headHash.String, OutboxSeq: headOut.Int64}
		}
		var hs, ho any
		var hh any
		if headMoved || headSeq.Valid {
			hs, hh, ho = head.Seq, head.Hash, head.OutboxSeq
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO gateways (gateway_id, acked, audit_seq, audit_hash, audit_outbox_seq)
			VALUES (?, ?, ?, ?, ?) ON CONFLICT (gateway_id) DO UPDATE SET acked = excluded.acked,
			audit_seq = excluded.audit_seq, audit_hash = excluded.audit_hash, audit_outbox_seq = excluded.audit_outbox_seq`,
			gateway, ack.Acked, hs, hh, ho); err != nil {
			return wire.Ack{}, err
		}
	}
	if err := tx.Commit(); err != nil {
		return wire.Ack{}, err
	}
	return ack, nil
}

// State implements cloudsim.Storage.
func (d *DB) State(ctx context.Context, gateway string) (wire.State, error) {
	st := wire.State{Protocol: wire.Protocol}
	var seq, out sql.NullInt64
	var hash sql.NullString
	err := d.db.QueryRowContext(ctx, `SELECT acked, audit_seq, audit_hash, audit_outbox_seq FROM gateways WHERE gateway_id = ?`, gateway).
		Scan(&st.Acked, &seq, &hash, &out)
	if errors.Is(err, sql.ErrNoRows) {
		return st, nil
	}
	if err != nil {
		return st, err
	}
	if seq.Valid {
		st.AuditHead = &wire.AuditHead{Seq: seq.Int64, Hash: hash.String, OutboxSeq: out.Int64}
	}
	return st, nil
}

// Count implements cloudsim.Storage.
func (d *DB) Count(ctx context.Context, gateway string) (int64, error) {
	var n int64
	err := d.db.QueryRowContext(ctx, `SELECT count(*) FROM entries WHERE gateway_id = ?`, gateway).Scan(&n)
	return n, err
}

// Directory implements cloudsim.Storage. The cursor is the id of the last change
// returned.
func (d *DB) Directory(ctx context.Context, gateway, cursor string, limit int) (wire.DirectoryPage, error) {
	page := wire.DirectoryPage{Cursor: cursor, Changes: []wire.DirectoryChange{}}
	var after int64
	if cursor != "" {
		var err error
		if after, err = strconv.ParseInt(cursor, 10, 64); err != nil || after < 0 {
			return page, &cloudsim.RefusedError{Code: wire.CodeMalformed, Message: fmt.Sprintf("cursor %q is not one this cloud issued", cursor)}
		}
	}
	rows, err := d.db.QueryContext(ctx, `SELECT id, op, staff_id, staff, request_id FROM directory
		WHERE gateway_id = ? AND id > ? ORDER BY id LIMIT ?`, gateway, after, limit+1)
	if err != nil {
		return page, err
	}
	defer rows.Close()
	for rows.Next() {
		if len(page.Changes) == limit {
			page.More = true
			break
		}
		var (
			id    int64
			c     wire.DirectoryChange
			staff sql.NullString
		)
		if err := rows.Scan(&id, &c.Op, &c.StaffID, &staff, &c.RequestID); err != nil {
			return page, err
		}
		if staff.Valid {
			c.Staff = new(wire.Staff)
			if err := json.Unmarshal([]byte(staff.String), c.Staff); err != nil {
				return page, fmt.Errorf("directory change %d: %w", id, err)
			}
		}
		page.Changes = append(page.Changes, c)
		page.Cursor = strconv.FormatInt(id, 10)
	}
	return page, rows.Err()
}

// change appends a directory change. Earlier upserts of the same person are deleted
// first: they are superseded, and after a removal or erasure the cloud must not keep
// handing out the old personal data to a gateway that starts from an empty cursor.
func (d *DB) change(ctx context.Context, gateway string, c wire.DirectoryChange) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM directory WHERE gateway_id = ? AND staff_id = ? AND op IN ('upsert', 'remove')`,
		gateway, c.StaffID); err != nil {
		return err
	}
	var staff any
	if c.Staff != nil {
		b, err := json.Marshal(c.Staff)
		if err != nil {
			return err
		}
		staff = string(b)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO directory (gateway_id, op, staff_id, staff, request_id, at) VALUES (?, ?, ?, ?, ?, ?)`,
		gateway, c.Op, c.StaffID, staff, c.RequestID, d.Now().UnixNano()); err != nil {
		return err
	}
	return tx.Commit()
}

// PutStaff implements cloudsim.Storage.
func (d *DB) PutStaff(ctx context.Context, gateway string, s wire.Staff) error {
	if s.ID == "" {
		return &cloudsim.RefusedError{Code: wire.CodeMalformed, Message: "staff id missing"}
	}
	return d.change(ctx, gateway, wire.DirectoryChange{Op: wire.OpUpsert, StaffID: s.ID, Staff: &s})
}

func (d *DB) known(ctx context.Context, gateway, id string) error {
	var n int
	if err := d.db.QueryRowContext(ctx, `SELECT count(*) FROM directory WHERE gateway_id = ? AND staff_id = ? AND op = 'upsert'`,
		gateway, id).Scan(&n); err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("staff %q: %w", id, cloudsim.ErrNotFound)
	}
	return nil
}

// RemoveStaff implements cloudsim.Storage.
func (d *DB) RemoveStaff(ctx context.Context, gateway, id string) error {
	if err := d.known(ctx, gateway, id); err != nil {
		return err
	}
	return d.change(ctx, gateway, wire.DirectoryChange{Op: wire.OpRemove, StaffID: id})
}

// RequestErasure implements cloudsim.Storage. An erasure may name a person the cloud
// no longer lists (removed earlier, or known only to the gateway's configuration).
func (d *DB) RequestErasure(ctx context.Context, gateway, id string) (string, error) {
	if id == "" {
		return "", &cloudsim.RefusedError{Code: wire.CodeMalformed, Message: "staff id missing"}
	}
	req := "er-" + strconv.FormatInt(d.Now().UnixNano(), 36)
	return req, d.change(ctx, gateway, wire.DirectoryChange{Op: wire.OpErase, StaffID: id, RequestID: req})
}

// Seqs lists the stored seqs of a gateway in the order they were inserted (rowid),
// for tests and operators checking that nothing arrived twice or out of order.
func (d *DB) Seqs(ctx context.Context, gateway string) ([]int64, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT seq FROM entries WHERE gateway_id = ? ORDER BY rowid`, gateway)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var s int64
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// Entry returns the stored row of one entry: its envelope fields as stored.
func (d *DB) Entry(ctx context.Context, gateway string, seq int64) (wire.Envelope, error) {
	var (
		e      wire.Envelope
		at     string
		body   string
		synced bool
	)
	err := d.db.QueryRowContext(ctx, `SELECT seq, kind, v, at, clock_synced, boot, body FROM entries WHERE gateway_id = ? AND seq = ?`,
		gateway, seq).Scan(&e.Seq, &e.Kind, &e.V, &at, &synced, &e.Boot, &body)
	if err != nil {
		return e, err
	}
	e.ClockSynced, e.Body = synced, []byte(body)
	e.At, err = time.Parse(time.RFC3339Nano, at)
	return e, err
}

package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	vakt "github.com/vakt/vakt"
)

// ErrAuditChain is what every *AuditError wraps: errors.Is(err, ErrAuditChain)
// tells a broken chain from a failed read.
var ErrAuditChain = errors.New("store: audit chain broken")

// AuditError names the first audit entry VerifyAudit found wrong.
type AuditError struct {
	Seq    int64
	Reason string
}

func (e *AuditError) Error() string {
	return fmt.Sprintf("store: audit entry %d: %s", e.Seq, e.Reason)
}

func (e *AuditError) Unwrap() error { return ErrAuditChain }

// AuditHead returns the sequence number and hash of the last committed audit entry
// (0, "" when there is none): what sync anchors in the cloud (S7).
func (db *DB) AuditHead() (seq int64, hash string) {
	db.mu.Lock()
	defer db.mu.Unlock()
	return db.head.seq, db.head.hash
}

// AuditRange returns up to limit entries with Seq >= fromSeq, in order
// (limit <= 0: all).
func (db *DB) AuditRange(ctx context.Context, fromSeq int64, limit int) ([]vakt.AuditEntry, error) {
	if limit <= 0 {
		limit = -1
	}
	entries, err := collect(scanAudit)(db.r.QueryContext(ctx, `SELECT `+auditColumns+` FROM audit
		WHERE seq >= ? ORDER BY seq LIMIT ?`, fromSeq, limit))
	if err != nil {
		return nil, fmt.Errorf("store: audit range: %w", err)
	}
	return entries, nil
}

// VerifyAudit walks the whole chain from seq 1 (or from the entry after the anchor
// retention recorded when it deleted the oldest entries, see retention.go) and returns an *AuditError naming the
// first entry that is wrong:
//   - a missing seq: that entry was deleted;
//   - a stored hash that does not match the entry's fields: it was edited (or
//     moved to another seq);
//   - a prev that does not match the hash before it: the entries were reordered,
//     or the one before was rewritten with a recomputed hash;
//   - fewer entries, or a different last hash, than this process committed: the
//     end was cut off or rewritten.
//
// The chain proves order and integrity only against someone who cannot recompute
// every later hash; the cloud's anchored head (AuditHead, synced) closes that gap.
//
// The head is kept in the meta table, written in the same transaction as each audit
// insert, so a tail deleted while the gateway was stopped is found too, also by a
// database opened with OpenReadOnly.
func (db *DB) VerifyAudit(ctx context.Context) error {
	_, err := db.VerifyAuditCount(ctx)
	return err
}

// VerifyAuditCount is VerifyAudit returning how many entries it checked.
func (db *DB) VerifyAuditCount(ctx context.Context) (int64, error) {
	// Read the head before the snapshot starts: the snapshot then holds at least it.
	head, headHash := db.AuditHead()

	tx, err := db.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return 0, fmt.Errorf("store: verify audit: %w", err)
	}
	defer tx.Rollback()
	if db.readOnly {
		// Another process may be writing: take the head from the same snapshot, so
		// entries beyond it were not committed through the store.
		h, err := readAuditHead(ctx, tx)
		if err != nil {
			return 0, err
		}
		head, headHash = h.seq, h.hash
	}
	anchor, anchorHash, err := readAuditAnchor(ctx, tx)
	if err != nil {
		return 0, err
	}
	n, err := verifyRows(ctx, tx, head, headHash, anchor, anchorHash, db.readOnly)
	return n, err
}

// AuditAnchor returns the seq and hash of the last audit entry retention deleted
// (0, "" when none was): verification starts after it.
func (db *DB) AuditAnchor(ctx context.Context) (seq int64, hash string, err error) {
	return readAuditAnchor(ctx, db.r)
}

// verifyRows checks the chain from the entry after the retention anchor (seq 1
// when none was deleted), which must name the anchor's hash as its prev, and
// returns how many entries it checked.
func verifyRows(ctx context.Context, tx *sql.Tx, head int64, headHash string, anchor int64, anchorHash string, exact bool) (int64, error) {
	rows, err := tx.QueryContext(ctx, `SELECT `+auditColumns+` FROM audit ORDER BY seq`)
	if err != nil {
		return 0, fmt.Errorf("store: verify audit: %w", err)
	}
	defer rows.Close()

	last := vakt.AuditEntry{Seq: anchor, Hash: anchorHash}
	for rows.Next() {
		e, err := scanAudit(rows)
		if err != nil {
			return 0, fmt.Errorf("store: verify audit: %w", err)
		}
		switch {
		case e.Seq != last.Seq+1:
			return 0, &AuditError{Seq: last.Seq + 1, Reason: "missing (deleted)"}
		case e.Hash != e.ChainHash():
			return 0, &AuditError{Seq: e.Seq, Reason: "contents do not match its hash (edited or moved)"}
		case e.Prev != last.Hash:
			return 0, &AuditError{Seq: e.Seq, Reason: fmt.Sprintf(
				"does not follow entry %d (reordered, or entry %d rewritten)", last.Seq, last.Seq)}
		case e.Seq == head && e.Hash != headHash:
			return 0, &AuditError{Seq: e.Seq, Reason: "differs from the entry this gateway committed (rewritten)"}
		}
		last = e
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("store: verify audit: %w", err)
	}
	if last.Seq < head {
		return 0, &AuditError{Seq: last.Seq + 1, Reason: fmt.Sprintf("missing (deleted; entries up to %d were committed)", head)}
	}
	if exact && last.Seq > head {
		return 0, &AuditError{Seq: head + 1, Reason: fmt.Sprintf("not committed by a gateway (entries after %d were added behind its back)", head)}
	}
	return last.Seq - anchor, nil
}

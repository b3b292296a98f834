package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	vakt "github.com/vakt/vakt"
)

// auditDB commits three batches holding six audit entries in all.
func auditDB(t *testing.T) (*DB, string) {
	t.Helper()
	db, path := newTestDB(t)
	for i := range 3 {
		b := &vakt.Batch{}
		for j := range 2 {
			b.Audit = append(b.Audit, vakt.AuditRecord{
				At:    t0.Add(time.Duration(i*2+j) * time.Second),
				Actor: fmt.Sprintf("staff:s-%d", j), Action: "alarm.accepted", Subject: fmt.Sprintf("alarm:a-%d", i),
			})
		}
		if i == 2 {
			b.Audit[1].At = time.Time{} // defaults to now
		}
		commit(t, db, b)
	}
	return db, path
}

func TestAuditChain(t *testing.T) {
	ctx := context.Background()
	db, _ := auditDB(t)
	if err := db.VerifyAudit(ctx); err != nil {
		t.Fatal(err)
	}
	all, err := db.AuditRange(ctx, 1, 0)
	if err != nil || len(all) != 6 {
		t.Fatalf("AuditRange = %d entries, %v", len(all), err)
	}
	for i, e := range all {
		if e.Seq != int64(i+1) || e.Hash != e.ChainHash() {
			t.Errorf("entry %d: seq %d, hash ok %v", i, e.Seq, e.Hash == e.ChainHash())
		}
		if i > 0 && e.Prev != all[i-1].Hash {
			t.Errorf("entry %d: prev does not chain", e.Seq)
		}
	}
	if all[0].Prev != "" {
		t.Errorf("first prev = %q", all[0].Prev)
	}
	if !all[5].At.Equal(t0) {
		t.Errorf("defaulted at = %v, want %v", all[5].At, t0)
	}
	if seq, hash := db.AuditHead(); seq != 6 || hash != all[5].Hash {
		t.Errorf("head = %d %s", seq, hash)
	}
	if page, _ := db.AuditRange(ctx, 3, 2); len(page) != 2 || page[0].Seq != 3 || !reflect.DeepEqual(page, all[2:4]) {
		t.Errorf("AuditRange(3, 2) = %+v", page)
	}
}

func TestVerifyAuditFindsTampering(t *testing.T) {
	for _, tc := range []struct {
		name   string
		tamper []string
		seq    int64
	}{
		{"edited", []string{`UPDATE audit SET actor = 'staff:s-9' WHERE seq = 4`}, 4},
		{"edited time", []string{`UPDATE audit SET at = at + 1 WHERE seq = 2`}, 2},
		{"deleted", []string{`DELETE FROM audit WHERE seq = 3`}, 3},
		{"deleted first", []string{`DELETE FROM audit WHERE seq = 1`}, 1},
		{"deleted last", []string{`DELETE FROM audit WHERE seq = 6`}, 6},
		{"swapped", []string{
			`UPDATE audit SET seq = -1 WHERE seq = 2`,
			`UPDATE audit SET seq = 2 WHERE seq = 3`,
			`UPDATE audit SET seq = 3 WHERE seq = -1`,
		}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			db, path := auditDB(t)
			raw := rawDB(t, path)
			for _, q := range tc.tamper {
				execSQL(t, raw, q)
			}
			err := db.VerifyAudit(ctx)
			var ae *AuditError
			if !errors.As(err, &ae) || !errors.Is(err, ErrAuditChain) {
				t.Fatalf("VerifyAudit = %v, want an *AuditError", err)
			}
			if ae.Seq != tc.seq {
				t.Errorf("names entry %d (%v), want %d", ae.Seq, err, tc.seq)
			}
			t.Log(err)
		})
	}
}

// A forger who recomputes the edited entry's hash is caught at the next entry.
func TestVerifyAuditFindsRehashedEdit(t *testing.T) {
	ctx := context.Background()
	db, path := auditDB(t)
	raw := rawDB(t, path)
	e := readAudit(t, raw, 3)
	e.Action = "alarm.rejected"
	e.Hash = e.ChainHash()
	execSQL(t, raw, `UPDATE audit SET action = ?, hash = ? WHERE seq = 3`, e.Action, e.Hash)
	var ae *AuditError
	if err := db.VerifyAudit(ctx); !errors.As(err, &ae) || ae.Seq != 4 {
		t.Fatalf("VerifyAudit = %v, want entry 4", err)
	}

	// Rewriting the whole tail from there on is caught by the head this gateway
	// committed (and, across restarts, by the head anchored in the cloud).
	prev := e.Hash
	for seq := int64(4); seq <= 6; seq++ {
		e := readAudit(t, raw, seq)
		e.Prev = prev
		e.Hash = e.ChainHash()
		execSQL(t, raw, `UPDATE audit SET prev = ?, hash = ? WHERE seq = ?`, e.Prev, e.Hash, seq)
		prev = e.Hash
	}
	if err := db.VerifyAudit(ctx); !errors.As(err, &ae) || ae.Seq != 6 {
		t.Fatalf("VerifyAudit = %v, want entry 6", err)
	}
}

// Entries swapped and re-hashed under their new seqs are caught at the first of them.
func TestVerifyAuditFindsRehashedSwap(t *testing.T) {
	ctx := context.Background()
	db, path := auditDB(t)
	raw := rawDB(t, path)
	e4, e5 := readAudit(t, raw, 4), readAudit(t, raw, 5)
	e4.Seq, e5.Seq = 5, 4
	e4.Hash, e5.Hash = e4.ChainHash(), e5.ChainHash()
	for _, e := range []vakt.AuditEntry{e4, e5} {
		execSQL(t, raw, `UPDATE audit SET actor = ?, action = ?, subject = ?, at = ?, prev = ?, hash = ? WHERE seq = ?`,
			e.Actor, e.Action, e.Subject, e.At.UnixNano(), e.Prev, e.Hash, e.Seq)
	}
	var ae *AuditError
	if err := db.VerifyAudit(ctx); !errors.As(err, &ae) || ae.Seq != 4 {
		t.Fatalf("VerifyAudit = %v, want entry 4", err)
	} else {
		t.Log(err)
	}
}

func readAudit(t *testing.T, raw *sql.DB, seq int64) vakt.AuditEntry {
	t.Helper()
	e, err := scanAudit(raw.QueryRow(`SELECT `+auditColumns+` FROM audit WHERE seq = ?`, seq))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestAuditHeadAcrossReopen(t *testing.T) {
	ctx := context.Background()
	db, path := auditDB(t)
	seq, hash := db.AuditHead()
	db.Close()
	db = openTest(t, path)
	if s, h := db.AuditHead(); s != seq || h != hash {
		t.Fatalf("reopened head = %d %s, want %d %s", s, h, seq, hash)
	}
	commit(t, db, &vakt.Batch{Audit: []vakt.AuditRecord{{Actor: "system", Action: "gateway.started"}}})
	if err := db.VerifyAudit(ctx); err != nil {
		t.Fatal(err)
	}
}

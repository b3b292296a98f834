package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	vakt "github.com/vakt/vakt"
)

// TestSecondOpenRefused: a second gateway on the same database is refused with a
// message naming the file and saying another gateway runs; once the first closes,
// the file opens again.
func TestSecondOpenRefused(t *testing.T) {
	ctx := context.Background()
	db, path := newTestDB(t)
	second, err := Open(ctx, path, Options{})
	if err == nil {
		second.Close()
		t.Fatal("a second Open of the same database succeeded")
	}
	if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "another gateway runs") {
		t.Fatalf("error %q does not name the path and the other gateway", err)
	}
	// The refused Open changed nothing: the first still commits.
	commit(t, db, &vakt.Batch{Audit: []vakt.AuditRecord{{Actor: "system", Action: "test", Subject: "lock"}}})
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	again.Close()
}

// TestOpenReadOnlyMissingFile: a mistyped path is an error, and nothing is created.
func TestOpenReadOnlyMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "typo", "vakt.db")
	db, err := OpenReadOnly(context.Background(), path, Options{})
	if err == nil {
		db.Close()
		t.Fatal("OpenReadOnly of a missing file succeeded")
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("error %q does not name the path", err)
	}
	if _, err := os.Stat(filepath.Dir(path)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("OpenReadOnly created %s", filepath.Dir(path))
	}
}

// TestOpenReadOnlyNotADatabase: an empty file (say, a path touched by mistake) is
// not an intact empty chain.
func TestOpenReadOnlyNotADatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "empty.db")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	db, err := OpenReadOnly(context.Background(), path, Options{})
	if err == nil {
		db.Close()
		t.Fatal("OpenReadOnly of an empty file succeeded")
	}
}

// TestReadOnlyBesideWriter: verify-audit may run beside the gateway (no lock taken),
// and cannot write.
func TestReadOnlyBesideWriter(t *testing.T) {
	ctx := context.Background()
	_, path := auditDB(t)
	ro, err := OpenReadOnly(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	n, err := ro.VerifyAuditCount(ctx)
	if err != nil || n != 6 {
		t.Fatalf("VerifyAuditCount = %d, %v; want 6 entries intact", n, err)
	}
	if err := ro.Commit(ctx, &vakt.Batch{Audit: []vakt.AuditRecord{{Actor: "x", Action: "y"}}}); !errors.Is(err, vakt.ErrClosed) {
		t.Fatalf("Commit on a read-only store = %v, want ErrClosed", err)
	}
}

// TestTruncatedTailFoundAfterRestart: the tail of the audit table deleted while the
// gateway is stopped is found by a read-only verify and by the next gateway, because
// the head lives in meta, which a DELETE on the audit table does not reach.
func TestTruncatedTailFoundAfterRestart(t *testing.T) {
	ctx := context.Background()
	db, path := auditDB(t)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	execSQL(t, rawDB(t, path), `DELETE FROM audit WHERE seq > 4`)

	ro, err := OpenReadOnly(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	var ae *AuditError
	if _, err := ro.VerifyAuditCount(ctx); !errors.As(err, &ae) || ae.Seq != 5 {
		t.Fatalf("read-only VerifyAudit = %v, want entry 5 missing", err)
	}
	rw := openTest(t, path)
	if err := rw.VerifyAudit(ctx); !errors.As(err, &ae) || ae.Seq != 5 {
		t.Fatalf("VerifyAudit after restart = %v, want entry 5 missing", err)
	}
}

// TestAppendedBehindTheGatewaysBack: entries inserted with a valid chain but not
// through the store are found by a read-only verify (they lie beyond the head).
func TestAppendedBehindTheGatewaysBack(t *testing.T) {
	ctx := context.Background()
	db, path := auditDB(t)
	last := readAudit(t, rawDB(t, path), 6)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	e := vakt.AuditEntry{Seq: 7, At: last.At, Actor: "staff:s-1", Action: "alarm.accepted", Subject: "alarm:a-9", Prev: last.Hash}
	e.Hash = e.ChainHash()
	execSQL(t, rawDB(t, path), `INSERT INTO audit (`+auditColumns+`) VALUES (?,?,?,?,?,?,?)`,
		e.Seq, e.At.UnixNano(), e.Actor, e.Action, e.Subject, e.Prev, e.Hash)
	ro, err := OpenReadOnly(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	var ae *AuditError
	if _, err := ro.VerifyAuditCount(ctx); !errors.As(err, &ae) || ae.Seq != 7 {
		t.Fatalf("read-only VerifyAudit = %v, want entry 7 flagged", err)
	}
}

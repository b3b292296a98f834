package main

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	vakt "github.com/vakt/vakt"
	"github.com/vakt/vakt/store"
)

// dbOf is the database path demoConfig put beside the configuration.
func dbOf(cfg string) string { return filepath.Join(filepath.Dir(cfg), "vakt.db") }

// TestVerifyAuditCommand: verify-audit on a mistyped path is an error (and creates
// nothing); on a real database it says how many entries it checked; after the tail
// was deleted it names the first missing entry and exits 1.
func TestVerifyAuditCommand(t *testing.T) {
	cfg := demoConfig(t, freePort(t), freePort(t), true)
	var out, errOut bytes.Buffer
	if code := run([]string{"verify-audit", "-config", cfg}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), dbOf(cfg)) {
		t.Fatalf("no database yet: exit %d, stdout %q, stderr %q", code, out.String(), errOut.String())
	}
	if _, err := os.Stat(dbOf(cfg)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("verify-audit created %s", dbOf(cfg))
	}

	ctx := context.Background()
	db, err := store.Open(ctx, dbOf(cfg), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		b := &vakt.Batch{Audit: []vakt.AuditRecord{{Actor: "staff:nurse-1", Action: "alarm.accepted", Subject: "alarm:a-" + string(rune('1'+i))}}}
		if err := db.Commit(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	errOut.Reset()
	if code := run([]string{"verify-audit", "-config", cfg}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "chain intact, 5 entries checked") {
		t.Fatalf("intact: exit %d, stdout %q, stderr %q", code, out.String(), errOut.String())
	}

	raw, err := sql.Open("sqlite", "file:"+dbOf(cfg))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(`DELETE FROM audit WHERE seq >= 4`); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	out.Reset()
	errOut.Reset()
	if code := run([]string{"verify-audit", "-config", cfg}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "audit entry 4: missing") {
		t.Fatalf("truncated: exit %d, stdout %q, stderr %q", code, out.String(), errOut.String())
	}
}

// TestSecondGatewayRefused: a second gateway on the same database stops at once
// with a message naming the database and the other gateway.
func TestSecondGatewayRefused(t *testing.T) {
	cfg := demoConfig(t, freePort(t), freePort(t), true)
	startGateway(t, cfg, nil)
	var out, errOut bytes.Buffer
	code := run([]string{"run", "-config", cfg}, &out, &errOut)
	if code != 1 || !strings.Contains(errOut.String(), "another gateway runs") || !strings.Contains(errOut.String(), dbOf(cfg)) {
		t.Fatalf("second gateway: exit %d, stderr %q", code, errOut.String())
	}
}

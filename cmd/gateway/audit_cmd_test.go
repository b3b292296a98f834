package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"slices"
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

// TestStartAuditsConfigAndWalkTest (S7): every start records the configuration file's
// digest and whether walk-test mode is on; a walk test left on is in the audit log.
func TestStartAuditsConfigAndWalkTest(t *testing.T) {
	for _, walk := range []bool{false, true} {
		cfg := demoConfig(t, freePort(t), freePort(t), true)
		if walk {
			raw, err := os.ReadFile(cfg)
			if err != nil {
				t.Fatal(err)
			}
			s := strings.Replace(string(raw), "site:\n", "site:\n  walk_test: true\n", 1)
			if s == string(raw) {
				t.Fatal("demo config has no site: section")
			}
			if err := os.WriteFile(cfg, []byte(s), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		m, _ := startGateway(t, cfg, nil)
		raw, _ := os.ReadFile(cfg)
		sum := sha256.Sum256(raw)
		entries, err := m.DB.AuditRange(context.Background(), 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range entries {
			got = append(got, e.Action+" "+e.Subject)
		}
		wantWalk := map[bool]string{false: "walktest.off", true: "walktest.on"}[walk] + " site:" + m.Config.Site.ID
		if !slices.Contains(got, "config.loaded config:sha256:"+hex.EncodeToString(sum[:8])) || !slices.Contains(got, wantWalk) {
			t.Fatalf("walk_test %v: audit %q", walk, got)
		}
	}
}

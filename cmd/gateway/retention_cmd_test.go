package main

import (
	"bytes"
	"context"
	"database/sql"
	"strings"
	"testing"
	"time"

	vakt "github.com/vakt/vakt"
	"github.com/vakt/vakt/store"
)

// TestVerifyAuditAfterRetention: once retention deleted the oldest audit entries,
// `gateway verify-audit` is green, says from where it checked, and still exits 1
// on an edit of an entry that remains.
func TestVerifyAuditAfterRetention(t *testing.T) {
	cfg := demoConfig(t, freePort(t), freePort(t), true)
	ctx := context.Background()
	db, err := store.Open(ctx, dbOf(cfg), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	for i := range 5 {
		at := now.Add(-200 * 24 * time.Hour).Add(time.Duration(i) * time.Minute)
		if i >= 3 {
			at = now.Add(-time.Duration(5-i) * time.Minute)
		}
		b := &vakt.Batch{Audit: []vakt.AuditRecord{{At: at, Actor: "staff:nurse-1", Action: "alarm.accepted", Subject: "alarm:a-" + string(rune('1'+i))}}}
		if err := db.Commit(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	res, err := db.PurgeRetention(ctx, vakt.RetentionPurge{Audit: now.Add(-90 * 24 * time.Hour), At: now})
	if err != nil || res.Audit != 3 {
		t.Fatalf("purge = %+v, %v; want 3 audit entries", res, err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	code := run([]string{"verify-audit", "-config", cfg}, &out, &errOut)
	if code != 0 || !strings.Contains(out.String(), "entries up to 3 deleted by retention") ||
		!strings.Contains(out.String(), "chain intact, 3 entries checked (head 6") {
		t.Fatalf("after retention: exit %d, stdout %q, stderr %q", code, out.String(), errOut.String())
	}

	raw, err := sql.Open("sqlite", "file:"+dbOf(cfg))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(`UPDATE audit SET subject = 'alarm:a-9' WHERE seq = 5`); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	out.Reset()
	errOut.Reset()
	if code := run([]string{"verify-audit", "-config", cfg}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "audit entry 5: contents do not match") {
		t.Fatalf("edited after retention: exit %d, stdout %q, stderr %q", code, out.String(), errOut.String())
	}
}

// TestVerifyAuditAnchorAfterRetention: retention deleted every audit entry the
// cloud acknowledged, the cloud's anchored head among them: verify-audit compares
// the head with the retention anchor instead, and still catches a rewritten one.
func TestVerifyAuditAnchorAfterRetention(t *testing.T) {
	cl := startCloud(t)
	brokerPort, apiPort := freePort(t), freePort(t)
	cfg := cloudDemoConfig(t, apiPort, brokerPort, cl.url(), "")
	m := &Main{ConfigPath: cfg, Log: &lockedBuffer{}}
	ctx, cancel := context.WithCancel(context.Background())
	if err := m.Open(ctx); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	<-m.Ready()
	press(t, brokerPort, "zigbee2mqtt/room101/sos", `{"action":"emergency"}`)
	var head int64
	eventually(t, "the audit head anchored and acknowledged", func() bool {
		st, err := m.Cloud.State(context.Background())
		seq, _ := m.DB.AuditHead()
		// Everything acknowledged (the last, small acknowledgement may still wait
		// for a commit: engine.AcknowledgeOutbox; the stop writes it).
		left, _ := m.DB.PendingOutbox(context.Background(), m.Engine.OutboxAckQueued(), 1)
		head = seq
		return err == nil && st.AuditHead != nil && st.AuditHead.Seq == seq && seq > 0 && len(left) == 0
	})
	cancel()
	<-done
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}

	db, err := store.Open(context.Background(), dbOf(cfg), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	res, err := db.PurgeRetention(context.Background(), vakt.RetentionPurge{Audit: now.Add(time.Hour), RequireAcked: true, At: now})
	if err != nil || res.Audit != head {
		t.Fatalf("purge = %+v, %v; want all %d acknowledged entries", res, err, head)
	}
	db.Close()

	verify := func() (int, string) {
		var out, errOut bytes.Buffer
		rc := run([]string{"verify-audit", "-config", cfg}, &out, &errOut)
		return rc, out.String() + errOut.String()
	}
	if rc, out := verify(); rc != 0 || !strings.Contains(out, "chain intact, 1 entries checked") ||
		!strings.Contains(out, "matches the cloud's anchor (the retention anchor)") {
		t.Fatalf("verify-audit after retention: exit %d\n%s", rc, out)
	}
	raw, err := sql.Open("sqlite", "file:"+dbOf(cfg))
	if err != nil {
		t.Fatal(err)
	}
	// A forger rewrites the anchor and the one entry after it consistently: the
	// chain alone looks intact, the cloud's copy does not agree.
	e := vakt.AuditEntry{}
	var at int64
	if err := raw.QueryRow(`SELECT seq, at, actor, action, subject FROM audit`).Scan(&e.Seq, &at, &e.Actor, &e.Action, &e.Subject); err != nil {
		t.Fatal(err)
	}
	e.At, e.Prev = time.Unix(0, at).UTC(), "forged"
	e.Hash = e.ChainHash()
	for _, q := range []string{
		`UPDATE meta SET value = CAST('forged' AS BLOB) WHERE key = 'audit_anchor_hash'`,
		`UPDATE audit SET prev = 'forged', hash = '` + e.Hash + `'`,
		`UPDATE meta SET value = CAST('` + e.Hash + `' AS BLOB) WHERE key = 'audit_head_hash'`,
	} {
		if _, err := raw.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	raw.Close()
	if rc, out := verify(); rc == 0 || !strings.Contains(out, "chain intact") || !strings.Contains(out, "differs from the copy the cloud holds") {
		t.Fatalf("verify-audit with a rewritten anchor: exit %d\n%s", rc, out)
	}
}

package main

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestVerifyAuditAnchor: verify-audit compares the local audit log with the head
// the cloud anchored. A log whose tail was cut off after it reached the cloud
// passes the chain check but not the anchor; with the cloud away or not
// configured it says the anchor was not checked.
func TestVerifyAuditAnchor(t *testing.T) {
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
	eventually(t, "the audit head anchored", func() bool {
		st, err := m.Cloud.State(context.Background())
		seq, _ := m.DB.AuditHead()
		return err == nil && st.AuditHead != nil && st.AuditHead.Seq == seq && seq > 0
	})
	cancel()
	<-done
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}

	verify := func() (int, string) {
		var out, errOut bytes.Buffer
		rc := run([]string{"verify-audit", "-config", cfg}, &out, &errOut)
		return rc, out.String() + errOut.String()
	}
	if rc, out := verify(); rc != 0 || !strings.Contains(out, "chain intact") || !strings.Contains(out, "matches the cloud's anchor") {
		t.Fatalf("verify-audit on an intact log: exit %d\n%s", rc, out)
	}

	// Cut off the last audit entry, as someone hiding what happened would, and make
	// the local record of the head agree, so that the chain alone looks intact.
	db := filepath.Join(filepath.Dir(cfg), "vakt.db")
	const cut = `DELETE FROM audit WHERE seq = (SELECT max(seq) FROM audit);
UPDATE meta SET value = (SELECT max(seq) FROM audit) WHERE key = 'audit_head_seq';
UPDATE meta SET value = (SELECT hash FROM audit ORDER BY seq DESC LIMIT 1) WHERE key = 'audit_head_hash';`
	if out, err := exec.Command("sqlite3", db, cut).CombinedOutput(); err != nil {
		t.Fatalf("sqlite3: %v %s", err, out)
	}
	rc, out := verify()
	if rc == 0 || !strings.Contains(out, "chain intact") || !strings.Contains(out, "truncated") {
		t.Fatalf("verify-audit on a truncated log: exit %d\n%s", rc, out)
	}

	cl.stop()
	if rc, out := verify(); rc != 0 || !strings.Contains(out, "anchor: not checked") {
		t.Errorf("verify-audit with the cloud away: exit %d\n%s", rc, out)
	}
}

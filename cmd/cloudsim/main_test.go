package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	cloudsync "github.com/vakt/vakt/sync"
	"github.com/vakt/vakt/sync/conformance"
	"github.com/vakt/vakt/sync/wire"
)

// TestMain lets the test binary be cloudsim itself, so the tests start the real
// program as a child process without a separate build.
func TestMain(m *testing.M) {
	if os.Getenv("CLOUDSIM_CHILD") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

type child struct {
	api, admin string
	cmd        *exec.Cmd
}

func startChild(t *testing.T, args ...string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "CLOUDSIM_CHILD=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		if t.Failed() {
			t.Logf("cloudsim stderr:\n%s", stderr.String())
		}
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("cloudsim did not start: %v\n%s", err, stderr.String())
	}
	var c child
	if _, err := fmt.Sscanf(line, "listening %s admin %s", &c.api, &c.admin); err != nil {
		t.Fatalf("start line %q: %v", line, err)
	}
	c.cmd = cmd
	return &c
}

// runCLI runs one admin subcommand against the child, as a technician would.
func (c *child) runCLI(t *testing.T, args ...string) string {
	t.Helper()
	var out bytes.Buffer
	verb := 1
	if args[0] == "staff" {
		verb = 2 // "staff put"
	}
	args = append(append(append([]string{}, args[:verb]...), "-admin-url", "http://"+c.admin), args[verb:]...)
	if err := run(context.Background(), args, &out); err != nil {
		t.Fatalf("cloudsim %v: %v", args, err)
	}
	return out.String()
}

// TestConformanceChild runs the conformance suite against the cloudsim program as
// a child process with a real SQLite file, editing its directory through the CLI.
func TestConformanceChild(t *testing.T) {
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	if err := os.WriteFile(tokens, []byte("# gateway token\nconf-gw tok-conf\nother-gw tok-other\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := startChild(t, "-listen", "127.0.0.1:0", "-admin", "127.0.0.1:0", "-db", filepath.Join(dir, "cloud.db"),
		"-tokens", tokens, "-max-body", "65536")
	conformance.RunConformance(t, conformance.Target{URL: "http://" + c.api, Gateway: "conf-gw", Token: "tok-conf",
		OtherToken: "tok-other", MaxBody: 65536,
		PutStaff: func(ctx context.Context, s wire.Staff) error {
			c.runCLI(t, "staff", "put", "-gateway", "conf-gw", "-id", s.ID, "-name", s.Name, "-roles", strings.Join(s.Roles, ","))
			return nil
		},
		RemoveStaff: func(ctx context.Context, id string) error {
			c.runCLI(t, "staff", "remove", "-gateway", "conf-gw", "-id", id)
			return nil
		},
		RequestErasure: func(ctx context.Context, id string) (string, error) {
			var r struct {
				RequestID string `json:"request_id"`
			}
			err := json.Unmarshal([]byte(c.runCLI(t, "erase", "-gateway", "conf-gw", "-id", id)), &r)
			return r.RequestID, err
		},
	})
	var n struct{ Entries int64 }
	if err := json.Unmarshal([]byte(c.runCLI(t, "count", "-gateway", "conf-gw")), &n); err != nil || n.Entries == 0 {
		t.Fatalf("count: %+v %v", n, err)
	}
}

// TestFaultCLI: a fault set with the CLI is what the API answers; cleared, it is gone.
func TestFaultCLI(t *testing.T) {
	dir := t.TempDir()
	c := startChild(t, "-listen", "127.0.0.1:0", "-admin", "127.0.0.1:0", "-db", filepath.Join(dir, "cloud.db"), "-token", "gw:tok")
	c.runCLI(t, "fault", "-mode", "status", "-status", "429", "-retry-after", "30s")
	req, _ := http.NewRequest(http.MethodPost, "http://"+c.api+"/v1/gateways/gw/entries", strings.NewReader(""))
	req.Header.Set("Authorization", "Bearer tok")
	req.Header.Set(wire.HeaderAfter, "0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "30" {
		t.Fatalf("status %d Retry-After %q, want 429 and 30", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	c.runCLI(t, "fault", "-clear")
	c.runCLI(t, "fault", "-mode", "refuse")
	client := &http.Client{Timeout: 5 * time.Second}
	if _, err := client.Get("http://" + c.api + "/v1/gateways/gw/state"); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("refuse fault: err %v, want connection refused", err)
	}
	c.runCLI(t, "fault", "-clear")
	req, _ = http.NewRequest(http.MethodGet, "http://"+c.api+"/v1/gateways/gw/state", nil)
	req.Header.Set("Authorization", "Bearer tok")
	resp, err = client.Do(req)
	if err != nil {
		t.Fatalf("after clearing refuse: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("state after clear: %d", resp.StatusCode)
	}
}

func TestTokensFileMode(t *testing.T) {
	p := filepath.Join(t.TempDir(), "tokens")
	os.WriteFile(p, []byte("gw tok\n"), 0o644)
	err := run(context.Background(), []string{"-tokens", p, "-db", filepath.Join(t.TempDir(), "c.db")}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("err = %v, want a refusal of a world-readable token file", err)
	}
}

// TestAckedSurvivesSIGKILL: what the cloud acknowledged is durably stored: killed
// with SIGKILL right after an ack, the restarted cloud still has every entry.
func TestAckedSurvivesSIGKILL(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "cloud.db")
	c := startChild(t, "-listen", "127.0.0.1:0", "-admin", "127.0.0.1:0", "-db", db, "-token", "gw:tok")
	cl, err := cloudsync.NewClient(cloudsync.Config{URL: "http://" + c.api, Gateway: "gw", Token: "tok", AllowHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var acked int64
	for range 20 {
		es := make([]wire.Envelope, 100)
		for i := range es {
			es[i] = wire.Envelope{Seq: acked + int64(i) + 1, Kind: wire.KindAlarm, V: 1, Boot: "b", Body: json.RawMessage(`{"id":"a-1"}`)}
		}
		ack, err := cl.Upload(ctx, acked, es)
		if err != nil {
			t.Fatal(err)
		}
		acked = ack.Acked
	}
	cl.Close()
	c.cmd.Process.Kill() // SIGKILL: no shutdown, no checkpoint
	c.cmd.Wait()
	c2 := startChild(t, "-listen", "127.0.0.1:0", "-admin", "127.0.0.1:0", "-db", db, "-token", "gw:tok")
	cl2, _ := cloudsync.NewClient(cloudsync.Config{URL: "http://" + c2.api, Gateway: "gw", Token: "tok", AllowHTTP: true})
	defer cl2.Close()
	st, err := cl2.State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var n struct{ Entries int64 }
	json.Unmarshal([]byte(c2.runCLI(t, "count", "-gateway", "gw")), &n)
	if st.Acked != acked || n.Entries != acked {
		t.Fatalf("after SIGKILL: acked %d, %d rows; the cloud had acknowledged %d", st.Acked, n.Entries, acked)
	}
}

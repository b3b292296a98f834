package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	vakt "github.com/vakt/vakt"
	"github.com/vakt/vakt/engine"
	"github.com/vakt/vakt/store/storetest"
	"golang.org/x/crypto/bcrypt"
)

// The person erased here comes from the (simulated) cloud directory: the demo's
// configured staff cannot be erased while the file names them.
var cloudPerson = vakt.Staff{ID: "s-5521", Name: "Qx9 Cloudperson Wvk", Phone: "+4790553311",
	Email: "qx9.cloud@pleie.example", Roles: []string{"nurse"}}

// adminConfig is the demo with nurse-1 holding the admin role.
func adminConfig(t *testing.T) string {
	t.Helper()
	path := demoConfig(t, freePort(t), freePort(t), true)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(b), "roles: [nurse, assistant, nurse-lead, technician]", "roles: [nurse, assistant, nurse-lead, technician, admin]", 1)
	s = strings.Replace(s, "name: Ingrid Demo\n    roles: [nurse]", "name: Ingrid Demo\n    roles: [nurse, admin]", 1)
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func addCloudPerson(t *testing.T, m *Main) {
	t.Helper()
	p := cloudPerson
	h, _ := bcrypt.GenerateFromPassword([]byte("cloud-secret"), bcrypt.MinCost)
	p.SecretHash = string(h)
	if err := m.Engine.ApplyDirectory(context.Background(), engine.DirectoryChange{Ops: []engine.DirectoryOp{{Kind: engine.DirectoryUpsert, Staff: p}}}); err != nil {
		t.Fatal(err)
	}
}

// G3, G4 on a running gateway: the admin endpoints export and erase a person; the
// erased person's login ends; a configured person is refused with a message saying
// what to do; non-admins are refused; the CLI refuses while the gateway runs and
// points at the endpoint.
func TestAdminExportAndErase(t *testing.T) {
	cfg := adminConfig(t)
	m, c := startGateway(t, cfg, nil)
	addCloudPerson(t, m)
	victim := c.login(string(cloudPerson.ID), "cloud-secret")
	admin := c.login("nurse-1", "demo")
	plain := c.login("nurse-2", "demo")

	if code, body := c.do("GET", "/api/v1/admin/staff/"+string(cloudPerson.ID)+"/export", plain, nil); code != http.StatusForbidden {
		t.Errorf("export by a non-admin: %d %s", code, body)
	}
	code, body := c.do("GET", "/api/v1/admin/staff/"+string(cloudPerson.ID)+"/export", admin, nil)
	if code != http.StatusOK || !bytes.Contains(body, []byte(cloudPerson.Name)) || !bytes.Contains(body, []byte(`"format":"vakt-staff-export/1"`)) {
		t.Fatalf("export: %d %s", code, body)
	}

	code, body = c.do("DELETE", "/api/v1/admin/staff/nurse-2", admin, nil)
	if code != http.StatusConflict || !bytes.Contains(body, []byte("remove them from the file")) {
		t.Errorf("erasing a configured person: %d %s", code, body)
	}
	var out, errOut bytes.Buffer
	if rc := run([]string{"erase-person", "-config", cfg, "-staff", string(cloudPerson.ID)}, &out, &errOut); rc != 1 ||
		!strings.Contains(errOut.String(), "running gateway") || !strings.Contains(errOut.String(), "DELETE /api/v1/admin/staff/ID") {
		t.Errorf("erase-person while running: exit %d, stderr %q", rc, errOut.String())
	}

	code, body = c.do("DELETE", "/api/v1/admin/staff/"+string(cloudPerson.ID), admin, nil)
	var conf engine.Erasure
	if code != http.StatusOK || json.Unmarshal(body, &conf) != nil || conf.Staff != cloudPerson.ID || conf.Pseudonym == "" {
		t.Fatalf("erase: %d %s", code, body)
	}
	if code, body := c.do("GET", "/api/v1/me", victim, nil); code != http.StatusUnauthorized {
		t.Errorf("the erased person's login still works: %d %s", code, body)
	}
	if hits, _ := storetest.Found(m.DB.Path(), storetest.Needles(cloudPerson.Name, cloudPerson.Phone, cloudPerson.Email)); len(hits) > 0 {
		t.Errorf("after the erasure: %v", hits)
	}
}

// G4 with the gateway stopped: erase-person opens the store and engine in-process
// and prints the confirmation; export-person shows nothing personal is left; the
// reviewer's script finds the markers before and not after.
func TestErasePersonCommand(t *testing.T) {
	cfg := adminConfig(t)
	m := &Main{ConfigPath: cfg, Log: io.Discard}
	if err := m.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Engine.Run(ctx) }()
	addCloudPerson(t, m)
	// On duty with a position (nearest-staff routing is on in the demo).
	const lat, lon = 59.91394417, 10.75236693
	if _, err := m.Engine.SetDuty(ctx, cloudPerson.ID, true); err != nil {
		t.Fatal(err)
	}
	if err := m.Engine.SetPosition(ctx, cloudPerson.ID, vakt.Position{Lat: lat, Lon: lon, Floor: 1}); err != nil {
		t.Fatal(err)
	}
	cancel()
	<-done
	db := m.DB.Path()
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	script, _ := filepath.Abs("../../scripts/grep-person.sh")
	grep := func() (int, string) {
		cmd := exec.Command("sh", script, db, cloudPerson.Name, cloudPerson.Phone, cloudPerson.Email,
			"float:59.91394417", "float:10.75236693")
		b, _ := cmd.CombinedOutput()
		return cmd.ProcessState.ExitCode(), string(b)
	}
	_, noPython := exec.LookPath("python3") // the script needs it for the binary form only
	if rc, out := grep(); rc != 1 || !strings.Contains(out, cloudPerson.Name) || (noPython == nil && !strings.Contains(out, "float:59.91394417 (binary >d)")) {
		t.Fatalf("grep-person.sh before the erasure: exit %d, %s", rc, out)
	}

	var out, errOut bytes.Buffer
	if rc := run([]string{"erase-person", "-config", cfg, "-staff", string(cloudPerson.ID)}, &out, &errOut); rc != 0 {
		t.Fatalf("erase-person: exit %d, %s", rc, errOut.String())
	}
	var conf engine.Erasure
	if err := json.Unmarshal(out.Bytes(), &conf); err != nil || conf.Staff != cloudPerson.ID || !conf.Scrubbed {
		t.Errorf("confirmation %s (%v)", out.String(), err)
	}
	if rc, out := grep(); rc != 0 {
		t.Errorf("grep-person.sh after the erasure: exit %d, %s", rc, out)
	}
	out.Reset()
	if rc := run([]string{"export-person", "-config", cfg, "-staff", string(cloudPerson.ID)}, &out, &errOut); rc != 0 ||
		!strings.Contains(out.String(), `"directory": null`) || !strings.Contains(out.String(), `"staff.erased"`) {
		t.Errorf("export-person after the erasure: exit %d, %s %s", rc, out.String(), errOut.String())
	}
	out.Reset()
	errOut.Reset()
	if rc := run([]string{"erase-person", "-config", cfg, "-staff", "nurse-1"}, &out, &errOut); rc != 1 || !strings.Contains(errOut.String(), "remove them from the file") {
		t.Errorf("erase-person of a configured person: exit %d, %s", rc, errOut.String())
	}
}

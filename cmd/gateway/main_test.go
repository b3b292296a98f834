package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckConfig is what a technician sees before deploying: every problem on its
// own line with the file, the key path and the line, and a failing exit code; the
// shipped examples pass.
func TestCheckConfig(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "site.yaml")
	_ = os.WriteFile(bad, []byte("site:\n  id: x\n  colour: red\nzones:\n  - id: east\n    floor: first\n"), 0o600)
	var out, errOut bytes.Buffer
	if code := run([]string{"check-config", "-config", bad}, &out, &errOut); code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	want := []string{
		bad + `: site.colour: unknown key; known keys here: demo, id, lat, lon, name, timezone, walk_test (line 3)`,
		bad + `: zones[0].floor: want a whole number, got "first" (line 6)`,
	}
	for _, w := range want {
		if !strings.Contains(out.String(), w+"\n") {
			t.Errorf("output lacks %q:\n%s", w, out.String())
		}
	}
	if !strings.Contains(errOut.String(), "2 error(s)") {
		t.Errorf("stderr %q", errOut.String())
	}

	out.Reset()
	if code := run([]string{"check-config", "-config", "../../config/examples/demo.yaml"}, &out, &errOut); code != 0 || !strings.Contains(out.String(), ": ok (site solbakken-demo") {
		t.Fatalf("demo.yaml: exit %d %s %s", code, out.String(), errOut.String())
	}
}

func TestUnknownCommand(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"frobnicate"}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), `unknown command "frobnicate"`) {
		t.Fatalf("exit %d, stderr %q", code, errOut.String())
	}
}

package main

import (
	"bytes"
	"log/slog"
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

// TestConfigRequired: run and verify-audit name the missing flag instead of silently
// using the demo configuration (and its database) on a site box.
func TestConfigRequired(t *testing.T) {
	for _, cmd := range []string{"run", "verify-audit"} {
		var out, errOut bytes.Buffer
		if code := run([]string{cmd}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "-config FILE is required") {
			t.Errorf("%s without -config: exit %d, stderr %q", cmd, code, errOut.String())
		}
	}
}

// TestLogLevelFlag: a mistyped level is refused with the accepted values.
func TestLogLevelFlag(t *testing.T) {
	var out, errOut bytes.Buffer
	code := run([]string{"run", "-config", "../../config/examples/demo.yaml", "-log-level", "verbose"}, &out, &errOut)
	if code != 1 || !strings.Contains(errOut.String(), "use debug, info, warn or error") {
		t.Fatalf("exit %d, stderr %q", code, errOut.String())
	}
	for name, want := range map[string]slog.Level{"debug": slog.LevelDebug, "INFO": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError} {
		if got, err := parseLevel(name); err != nil || got != want {
			t.Errorf("parseLevel(%q) = %v, %v", name, got, err)
		}
	}
}

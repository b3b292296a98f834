package espa

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDeps keeps the protocol package pure: the standard library, the root package
// and the driver registry (itself standard library and root only).
func TestDeps(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, p := range strings.Fields(string(out)) {
		if p != "github.com/vakt/vakt" && p != "github.com/vakt/vakt/drivers" && p != "github.com/vakt/vakt/drivers/espa" {
			t.Errorf("drivers/espa depends on %s", p)
		}
	}
}

package serial

import (
	"os/exec"
	"strings"
	"testing"
)

// TestOnlyImporterOfTarm: drivers/serial is the one package of the module that
// imports tarm/serial (architecture.md, "one package per outside dependency").
func TestOnlyImporterOfTarm(t *testing.T) {
	out, err := exec.Command("go", "list", "-e", "-f", `{{.ImportPath}} {{join .Imports " "}} {{join .TestImports " "}} {{join .XTestImports " "}}`, "github.com/vakt/vakt/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(l)
		if len(f) == 0 || f[0] == "github.com/vakt/vakt/drivers/serial" {
			continue
		}
		for _, imp := range f[1:] {
			if imp == "github.com/tarm/serial" {
				t.Errorf("%s imports github.com/tarm/serial", f[0])
			}
		}
	}
}

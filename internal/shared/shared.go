// Package shared finds the team's shared test material (../shared beside the module
// root: protocol test vectors, Zigbee2MQTT payloads) for golden tests. Tests fail
// rather than skip without it: the vectors are the contract, and CI has them.
package shared

import (
	"os"
	"path/filepath"
	"testing"
)

// Path returns ../shared/<elem...> relative to the module root, failing t when it is
// not there.
func Path(t testing.TB, elem ...string) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test directory")
		}
		dir = parent
	}
	p := filepath.Join(append([]string{dir, "..", "shared"}, elem...)...)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("shared test material missing: %v (CI keeps ../shared beside the clone)", err)
	}
	return p
}

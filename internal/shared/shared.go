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

// Lookup returns the shared folder's <elem...> and true when it is there: $VAKT_SHARED,
// else ../shared beside the module root. Tests that compare their committed copy of a
// vector with the shared one use it, and say nothing when the folder is absent (a bare
// clone, a worktree).
func Lookup(elem ...string) (string, bool) {
	root := os.Getenv("VAKT_SHARED")
	if root == "" {
		dir, err := os.Getwd()
		if err != nil {
			return "", false
		}
		for {
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				break
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				return "", false
			}
			dir = parent
		}
		root = filepath.Join(dir, "..", "shared")
	}
	p := filepath.Join(append([]string{root}, elem...)...)
	if _, err := os.Stat(p); err != nil {
		return "", false
	}
	return p, true
}

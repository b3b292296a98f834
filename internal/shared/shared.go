// Package shared keeps the packages' copies of the team's shared test vectors
// honest. Golden and fuzz tests read their package's testdata/ (so `go test ./...`
// passes in a bare clone); MatchDir compares that copy with ../shared beside the
// module root when the folder is there, and skips when it is not.
package shared

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// Dir returns ../shared/<elem...> (or $VAKT_SHARED/<elem...>), or "" when it is not
// there (a bare clone, a worktree).
func Dir(t testing.TB, elem ...string) string {
	t.Helper()
	p, _ := Lookup(elem...)
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

// MatchDir checks that every file of ../shared/<elem...> matching pattern has an
// identical copy in local (a folder of the package's testdata). It skips the test
// when the shared folder is not beside the clone, and fails naming each file that
// is missing or differs, so a changed vector is copied again rather than ignored.
func MatchDir(t *testing.T, local, pattern string, elem ...string) {
	t.Helper()
	src := Dir(t, elem...)
	if src == "" {
		t.Skipf("no %s beside this clone; the package's copy in %s is used as is",
			filepath.Join(append([]string{"../shared"}, elem...)...), local)
	}
	files, err := filepath.Glob(filepath.Join(src, pattern))
	if err != nil || len(files) == 0 {
		t.Fatalf("no %s in %s: %v", pattern, src, err)
	}
	for _, f := range files {
		want, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		mine := filepath.Join(local, filepath.Base(f))
		got, err := os.ReadFile(mine)
		if err != nil {
			t.Errorf("%s is missing: cp %s %s", mine, f, mine)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from %s: copy it again (cp %s %s)", mine, f, f, mine)
		}
	}
}

// Package deptest checks the module's dependency rules (architecture.md) with
// `go list`, for the build that ships: GOOS=linux GOARCH=arm64, CGO_ENABLED=0. The
// rules are transitive: a package that may not use the network may not reach net
// through a library either.
package deptest

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"sort"
	"strings"
	"testing"
)

// Package is what go list says about one package for linux/arm64.
type Package struct {
	ImportPath   string
	Standard     bool
	Imports      []string
	TestImports  []string
	XTestImports []string
}

// List runs `go list -deps -test=false -json` on patterns for linux/arm64 and returns
// every package reached, by import path.
func List(t testing.TB, patterns ...string) map[string]*Package {
	t.Helper()
	args := append([]string{"list", "-deps", "-json=ImportPath,Standard,Imports,TestImports,XTestImports"}, patterns...)
	cmd := exec.Command("go", args...)
	cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH=arm64", "CGO_ENABLED=0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go %s: %v: %s", strings.Join(args, " "), err, stderr.Bytes())
	}
	pkgs := map[string]*Package{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		p := &Package{}
		if err := dec.Decode(p); err != nil {
			t.Fatalf("go list output: %v", err)
		}
		pkgs[p.ImportPath] = p
	}
	return pkgs
}

// Rule is what one package may depend on, transitively.
type Rule struct {
	// Allow, when not nil, lists the only non-standard packages it may reach
	// (itself included). An entry "a/b/..." matches a/b and everything below it.
	Allow []string
	// Deny lists packages, standard or not, it must not reach.
	Deny []string
	// Boundary lists packages whose own dependencies are not followed: each is a
	// documented exception, with its reason next to the rule. A boundary the
	// package no longer reaches fails the check, so the exception is removed
	// once it is fixed.
	Boundary []string
}

func match(list []string, path string) bool {
	for _, e := range list {
		if e == path {
			return true
		}
		if base, ok := strings.CutSuffix(e, "/..."); ok && (path == base || strings.HasPrefix(path, base+"/")) {
			return true
		}
	}
	return false
}

// Deps returns what pkg reaches for linux/arm64 (pkg itself excluded), not
// following the dependencies of the boundary packages.
func Deps(t testing.TB, pkg string, boundary ...string) []string {
	t.Helper()
	all := List(t, pkg)
	root := rootOf(t, all, pkg)
	seen := map[string]bool{root: true}
	queue := []string{root}
	for len(queue) > 0 {
		p := all[queue[0]]
		queue = queue[1:]
		if p == nil || (p.ImportPath != root && match(boundary, p.ImportPath)) {
			continue
		}
		for _, imp := range p.Imports {
			if !seen[imp] && imp != "C" && imp != "unsafe" {
				seen[imp] = true
				queue = append(queue, imp)
			}
		}
	}
	delete(seen, root)
	deps := make([]string, 0, len(seen))
	for d := range seen {
		deps = append(deps, d)
	}
	sort.Strings(deps)
	return deps
}

// rootOf finds pkg's import path in a listing (pkg may be "." or a relative path).
func rootOf(t testing.TB, all map[string]*Package, pkg string) string {
	t.Helper()
	if _, ok := all[pkg]; ok {
		return pkg
	}
	cmd := exec.Command("go", "list", pkg)
	cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH=arm64", "CGO_ENABLED=0")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %s: %v", pkg, err)
	}
	return strings.TrimSpace(string(out))
}

// Check fails t once for every dependency of pkg (linux/arm64, transitive) that
// breaks r, naming it.
func Check(t testing.TB, pkg string, r Rule) {
	t.Helper()
	all := List(t, pkg)
	root := rootOf(t, all, pkg)
	deps := Deps(t, pkg, r.Boundary...)
	reached := map[string]bool{}
	for _, d := range deps {
		reached[d] = true
		p := all[d]
		if match(r.Deny, d) {
			t.Errorf("%s depends on %s (denied)", root, d)
			continue
		}
		if r.Allow != nil && p != nil && !p.Standard && !match(r.Allow, d) {
			t.Errorf("%s depends on %s (not in its allow list)", root, d)
		}
	}
	for _, b := range r.Boundary {
		if !reached[strings.TrimSuffix(b, "/...")] {
			t.Errorf("%s no longer reaches %s: remove it from the rule's boundary (exception fixed)", root, b)
		}
	}
}

// Importers returns, for every package of the module matching pattern, the
// packages it imports directly (with its test files' imports when tests is set),
// for linux/arm64.
func Importers(t testing.TB, pattern string, tests bool) map[string][]string {
	t.Helper()
	args := []string{"list", "-e", "-json=ImportPath,Imports,TestImports,XTestImports", pattern}
	cmd := exec.Command("go", args...)
	cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH=arm64", "CGO_ENABLED=0")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go %s: %v", strings.Join(args, " "), err)
	}
	res := map[string][]string{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var p Package
		if err := dec.Decode(&p); err != nil {
			t.Fatalf("go list output: %v", err)
		}
		imps := append([]string(nil), p.Imports...)
		if tests {
			imps = append(imps, p.TestImports...)
			imps = append(imps, p.XTestImports...)
		}
		res[p.ImportPath] = imps
	}
	return res
}

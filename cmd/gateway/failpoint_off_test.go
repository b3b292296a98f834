//go:build !failpoint

package main

import (
	"testing"

	vakt "github.com/vakt/vakt"
)

// TestFailpointNotInProductionBuild: a gateway built without -tags failpoint ignores
// VAKT_FAILPOINT, so the variable set by mistake on a site cannot hang the alarm path.
func TestFailpointNotInProductionBuild(t *testing.T) {
	t.Setenv("VAKT_FAILPOINT", "before-commit")
	var s vakt.Store = struct{ vakt.Store }{}
	if got := withFailpoint(s); got != s {
		t.Fatalf("withFailpoint wrapped the store (%T) in a build without the failpoint tag", got)
	}
}

//go:build !failpoint

package main

import vakt "github.com/vakt/vakt"

// withFailpoint is a no-op in the production binary: VAKT_FAILPOINT exists only in
// binaries built with -tags failpoint (the crash tests build one), so a stray
// environment variable cannot make a site's gateway hang before a commit.
func withFailpoint(s vakt.Store) vakt.Store { return s }

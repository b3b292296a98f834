//go:build failpoint

package main

import (
	"context"
	"fmt"
	"os"

	vakt "github.com/vakt/vakt"
)

// failpointStore lets the crash tests stop the process at an exact point of the alarm
// path: with VAKT_FAILPOINT=before-commit the first commit holding an event announces
// itself on stderr and then hangs, so the test can SIGKILL the gateway before the
// event is durable (and so before the source was acknowledged). It is only wired in
// when that variable is set, and only compiled into binaries built with
// -tags failpoint (failpoint_off.go is the production no-op).
type failpointStore struct {
	vakt.Store
	point string
}

func withFailpoint(s vakt.Store) vakt.Store {
	p := os.Getenv("VAKT_FAILPOINT")
	if p == "" {
		return s
	}
	return failpointStore{Store: s, point: p}
}

func (f failpointStore) Commit(ctx context.Context, b *vakt.Batch) error {
	if f.point == "before-commit" && len(b.Events) > 0 {
		fmt.Fprintln(os.Stderr, "failpoint: before-commit")
		select {} // hang until killed
	}
	return f.Store.Commit(ctx, b)
}

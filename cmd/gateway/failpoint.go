//go:build failpoint

package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	vakt "github.com/vakt/vakt"
)

// failpointStore lets the crash tests stop the process at an exact point of the alarm
// path: with VAKT_FAILPOINT=before-commit the first commit holding an event announces
// itself on stderr and then hangs, so the test can SIGKILL the gateway before the
// event is durable (and so before the source was acknowledged). It is only wired in
// when that variable is set, and only compiled into binaries built with
// -tags failpoint (failpoint_off.go is the production no-op).
//
// VAKT_FAILPOINT=disk-full:<file> makes every commit fail, as SQLite does on a full
// disk, while <file> exists: the disk-full suite's fallback where it cannot mount a
// small filesystem (suite_diskfull_test.go).
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
	if flag, ok := strings.CutPrefix(f.point, "disk-full:"); ok {
		if _, err := os.Stat(flag); err == nil {
			return errors.New("database or disk is full (SQLITE_FULL, failpoint disk-full)")
		}
	}
	return f.Store.Commit(ctx, b)
}

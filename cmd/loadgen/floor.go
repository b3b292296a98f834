package main

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"time"

	vakt "github.com/vakt/vakt"
	"github.com/vakt/vakt/store"
)

// commitFloor measures the floor of requirements.md in the same run: the median time
// of one fsync'd single-event commit (WAL, synchronous=FULL) through the real store, on
// a scratch file in dir (the same disk as the gateway's database).
func commitFloor(ctx context.Context, dir string) (time.Duration, error) {
	tmp, err := os.MkdirTemp(dir, "floor-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(tmp)
	db, err := store.Open(ctx, filepath.Join(tmp, "floor.db"), store.Options{})
	if err != nil {
		return 0, err
	}
	defer db.Close()
	var ds []time.Duration
	for range 300 {
		start := time.Now()
		if err := db.Commit(ctx, &vakt.Batch{Events: []vakt.EventRecord{{Event: vakt.Event{Transmitter: "x", Kind: vakt.EventCheckIn, ReceivedAt: start}}}}); err != nil {
			return 0, err
		}
		ds = append(ds, time.Since(start))
	}
	slices.Sort(ds)
	return ds[len(ds)/2], nil
}

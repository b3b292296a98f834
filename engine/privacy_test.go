package engine_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	vakt "github.com/vakt/vakt"
	"github.com/vakt/vakt/internal/fakeclock"
	"github.com/vakt/vakt/store/storetest"
)

// purgeWatch is the store with a signal after each disk purge (PurgePositions ends
// with the TRUNCATE checkpoint that scrubs the WAL), so a test can wait for the
// purge a timer started instead of polling.
type purgeWatch struct {
	vakt.Store
	p      vakt.PositionPurger
	purged chan struct{}
	busy   atomic.Bool // the next purge fails as if a reader held the WAL
}

func (w *purgeWatch) PurgePositions(ctx context.Context, olderThan time.Time) (int, error) {
	if w.busy.CompareAndSwap(true, false) {
		w.purged <- struct{}{}
		return 0, errors.New("checkpoint: readers kept the WAL busy; retry")
	}
	n, err := w.p.PurgePositions(ctx, olderThan)
	w.purged <- struct{}{}
	return n, err
}

func newWatchedRig(t *testing.T, noNearest bool) (*rig, *purgeWatch) {
	w := &purgeWatch{purged: make(chan struct{}, 64)}
	r := &rig{t: t, path: filepath.Join(t.TempDir(), "vakt.db"), clock: fakeclock.New(t0), phones: newPhones(),
		noNearest: noNearest, wrap: func(s vakt.Store) vakt.Store {
			w.Store, w.p = s, s.(vakt.PositionPurger)
			return w
		}}
	r.start(false)
	t.Cleanup(func() { r.stop() })
	r.idle() // the start-up cycle, and its disk purge, are done
	drain(w.purged)
	return r, w
}

// waitPurge waits for the next disk purge.
func waitPurge(t *testing.T, purged chan struct{}) {
	t.Helper()
	select {
	case <-purged:
	case <-time.After(5 * time.Second):
		t.Fatal("no disk purge ran")
	}
}

// drain forgets purges that already ran (the one at start).
func drain(purged chan struct{}) {
	for {
		select {
		case <-purged:
		default:
			return
		}
	}
}

// onFiles lists where the position's coordinates are in the database, its WAL or
// its shared-memory file: as text and as 8-byte doubles in both byte orders.
func onFiles(t *testing.T, path string, lat, lon float64) []string {
	t.Helper()
	hits, err := storetest.Found(path, storetest.Needles(lat, lon))
	if err != nil {
		t.Fatal(err)
	}
	return hits
}

func setPosition(t *testing.T, r *rig, id vakt.StaffID, lat, lon float64) {
	t.Helper()
	if err := r.eng.SetPosition(context.Background(), id, vakt.Position{Lat: lat, Lon: lon, Floor: 1}); err != nil {
		t.Fatal(err)
	}
	if len(onFiles(t, r.path, lat, lon)) == 0 {
		t.Fatal("the position never reached the files: the test would prove nothing")
	}
}

// G1: going off duty removes the position from every file before the phone gets
// its answer, not only from the row (it once stayed in the WAL for 17.7 minutes,
// until a later cycle happened to checkpoint).
func TestOffDutyPositionGoneFromFiles(t *testing.T) {
	r, _ := newWatchedRig(t, false)
	lat, lon := 59.91387654321, 10.75212345678
	setPosition(t, r, "near", lat, lon)
	if _, err := r.eng.SetDuty(context.Background(), "near", false); err != nil {
		t.Fatal(err)
	}
	if hits := onFiles(t, r.path, lat, lon); len(hits) > 0 {
		t.Errorf("off duty, yet the position is still in the files: %v", hits)
	}
}

// G1: a superseded position may stay in the WAL until the disk purge that runs at
// least once per position TTL (one hour here) while positions are held; after it,
// it is in no file. The current position stays.
func TestSupersededPositionGoneWithinTTL(t *testing.T) {
	r, w := newWatchedRig(t, false)
	oldLat, oldLon := 59.91376543219, 10.75223456789
	setPosition(t, r, "near", oldLat, oldLon)
	r.clock.Advance(30 * time.Minute)
	newLat, newLon := 59.91398765432, 10.75234567891
	setPosition(t, r, "near", newLat, newLon)
	r.idle()
	// One TTL after the last disk purge (at start), the next one runs.
	r.clock.Advance(30 * time.Minute)
	waitPurge(t, w.purged)
	if hits := onFiles(t, r.path, oldLat, oldLon); len(hits) > 0 {
		t.Errorf("a superseded position outlived the purge one TTL later: %v", hits)
	}
	if len(onFiles(t, r.path, newLat, newLon)) == 0 {
		t.Error("the current position was purged before its TTL")
	}
}

// G1: a position older than the TTL is in no file after the purge it triggers.
func TestExpiredPositionGoneFromFiles(t *testing.T) {
	r, w := newWatchedRig(t, false)
	lat, lon := 59.91365432198, 10.75245678912
	setPosition(t, r, "near", lat, lon)
	r.idle()
	r.clock.Advance(time.Hour + time.Minute)
	waitPurge(t, w.purged)
	if hits := onFiles(t, r.path, lat, lon); len(hits) > 0 {
		t.Errorf("an expired position is still in the files: %v", hits)
	}
}

// G1: starting with nearest-staff routing turned off removes every stored
// position from every file before the engine is ready.
func TestNearestOffAtStartLeavesNoPosition(t *testing.T) {
	r, _ := newWatchedRig(t, false)
	lat, lon := 59.91354321987, 10.75256789123
	setPosition(t, r, "near", lat, lon)
	r.stop()
	r.noNearest = true
	r.start(false)
	r.idle()
	if hits := onFiles(t, r.path, lat, lon); len(hits) > 0 {
		t.Errorf("nearest routing off, yet a position is in the files: %v", hits)
	}
}

// G1: when the scrub fails (a reader held the WAL past busy_timeout) it is tried
// again ten seconds later, even with no position left to expire.
func TestFailedScrubRetried(t *testing.T) {
	r, w := newWatchedRig(t, false)
	lat, lon := 59.91343219876, 10.75267891234
	setPosition(t, r, "near", lat, lon)
	w.busy.Store(true)
	if _, err := r.eng.SetDuty(context.Background(), "near", false); err != nil {
		t.Fatal(err)
	}
	waitPurge(t, w.purged) // the failed one
	r.idle()
	r.clock.Advance(10 * time.Second)
	waitPurge(t, w.purged)
	if hits := onFiles(t, r.path, lat, lon); len(hits) > 0 {
		t.Errorf("the retried scrub left the position in the files: %v", hits)
	}
}

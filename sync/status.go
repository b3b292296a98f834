package sync

import (
	"context"
	"time"
)

// Status is the sync part of the technician's status page and /metrics.
type Status struct {
	Backlog      int64         // entries waiting in the outbox
	BacklogBytes int64         // their body bytes
	OldestAge    time.Duration // age of the oldest waiting entry; -1 if unknown (empty, or made before the clock was synced)
	Upload       Health
	Directory    DirectoryHealth
	// DirectoryAge is how long ago the directory was last fetched completely; -1 never.
	DirectoryAge time.Duration
}

// plausible reports whether t can be a synced wall-clock reading: a box without an
// RTC boots in 1970, and an age computed from that is meaningless.
func plausible(t time.Time) bool { return t.Year() >= 2020 }

// Stats gathers the status of u and d (either may be nil).
func Stats(ctx context.Context, u *Uploader, d *Directory) (Status, error) {
	st := Status{OldestAge: -1, DirectoryAge: -1}
	var now time.Time
	if u != nil {
		now = u.opt.Clock.Now()
		ob, err := u.ob.Stats(ctx)
		if err != nil {
			return st, err
		}
		st.Backlog, st.BacklogBytes = ob.Entries, ob.Bytes
		if ob.Entries > 0 && ob.OldestSynced && plausible(ob.Oldest) && plausible(now) {
			st.OldestAge = max(now.Sub(ob.Oldest), 0)
		}
		st.Upload = u.Health()
	}
	if d != nil {
		now = d.opt.Clock.Now()
		st.Directory = d.Health()
		if t := st.Directory.LastSuccess; !t.IsZero() {
			st.DirectoryAge = max(now.Sub(t), 0) // both from the same clock: monotonic
		}
	}
	return st, nil
}

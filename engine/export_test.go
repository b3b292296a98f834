package engine

import (
	"context"
	"time"

	vakt "github.com/vakt/vakt"
)

// Holds lists where the engine's memory still mentions id (for the erasure tests).
func Holds(ctx context.Context, e *Engine, id vakt.StaffID) ([]string, error) {
	return do(ctx, e, func(e *Engine, _ *vakt.Batch, now time.Time) ([]string, error) {
		s := e.st
		var where []string
		if _, ok := s.directory[id]; ok {
			where = append(where, "directory")
		}
		if _, ok := s.staff[id]; ok {
			where = append(where, "staff state")
		}
		for _, p := range s.env(now, vakt.Location{}).People {
			if p.Staff == id {
				where = append(where, "routing view")
			}
		}
		for _, a := range s.alarms {
			if a.Assignee == id {
				where = append(where, "assignee of "+string(a.ID))
			}
			if findOffer(a, id) >= 0 {
				where = append(where, "offer of "+string(a.ID))
			}
		}
		for _, v := range s.visits {
			if v.Staff == id {
				where = append(where, "visit "+string(v.ID))
			}
		}
		if _, ok := s.handling[id]; ok {
			where = append(where, "handling")
		}
		if v := e.view.cur.Load(); v != nil {
			for _, sv := range v.Staff {
				if sv.ID == id {
					where = append(where, "published view")
				}
			}
		}
		if _, ok := s.active[id]; ok {
			where = append(where, "active alarms")
		}
		return where, nil
	})
}

// Hold stops the loop inside an op until the returned release is called; it
// returns once the loop is held, so what is queued meanwhile waits in the queue.
func Hold(e *Engine) (release func()) {
	held, free := make(chan struct{}), make(chan struct{})
	go func() {
		_, _ = do(context.Background(), e, func(*Engine, *vakt.Batch, time.Time) (struct{}, error) {
			close(held)
			<-free
			return struct{}{}, nil
		})
	}()
	<-held
	return func() { close(free) }
}

package engine

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"time"

	vakt "github.com/vakt/vakt"
)

// OpenVisits lists the staff member's visits that have not ended: what a phone shows
// again after a restart during a home-care round.
func (e *Engine) OpenVisits(ctx context.Context, staff vakt.StaffID) ([]vakt.Visit, error) {
	return do(ctx, e, func(e *Engine, _ *vakt.Batch, _ time.Time) ([]vakt.Visit, error) {
		out := []vakt.Visit{}
		for _, v := range e.st.visits {
			if v.Staff == staff {
				out = append(out, v)
			}
		}
		slices.SortFunc(out, func(a, b vakt.Visit) int { return a.Start.Compare(b.Start) })
		return out, nil
	})
}

// Staff returns a directory entry and its state (for login and the phone's "me").
func (e *Engine) Staff(ctx context.Context, id vakt.StaffID) (vakt.Member, error) {
	return do(ctx, e, func(e *Engine, _ *vakt.Batch, _ time.Time) (vakt.Member, error) {
		d, ok := e.st.directory[id]
		if !ok {
			return vakt.Member{}, fmt.Errorf("staff %s: %w", id, vakt.ErrNotFound)
		}
		return vakt.Member{Staff: d, State: *e.st.staffState(id)}, nil
	})
}

// Members lists every directory entry with its state, sorted by id.
func (e *Engine) Members(ctx context.Context) ([]vakt.Member, error) {
	return do(ctx, e, func(e *Engine, _ *vakt.Batch, _ time.Time) ([]vakt.Member, error) {
		out := make([]vakt.Member, 0, len(e.st.directory))
		for id, d := range e.st.directory {
			out = append(out, vakt.Member{Staff: d, State: *e.st.staffState(id)})
		}
		sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
		return out, nil
	})
}

// Alarms lists the open alarms a staff member may see: those offered to them or
// assigned to them; staff holding one of seeAll roles see every open alarm.
func (e *Engine) Alarms(ctx context.Context, id vakt.StaffID, seeAll ...string) ([]vakt.Alarm, error) {
	return do(ctx, e, func(e *Engine, _ *vakt.Batch, _ time.Time) ([]vakt.Alarm, error) {
		all := len(seeAll) > 0 && e.st.directory[id].HasRole(seeAll...)
		var out []vakt.Alarm
		for _, a := range e.st.alarms {
			if all || a.Assignee == id || hasOffer(a, id) {
				c := *a
				c.Offers = slices.Clone(a.Offers)
				out = append(out, c)
			}
		}
		sort.Slice(out, func(i, j int) bool {
			if out[i].Priority != out[j].Priority {
				return out[i].Priority < out[j].Priority
			}
			return out[i].RaisedAt.Before(out[j].RaisedAt)
		})
		return out, nil
	})
}

// Offered lists the alarms currently offered to id and not yet answered: what a
// phone must ring for again when it reconnects (R8).
func (e *Engine) Offered(ctx context.Context, id vakt.StaffID) ([]vakt.Alarm, error) {
	return do(ctx, e, func(e *Engine, _ *vakt.Batch, _ time.Time) ([]vakt.Alarm, error) {
		var out []vakt.Alarm
		for _, a := range e.st.alarms {
			if a.Assignee != "" {
				continue
			}
			for _, o := range a.Offers {
				if o.Staff == id && (o.Status == vakt.OfferPending || o.Status == vakt.OfferDelivered) {
					c := *a
					c.Offers = slices.Clone(a.Offers)
					out = append(out, c)
					break
				}
			}
		}
		sort.Slice(out, func(i, j int) bool { return out[i].RaisedAt.Before(out[j].RaisedAt) })
		return out, nil
	})
}

func hasOffer(a *vakt.Alarm, id vakt.StaffID) bool {
	for _, o := range a.Offers {
		if o.Staff == id && o.Status != vakt.OfferWithdrawn {
			return true
		}
	}
	return false
}

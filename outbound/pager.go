package outbound

import (
	"context"
	"fmt"

	vakt "github.com/vakt/vakt"
)

// PageFunc queues a page on a paging link and reports its outcome through done
// (nil once the paging system ACKed); withdrawn is asked before the block goes out
// (true: dropped unsent): drivers/serial.Port.PageWithdrawable. A closed alarm
// pages a reset (ESPA call type 1).
type PageFunc func(a vakt.Alarm, callAddress, text string, withdrawn func() bool, done func(error)) error

// Pager delivers pages and their resets to one paging system (an ESPA 4.4.4 port).
type Pager struct {
	Name string
	Page PageFunc
}

// Deliver queues the page and returns once the paging system ACKed it: only then is
// the alarm "paged". A link that gave the page up after its retries is a failure.
func (p *Pager) Deliver(ctx context.Context, d vakt.Delivery) (string, error) {
	a := vakt.Alarm{ID: d.Alarm, Kind: d.Kind, Priority: d.Kind.DefaultPriority(), State: vakt.StateRaised}
	if d.Restore {
		a.State = vakt.StateCompleted // the reset: the paging system stops calling
	}
	done := make(chan error, 1)
	withdrawn := func() bool { return ctx.Err() != nil }
	if err := p.Page(a, d.Address, d.Text, withdrawn, func(err error) { done <- err }); err != nil {
		return "", fmt.Errorf("pager %s: delivery %s: %w", p.Name, d.ID, err)
	}
	select {
	case err := <-done:
		if err != nil {
			return "", fmt.Errorf("pager %s: delivery %s: %w", p.Name, d.ID, err)
		}
		return "ACK from the paging system", nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

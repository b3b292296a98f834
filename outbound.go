package vakt

import (
	"context"
	"time"
)

// Delivery is one message to a system outside the gateway: a page to a paging
// system or a forward to an alarm receiving centre, or the reset/restore that
// follows it when the alarm ends on site. It is queued durably in the same commit
// as the alarm change that asked for it (Batch.Deliveries), so a crash between the
// decision and the receiver's acknowledgement sends it after the restart, with the
// same content.
type Delivery struct {
	ID     string  // unique, "<alarm>/<n>"
	Alarm  AlarmID // the alarm it is about
	Target string  // "arc" or "pager:<name>"
	// Restore marks the reset (ESPA call type 1) or restore (DC-09 Q=3) after a
	// delivered message, when the alarm ended on site.
	Restore bool
	// Address is the pager's call address; Zone is the DC-09 zone number (ARC).
	Address string
	Zone    int
	Kind    EventKind
	Text    string // the pager's display text (room and kind, never a name)
	// Seq is the DC-09 sequence number used, 0 until the first attempt; a resend
	// after a restart reuses it so the receiver can de-duplicate.
	Seq int
	// Delivered is set once the receiver acknowledged; the row is kept (until the
	// alarm ends) so its reset/restore follows.
	Delivered bool
	Created   time.Time
}

// Outbound delivers messages to one kind of outside system. Deliver blocks until
// the receiver acknowledged (receipt says how, e.g. "ACK seq 0003"), ctx ended
// (the delivery was withdrawn or the gateway stops: the engine ignores the result)
// or the receiver refused it for good. It must send d with the content it holds
// (Seq included), so a resend after a restart is the same message.
type Outbound interface {
	Deliver(ctx context.Context, d Delivery) (receipt string, err error)
}

// OutboundFunc adapts a function to Outbound.
type OutboundFunc func(ctx context.Context, d Delivery) (string, error)

// Deliver calls f.
func (f OutboundFunc) Deliver(ctx context.Context, d Delivery) (string, error) { return f(ctx, d) }

package serial

import (
	"context"
	"errors"
	"fmt"

	"github.com/vakt/vakt"
	"github.com/vakt/vakt/drivers/espa"
)

// serve runs the link on ln until ctx ends or the line fails: the reader feeds what
// arrives to the link, and a timer on the clock wakes it at its deadline.
func (p *Port) serve(ctx context.Context, ln line) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Attach before the reader runs: Feed drops what it is given while the link has
	// no line, and a call system may select us the moment the port is back (the
	// check-in is sent before serve), so bytes read before Attach were lost.
	err := p.link.Attach(ln)
	rerr := make(chan error, 1)
	rd := &reader{ln: ln, data: p.link.Feed}
	go func() { rerr <- rd.run(ctx) }()

	wake := make(chan struct{}, 1)
	var t vakt.Timer
	rearm := func() {
		if t != nil {
			t.Stop()
			t = nil
		}
		if d := p.link.Deadline(); !d.IsZero() {
			t = p.o.Clock.AfterFunc(d.Sub(p.o.Clock.Now()), func() { poke(wake) })
		}
	}
	rearm()
	readerDone := false
	for err == nil {
		select {
		case <-ctx.Done():
			err = ctx.Err()
		case err = <-rerr:
			readerDone = true
			if err == nil {
				err = errors.New("reader stopped")
			}
		case <-p.link.Changed():
			rearm()
		case <-wake:
			err = p.link.Wake()
			rearm()
		}
	}
	if t != nil {
		t.Stop()
	}
	p.link.Detach()
	cancel()
	if !readerDone {
		<-rerr
	}
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// onCall turns a call block into an event; the link acknowledges it once the
// ingester has committed the event.
func (p *Port) onCall(in espa.Inbound) {
	id, fb := p.o.Mapper.Map(in.Call)
	// Before Ingest: the engine tells observers about the alarm as soon as it has
	// committed, possibly before we see the commit.
	p.feedback.Remember(id, in.Call.CallAddress)
	ev := espa.EventFor(in.Call, id, in.Raw)
	if fb {
		// No rule knows the call: its address and display text are all a phone
		// can show of where to go.
		ev.Text = fmt.Sprintf("call %s: %s", in.Call.CallAddress, ev.Text)
	}
	ev.Source = p.source
	ev.ReceivedAt = in.At
	err := p.in.Ingest(ev, func(err error) {
		if err == nil {
			if ev.Kind == vakt.EventCancel {
				p.stats.cancels.Add(1)
			}
			if fb {
				p.stats.unmapped.Add(1)
				p.log.Warn("call mapped to the fallback transmitter", "transmitter", ev.Transmitter, "call", in.Call.CallAddress)
			}
			p.log.Debug("call committed", "transmitter", ev.Transmitter, "kind", ev.Kind,
				"latency", p.o.Clock.Now().Sub(in.At))
		}
		in.Commit(err)
	})
	if err != nil {
		p.log.Warn("call not accepted; answered busy", "transmitter", id, "err", err)
		in.Commit(err)
	}
}

// AlarmChanged implements vakt.Observer. With StatusBlocks on, an alarm raised by a
// call on this port sends a status block to the call address that raised it: offered →
// 3 (paged), accepted → 6 (acknowledged by called party), completed or cancelled → 5
// (call terminated). Each status is sent once per alarm. It never blocks.
func (p *Port) AlarmChanged(a vakt.Alarm) {
	if !p.o.StatusBlocks {
		return
	}
	b, ok := p.feedback.Status(a)
	if !ok {
		return
	}
	addr, _ := b.Get(espa.RecordCallAddress)
	if err := p.link.Enqueue(espa.Outbound{Block: b, Kind: "status", CallAddress: addr}); err != nil {
		p.log.Warn("status block dropped: queue full", "alarm", a.ID)
	}
}

// Page forwards an alarm to a paging or DECT system as a call-to-pager block for
// callAddress (a pager, handset or group there) with text on its display. An open
// alarm pages with its priority; a closed one sends a reset (call type 1) so the
// paging system stops. It returns vakt.ErrBusy when the send queue is full. Whether
// the paging system took the block is logged ("page delivered"); PageResult reports
// it to the caller.
func (p *Port) Page(a vakt.Alarm, callAddress, text string) error {
	return p.PageResult(a, callAddress, text, nil)
}

// PageResult is Page with the outcome: done (when set) is called once, with nil
// after the paging system acknowledged the block, or an error wrapping
// espa.ErrNotDelivered when the link gave it up after its retries. done must not
// block.
func (p *Port) PageResult(a vakt.Alarm, callAddress, text string, done func(error)) error {
	return p.PageWithdrawable(a, callAddress, text, nil, done)
}

// PageWithdrawable is PageResult with withdrawn (when set) asked before the block
// goes out: true drops it unsent and done gets espa.ErrWithdrawn.
func (p *Port) PageWithdrawable(a vakt.Alarm, callAddress, text string, withdrawn func() bool, done func(error)) error {
	b := espa.PageCall(a, callAddress, text, p.o.DataBits == 7)
	addr, _ := b.Get(espa.RecordCallAddress)
	return p.link.Enqueue(espa.Outbound{Block: b, Kind: "page", CallAddress: addr, Withdrawn: withdrawn, Done: func(err error) {
		if err != nil {
			p.log.Warn("page not delivered", "alarm", a.ID, "err", err)
		} else {
			p.log.Info("page delivered", "alarm", a.ID)
		}
		if done != nil {
			done(err)
		}
	}})
}

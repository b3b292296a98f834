package engine

import (
	"cmp"
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	vakt "github.com/vakt/vakt"
	"github.com/vakt/vakt/routing"
)

// The outbound seam: deliveries to systems outside the gateway (a paging system, an
// alarm receiving centre). Routing's forward and page actions become rows of the
// durable queue in the batch of the alarm change that asked for them; after the
// commit a goroutine per row calls the target's vakt.Outbound and the result comes
// back into the loop as an op. A row is withdrawn (deleted, its send cancelled) when
// the alarm is taken or ends before delivery; a delivered row stays until the alarm
// ends on site (a page: until it is taken), then a reset/restore row replaces it.
// At start the engine resends every row not yet delivered, with the same content.

// TargetARC is the Delivery.Target of the alarm receiving centre; pagers are
// "pager:<name>".
const TargetARC = "arc"

// outboundState is the loop-owned view of the queue; cancels and wg are also used
// by the loop only, except wg.Wait at stop.
type outboundState struct {
	rows    map[string]*vakt.Delivery
	cancels map[string]context.CancelFunc
	next    int64
	ctx     context.Context
	stop    context.CancelFunc
	wg      sync.WaitGroup
}

func (o *outboundState) init(snap []vakt.Delivery) {
	o.rows = map[string]*vakt.Delivery{}
	o.cancels = map[string]context.CancelFunc{}
	o.ctx, o.stop = context.WithCancel(context.Background())
	for i := range snap {
		d := snap[i]
		o.rows[d.ID] = &d
		if _, n, ok := strings.Cut(d.ID, "/"); ok {
			if v, err := strconv.ParseInt(n, 10, 64); err == nil && v >= o.next {
				o.next = v + 1
			}
		}
	}
}

// outboundStartOp sends, after a start, every row the last run did not see
// acknowledged.
type outboundStartOp struct{}

func (outboundStartOp) apply(e *Engine, b *vakt.Batch) effect {
	var send []vakt.Delivery
	for _, d := range e.out.rows {
		if !d.Delivered {
			send = append(send, *d)
		}
	}
	if len(send) > 0 {
		e.log.Info("outbound: resending after start", "deliveries", len(send))
	}
	return func(error) {
		for _, d := range send {
			e.dispatch(d)
		}
	}
}

// outboundActs turns a transition's forward/page actions into queue rows and
// withdraws or follows up (reset/restore) the alarm's earlier rows. It returns the
// effect that starts and cancels the sends after the commit.
func (e *Engine) outboundActs(b *vakt.Batch, a *vakt.Alarm, acts []routing.Action, now time.Time) effect {
	var send []vakt.Delivery
	var cancel []string
	queue := func(d vakt.Delivery) {
		d.ID = fmt.Sprintf("%s/%d", a.ID, e.out.next)
		e.out.next++
		d.Alarm, d.Kind, d.Created = a.ID, a.Kind, now
		e.out.rows[d.ID] = &d
		b.Deliveries = append(b.Deliveries, d)
		send = append(send, d)
	}
	loc := e.st.location(a.Transmitter)
	for _, act := range acts {
		switch act.Kind {
		case routing.ActForward:
			if _, ok := e.opt.Outbound[TargetARC]; !ok {
				continue // logged by tell
			}
			queue(vakt.Delivery{Target: TargetARC, Zone: e.zone(loc.Room), Seq: arcSeq(a.ID, false)})
		case routing.ActPage:
			if _, ok := e.opt.Outbound["pager:"+act.Pager]; !ok {
				continue // the plain Pager path in tell
			}
			queue(vakt.Delivery{Target: "pager:" + act.Pager, Address: act.CallAddress, Text: pageText(a, loc)})
		}
	}
	taken, ended := a.Assignee != "", !a.State.Open()
	if taken || ended {
		for id, d := range e.out.rows {
			if d.Alarm != a.ID || d.Restore {
				continue
			}
			pager := strings.HasPrefix(d.Target, "pager:")
			switch {
			case !d.Delivered:
				// Withdrawn: someone on site has it, or it is over.
				delete(e.out.rows, id)
				b.DeliveriesDone = append(b.DeliveriesDone, id)
				cancel = append(cancel, id)
				e.log.Info("outbound withdrawn", "alarm", a.ID, "delivery", id, "target", d.Target)
			case ended || pager:
				delete(e.out.rows, id)
				b.DeliveriesDone = append(b.DeliveriesDone, id)
				r := *d
				r.Restore, r.Delivered, r.Seq = true, false, 0
				if r.Target == TargetARC {
					r.Seq = arcSeq(a.ID, true)
				}
				queue(r)
			}
		}
	}
	if len(send) == 0 && len(cancel) == 0 {
		return nil
	}
	return func(error) {
		for _, id := range cancel {
			if c, ok := e.out.cancels[id]; ok {
				c()
				delete(e.out.cancels, id)
			}
		}
		for _, d := range send {
			e.dispatch(d)
		}
	}
}

// dispatch starts the send of d (loop goroutine only).
func (e *Engine) dispatch(d vakt.Delivery) {
	out, ok := e.opt.Outbound[d.Target]
	if !ok {
		e.log.Error("outbound: no target configured for a queued delivery", "delivery", d.ID, "target", d.Target)
		return
	}
	ctx, cancel := context.WithCancel(e.out.ctx)
	e.out.cancels[d.ID] = cancel
	e.out.wg.Add(1)
	go func() {
		defer e.out.wg.Done()
		receipt, err := out.Deliver(ctx, d)
		if ctx.Err() != nil {
			return // withdrawn or stopping: the loop no longer waits for it
		}
		select {
		case e.in <- deliveryResultOp{id: d.ID, receipt: receipt, err: err}:
		case <-e.done:
		}
	}()
}

// stopOutbound cancels every send and waits for the goroutines.
func (e *Engine) stopOutbound() {
	e.out.stop()
	e.out.wg.Wait()
}

// deliveryResultOp is a send's outcome.
type deliveryResultOp struct {
	id      string
	receipt string
	err     error
}

func (o deliveryResultOp) apply(e *Engine, b *vakt.Batch) effect {
	if c, ok := e.out.cancels[o.id]; ok {
		c()
		delete(e.out.cancels, o.id)
	}
	d, ok := e.out.rows[o.id]
	if !ok {
		return nil // withdrawn meanwhile
	}
	now := e.opt.Clock.Now()
	action := deliveryAction(d)
	if o.err != nil {
		// Refused for good (a DUH, a pager link that gave up): the message will
		// never arrive, which someone must know.
		delete(e.out.rows, o.id)
		b.DeliveriesDone = append(b.DeliveriesDone, o.id)
		b.Audit = append(b.Audit, vakt.AuditRecord{At: now, Actor: d.Target, Action: action + ".failed", Subject: "alarm:" + string(d.Alarm)})
		fx := e.ingest(b, vakt.Event{Transmitter: vakt.TransmitterID("outbound-" + strings.ReplaceAll(d.Target, ":", "-")),
			Kind: vakt.EventOffline, Source: "outbound", SourceID: o.id, Text: "delivery refused"})
		id, target, err := d.ID, d.Target, o.err
		return func(cerr error) {
			e.log.Error("outbound delivery failed for good", "delivery", id, "target", target, "err", err)
			if fx != nil {
				fx(cerr)
			}
		}
	}
	b.Audit = append(b.Audit, vakt.AuditRecord{At: now, Actor: d.Target, Action: action, Subject: "alarm:" + string(d.Alarm)})
	b.Outbox = append(b.Outbox, vakt.OutboxEntry{Kind: "alarm", At: now, Body: mustJSON(deliveryRecord{
		Alarm: d.Alarm, Action: strings.TrimPrefix(action, "alarm."), Target: d.Target, Receipt: o.receipt, At: now})})
	var follow effect
	if d.Restore {
		delete(e.out.rows, o.id)
		b.DeliveriesDone = append(b.DeliveriesDone, o.id)
	} else {
		d.Delivered = true
		b.Deliveries = append(b.Deliveries, *d)
		// The alarm may have been taken or ended while the message was on its way:
		// the reset/restore follows at once.
		if a, open := e.st.alarms[d.Alarm]; open {
			if a.Assignee != "" {
				follow = e.outboundActs(b, a, nil, now)
			}
		} else {
			follow = e.outboundActs(b, &vakt.Alarm{ID: d.Alarm, Kind: d.Kind, State: vakt.StateCompleted}, nil, now)
		}
	}
	id, alarm, receipt := d.ID, d.Alarm, o.receipt
	return func(err error) {
		if err == nil {
			e.log.Info(strings.TrimPrefix(action, "alarm."), "alarm", alarm, "delivery", id, "receipt", receipt)
		}
		if follow != nil {
			follow(err)
		}
	}
}

// deliveryRecord is the outbox body of a delivery's outcome (ids only).
type deliveryRecord struct {
	Alarm   vakt.AlarmID `json:"id"`
	Action  string       `json:"delivery"`
	Target  string       `json:"target"`
	Receipt string       `json:"receipt,omitempty"`
	At      time.Time    `json:"at"`
}

// deliveryAction names the history entry of a delivered row.
func deliveryAction(d *vakt.Delivery) string {
	switch {
	case d.Target == TargetARC && d.Restore:
		return "alarm.restored"
	case d.Target == TargetARC:
		return "alarm.forwarded"
	case d.Restore:
		return "alarm.page_reset"
	default:
		return "alarm.paged"
	}
}

// OutboundLink reports that the link to target was lost (up false) or is back: a
// technical alarm on the pseudo-transmitter "outbound-<target>", closed when back.
// It does not block; it may be called from any goroutine.
func (e *Engine) OutboundLink(target string, up bool) {
	kind, text := vakt.EventOffline, "outbound link lost"
	if up {
		kind, text = vakt.EventCheckIn, "outbound link back"
	}
	ev := vakt.Event{Transmitter: vakt.TransmitterID("outbound-" + strings.ReplaceAll(target, ":", "-")),
		Kind: kind, Source: "outbound", Text: text}
	if err := e.Ingest(ev, nil); err != nil {
		e.log.Error("outbound link state not recorded", "target", target, "up", up, "err", err)
	}
}

// arcSeq is the DC-09 sequence number of an alarm's forward or restore: derived
// from the alarm number so a resend after a restart uses the same one.
func arcSeq(id vakt.AlarmID, restore bool) int {
	n, _ := vakt.ParseAlarmID(id)
	v := 2 * n
	if restore {
		v++
	}
	return int(v%9999) + 1
}

// zone is the DC-09 zone of a room: a 1-3 digit room name is its own zone,
// others come from Options.ARCZones; 0 when unknown.
func (e *Engine) zone(room string) int {
	if z, ok := e.opt.ARCZones[room]; ok {
		return z
	}
	if n, err := strconv.Atoi(room); err == nil && len(room) <= 3 && n >= 0 {
		return n
	}
	return 0
}

// pageText is the pager's display: room and kind only, never a name (G7).
func pageText(a *vakt.Alarm, loc vakt.Location) string {
	return strings.ToUpper(fmt.Sprintf("ROOM %s %s", cmp.Or(loc.Room, string(a.Transmitter)), a.Kind))
}

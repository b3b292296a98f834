package serial

import (
	"github.com/vakt/vakt"
	"github.com/vakt/vakt/drivers/espa"
)

// outItem is a block waiting to be sent to the peer.
type outItem struct {
	raw   []byte
	what  string // "status" or "page"
	call  string // call address, for logs
	tries int    // transactions in which it failed
}

// enqueue adds a block; when the queue is full the oldest status block makes room
// (a page is worth more than a stale status).
func (p *Port) enqueue(it *outItem) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.queue) >= maxQueue {
		i := -1
		for j, q := range p.queue {
			if q.what == "status" {
				i = j
				break
			}
		}
		if i < 0 {
			p.stats.dropped.Add(1)
			return vakt.ErrBusy
		}
		p.queue = append(p.queue[:i], p.queue[i+1:]...)
		p.stats.dropped.Add(1)
	}
	p.queue = append(p.queue, it)
	poke(p.queued)
	return nil
}

func (p *Port) dequeue() *outItem {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.queue) == 0 {
		return nil
	}
	it := p.queue[0]
	p.queue = p.queue[1:]
	return it
}

// requeue puts a block that was not delivered back at the head of the queue, unless
// it failed too often.
func (p *Port) requeue(it *outItem, failed bool) {
	if failed {
		it.tries++
		if it.tries >= maxTries {
			p.stats.dropped.Add(1)
			p.log.Warn("block dropped after repeated failures", "what", it.what, "call", it.call, "tries", it.tries)
			return
		}
	}
	p.mu.Lock()
	p.queue = append([]*outItem{it}, p.queue...)
	p.mu.Unlock()
}

func (p *Port) queueLen() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.queue)
}

// remember notes which call address raised a transmitter's alarm, for status blocks.
func (p *Port) remember(id vakt.TransmitterID, callAddress string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.calls[id]; !ok && len(p.calls) >= maxRemembered {
		for k := range p.calls {
			delete(p.calls, k)
			break
		}
	}
	p.calls[id] = callAddress
}

// statusFor is the ESPA call status for an alarm state, 0 for none.
func statusFor(s vakt.AlarmState) int {
	switch s {
	case vakt.StateOffered:
		return espa.StatusPaged
	case vakt.StateAccepted, vakt.StatePresent:
		return espa.StatusAcknowledged
	case vakt.StateCompleted, vakt.StateCancelled:
		return espa.StatusTerminated
	}
	return 0
}

// AlarmChanged implements vakt.Observer. With StatusBlocks on, an alarm raised by a
// call on this port sends a status block to the call address that raised it: offered →
// 3 (paged), accepted → 6 (acknowledged by called party), completed or cancelled → 5
// (call terminated). Each status is sent once per alarm. It never blocks.
func (p *Port) AlarmChanged(a vakt.Alarm) {
	// Technical alarms (say, this line's own offline alarm on the fallback
	// transmitter) and walk tests paged nobody the call system should hear about.
	if !p.o.StatusBlocks || a.WalkTest || a.Kind.Technical() {
		return
	}
	st := statusFor(a.State)
	if st == 0 {
		return
	}
	p.mu.Lock()
	addr, ok := p.calls[a.Transmitter]
	if !ok || p.status[a.ID] == st {
		p.mu.Unlock()
		return
	}
	if _, seen := p.status[a.ID]; !seen && len(p.status) >= maxRemembered {
		for k := range p.status {
			delete(p.status, k)
			break
		}
	}
	p.status[a.ID] = st
	p.mu.Unlock()
	raw := espa.Encode(espa.StatusBlock(addr, st))
	if err := p.enqueue(&outItem{raw: raw, what: "status", call: addr}); err != nil {
		p.log.Warn("status block dropped: queue full", "alarm", a.ID)
	}
}

// Page forwards an alarm to a paging or DECT system as a call-to-pager block for
// callAddress (a pager, handset or group there) with text on its display. An open
// alarm pages with its priority; a closed one sends a reset (call type 1) so the
// paging system stops. It returns vakt.ErrBusy when the send queue is full.
func (p *Port) Page(a vakt.Alarm, callAddress, text string) error {
	c := espa.Call{
		CallAddress: p.lineText(callAddress),
		Message:     p.lineText(text),
		CallType:    espa.CallStandard,
		Priority:    min(max(int(a.Priority), 1), 3),
	}
	if !a.State.Open() {
		c.CallType = espa.CallReset
	}
	raw := espa.Encode(espa.CallBlock(c))
	return p.enqueue(&outItem{raw: raw, what: "page", call: c.CallAddress})
}

// lineText converts UTF-8 to what the line carries: Latin-1, or ASCII on a 7-bit line.
func (p *Port) lineText(s string) string {
	b := []byte(espa.EncodeLatin1(s))
	if p.o.DataBits == 7 {
		for i, c := range b {
			if c >= 0x80 {
				b[i] = '?'
			}
		}
	}
	return string(b)
}

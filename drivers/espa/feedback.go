package espa

import (
	"sync"

	"github.com/vakt/vakt"
)

// maxRemembered bounds the transmitter → call address and alarm → status maps.
const maxRemembered = 4096

// StatusFor is the ESPA call status for an alarm state, 0 for none: offered → 3
// (paged), accepted or present → 6 (acknowledged by called party), completed or
// cancelled → 5 (call terminated).
func StatusFor(s vakt.AlarmState) int {
	switch s {
	case vakt.StateOffered:
		return StatusPaged
	case vakt.StateAccepted, vakt.StatePresent:
		return StatusAcknowledged
	case vakt.StateCompleted, vakt.StateCancelled:
		return StatusTerminated
	}
	return 0
}

// Feedback decides which status blocks go back to the call system: it remembers
// which call address raised each transmitter's alarm, and sends each status once per
// alarm. Safe for concurrent use; bounded.
type Feedback struct {
	mu     sync.Mutex
	calls  map[vakt.TransmitterID]string // transmitter → the call address that last raised it
	status map[vakt.AlarmID]int          // alarm → last status block queued
}

// Remember notes that a call from callAddress was mapped to transmitter id.
func (f *Feedback) Remember(id vakt.TransmitterID, callAddress string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.calls == nil {
		f.calls = map[vakt.TransmitterID]string{}
	}
	if _, ok := f.calls[id]; !ok && len(f.calls) >= maxRemembered {
		for k := range f.calls {
			delete(f.calls, k)
			break
		}
	}
	f.calls[id] = callAddress
}

// Status returns the status block to send for an alarm change, if any: only for
// alarms a call raised, not for technical alarms or walk tests, each status once.
func (f *Feedback) Status(a vakt.Alarm) (Block, bool) {
	if a.WalkTest || a.Kind.Technical() {
		return Block{}, false
	}
	st := StatusFor(a.State)
	if st == 0 {
		return Block{}, false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	addr, ok := f.calls[a.Transmitter]
	if !ok || f.status[a.ID] == st {
		return Block{}, false
	}
	if f.status == nil {
		f.status = map[vakt.AlarmID]int{}
	}
	if _, seen := f.status[a.ID]; !seen && len(f.status) >= maxRemembered {
		for k := range f.status {
			delete(f.status, k)
			break
		}
	}
	f.status[a.ID] = st
	return StatusBlock(addr, st), true
}

// PageCall is the call-to-pager block that forwards an alarm to a paging system: an
// open alarm pages with its priority, a closed one sends a reset (call type 1) so the
// paging system stops. Text is converted to Latin-1, or ASCII for a 7-bit line.
func PageCall(a vakt.Alarm, callAddress, text string, sevenBit bool) Block {
	c := Call{
		CallAddress: lineText(callAddress, sevenBit),
		Message:     lineText(text, sevenBit),
		CallType:    CallStandard,
		Priority:    min(max(int(a.Priority), 1), 3),
	}
	if !a.State.Open() {
		c.CallType = CallReset
	}
	return CallBlock(c)
}

func lineText(s string, sevenBit bool) string {
	b := []byte(EncodeLatin1(s))
	if sevenBit {
		for i, c := range b {
			if c >= 0x80 {
				b[i] = '?'
			}
		}
	}
	return string(b)
}

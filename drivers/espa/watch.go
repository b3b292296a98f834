package espa

import "fmt"

// Watch decodes a line for a person watching it (the commissioning monitor): one
// line of text per token, with the transmitter Mapper picks for a call when it has
// rules or a fallback, and one hint about likely wrong line settings. It only
// listens. Not safe for concurrent use.
type Watch struct {
	Mapper Mapper
	// EightBit: the port reads 8 data bits (then bytes with the top bit set hint at
	// a 7-bit line with parity).
	EightBit bool
	// Emit receives each line: the token ("← ...") or a hint ("hint: ...").
	Emit func(line string)

	f      Framer
	hinted bool
}

// Feed decodes bytes read from the line.
func (w *Watch) Feed(p []byte) { w.f.Feed(p, w.show) }

// Pending reports whether part of a token is held back (a half frame, noise).
func (w *Watch) Pending() bool { return w.f.Busy() }

// Quiet reports what is held back, for when the line has gone quiet.
func (w *Watch) Quiet() { w.f.Flush(w.show) }

func (w *Watch) show(t Token) {
	s := t.String()
	if t.Type == TokenBlock && (w.Mapper.Fallback != "" || len(w.Mapper.Rules) > 0) {
		if c, err := ParseCall(t.Block); err == nil && (c.Header == HeaderCall || c.Header == HeaderSubscriberCall) {
			id, fb := w.Mapper.Map(c)
			ev := EventFor(c, id, nil)
			if fb {
				s += fmt.Sprintf(" → %s (fallback) %s", id, ev.Kind)
			} else {
				s += fmt.Sprintf(" → %s %s", id, ev.Kind)
			}
		}
	}
	w.Emit("← " + s)
	if !w.hinted && t.Type == TokenNoise && w.EightBit && highBits(t.Raw) {
		w.hinted = true
		w.Emit("hint: bytes with the top bit set: the line may use 7 data bits with parity (try -data-bits 7 -parity even)")
	}
	if !w.hinted && t.Type == TokenBadBCC {
		w.hinted = true
		w.Emit("hint: repeated BCC errors usually mean wrong data bits or parity; ask the call system's vendor for its line settings")
	}
}

func highBits(p []byte) bool {
	n := 0
	for _, c := range p {
		if c >= 0x80 {
			n++
		}
	}
	return n > 0 && 2*n >= len(p)
}

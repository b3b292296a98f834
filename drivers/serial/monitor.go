package serial

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/vakt/vakt/drivers/espa"
)

// readOnly hides Write: the monitor cannot answer the line, by construction.
type readOnly struct{ ln line }

func (r readOnly) Read(p []byte) (int, error)  { return r.ln.Read(p) }
func (r readOnly) Write(p []byte) (int, error) { return 0, errors.New("serial monitor is read-only") }
func (r readOnly) Close() error                { return r.ln.Close() }
func (r readOnly) Check() error                { return r.ln.Check() }

// Monitor decodes a live ESPA line for commissioning and prints one line per token to
// w: link characters, blocks with their meaning (and the transmitter o.Mapper picks,
// when it has rules or a fallback), BCC errors, half frames and noise. It never writes
// to the port: whatever it sees goes unanswered. Only the line settings and Device of
// o are used. It reopens the device when it disappears and returns nil when ctx ends.
func Monitor(ctx context.Context, o Options, w io.Writer) error {
	o.defaults()
	if err := o.lineSettings(); err != nil {
		return fmt.Errorf("serial monitor: %w", err)
	}
	mapping := o.Mapper.Fallback != "" || len(o.Mapper.Rules) > 0
	stamp := func() string { return o.Clock.Now().Format("15:04:05.000") }
	fmt.Fprintf(w, "%s monitoring %s at %s, read-only: nothing is answered\n", stamp(), o.Device, lineString(&o))

	hinted := false
	show := func(t espa.Token) {
		s := t.String()
		if t.Type == espa.TokenBlock && mapping {
			if c, err := espa.ParseCall(t.Block); err == nil && (c.Header == espa.HeaderCall || c.Header == espa.HeaderSubscriberCall) {
				id, fb := o.Mapper.Map(c)
				ev := espa.EventFor(c, id, nil)
				if fb {
					s += fmt.Sprintf(" → %s (fallback) %s", id, ev.Kind)
				} else {
					s += fmt.Sprintf(" → %s %s", id, ev.Kind)
				}
			}
		}
		fmt.Fprintf(w, "%s ← %s\n", stamp(), s)
		if !hinted && t.Type == espa.TokenNoise && o.DataBits == 8 && highBits(t.Raw) {
			hinted = true
			fmt.Fprintf(w, "%s hint: bytes with the top bit set: the line may use 7 data bits with parity (try -data-bits 7 -parity even)\n", stamp())
		}
		if !hinted && t.Type == espa.TokenBadBCC {
			hinted = true
			fmt.Fprintf(w, "%s hint: repeated BCC errors usually mean wrong data bits or parity; ask the call system's vendor for its line settings\n", stamp())
		}
	}

	waiting := false
	for ctx.Err() == nil {
		ln, err := openTTY(&o)
		if err != nil {
			if !waiting {
				fmt.Fprintf(w, "%s waiting for %s: %v\n", stamp(), o.Device, err)
				waiting = true
			}
			if !sleep(ctx, o.Reopen) {
				break
			}
			continue
		}
		waiting = false
		fmt.Fprintf(w, "%s open %s\n", stamp(), o.Device)
		err = monitorLine(ctx, readOnly{ln}, show)
		ln.Close()
		if ctx.Err() != nil {
			break
		}
		fmt.Fprintf(w, "%s lost %s: %v\n", stamp(), o.Device, err)
	}
	return nil
}

// monitorLine prints tokens until the line fails or ctx ends. A half frame is shown
// once the line has been quiet for a second, not only when the next frame starts.
func monitorLine(ctx context.Context, ln line, show func(espa.Token)) error {
	var f espa.Framer
	quiet := 0
	r := &reader{ln: ln,
		data: func(p []byte) error { f.Feed(p, show); return nil },
		idle: func() {
			if !f.Busy() {
				quiet = 0
				return
			}
			if quiet++; time.Duration(quiet)*readTimeout >= time.Second {
				quiet = 0
				f.Flush(show)
			}
		}}
	return r.run(ctx)
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

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
	stamp := func() string { return o.Clock.Now().Format("15:04:05.000") }
	fmt.Fprintf(w, "%s monitoring %s at %s, read-only: nothing is answered\n", stamp(), o.Device, lineString(&o))
	watch := &espa.Watch{Mapper: o.Mapper, EightBit: o.DataBits == 8,
		Emit: func(line string) { fmt.Fprintf(w, "%s %s\n", stamp(), line) }}

	waiting := false
	for ctx.Err() == nil {
		ln, err := openTTY(&o)
		if errors.Is(err, ErrInUse) {
			// A running gateway holds it: waiting would mean taking the line from
			// it the moment it restarts.
			return fmt.Errorf("serial monitor: %w", err)
		}
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
		err = monitorLine(ctx, readOnly{ln}, watch)
		ln.Close()
		if ctx.Err() != nil {
			break
		}
		fmt.Fprintf(w, "%s lost %s: %v\n", stamp(), o.Device, err)
	}
	return nil
}

// monitorLine decodes the line until it fails or ctx ends. A half frame is shown
// once the line has been quiet for a second, not only when the next frame starts.
func monitorLine(ctx context.Context, ln line, watch *espa.Watch) error {
	quiet := 0
	r := &reader{ln: ln,
		data: func(p []byte) error { watch.Feed(p); return nil },
		idle: func() {
			if !watch.Pending() {
				quiet = 0
				return
			}
			if quiet++; time.Duration(quiet)*readTimeout >= time.Second {
				quiet = 0
				watch.Quiet()
			}
		}}
	return r.run(ctx)
}

package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	vakt "github.com/vakt/vakt"
	"github.com/vakt/vakt/config"
	"github.com/vakt/vakt/engine"
	"github.com/vakt/vakt/outbound"
	"github.com/vakt/vakt/outbound/dc09"
)

// buildARC makes the DC-09 link to the alarm receiving centre from the arc section;
// nil when it is not enabled. The link reports a loss and its return to the engine
// (a technical alarm on "outbound-arc"); it is started by Run, closed by Close.
func (m *Main) buildARC(cfg *config.Config) (*dc09.Link, vakt.Outbound, error) {
	a := &cfg.ARC
	if !a.Enabled {
		return nil, nil, nil
	}
	key, err := a.ReadKey()
	if err != nil {
		return nil, nil, fmt.Errorf("arc.key_file: %w", err)
	}
	link, err := dc09.NewLink(dc09.LinkConfig{
		Network: a.Protocol, Addr: a.Address, Account: a.Account, Receiver: a.Receiver, Line: a.Line,
		Key: key, LinkTest: a.LinkTest.D(), Timeout: a.Timeout.D(), MinBackoff: a.Backoff.D(),
		MaxBackoff: a.MaxBackoff.D(), Clock: m.Clock, Logger: m.Logger.With("part", "arc"),
		OnLink: func(up bool) {
			if m.Engine != nil {
				m.Engine.OutboundLink(engine.TargetARC, up)
			}
		},
	})
	if err != nil {
		return nil, nil, fmt.Errorf("arc: %w", err)
	}
	return link, &outbound.ARC{Link: link, Format: a.Format, Group: a.Group}, nil
}

// cmdARCReceiver runs a DC-09 receiver that answers like an alarm receiving centre
// and prints one line per frame: the demo's end of an alarm nobody accepted.
func cmdARCReceiver(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("arc-receiver", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:7777", "TCP address to receive DC-09 frames on")
	keyFile := fs.String("key-file", "", "AES key file (hex) for encrypted frames; empty: none")
	if err := fs.Parse(args); err != nil {
		return err
	}
	r := &dc09.Receiver{Out: stdout, Logger: slog.New(slog.DiscardHandler)}
	if *keyFile != "" {
		k, err := (&config.ARC{KeyFile: *keyFile}).ReadKey()
		if err != nil {
			return fmt.Errorf("arc-receiver: -key-file: %w", err)
		}
		r.Key = k
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := r.Listen(*listen); err != nil {
		return fmt.Errorf("arc-receiver: %w", err)
	}
	fmt.Fprintf(stdout, "DC-09 receiver listening on %s\n", r.Addr())
	<-ctx.Done()
	return r.Close()
}

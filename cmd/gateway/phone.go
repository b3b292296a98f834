package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"

	"github.com/vakt/vakt/api"
)

// cmdPhone acts as a staff member's phone: logs in, prints every push message as one
// JSON line, and confirms offers as delivered. For commissioning and the demo.
func cmdPhone(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("phone", flag.ContinueOnError)
	base := fs.String("api", "http://127.0.0.1:8080", "the gateway's phone API")
	staff := fs.String("staff", "nurse-1", "staff id")
	secret := fs.String("secret", "", "secret (default: $VAKT_SECRET)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *secret == "" {
		*secret = os.Getenv("VAKT_SECRET")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	c := &api.Client{Base: *base}
	if err := c.Login(ctx, *staff, *secret); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "logged in as %s; waiting for alarms (Ctrl-C to stop)\n", *staff)
	err := c.Stream(ctx, func(msg []byte) { fmt.Fprintln(stdout, string(msg)) })
	if ctx.Err() != nil {
		return nil
	}
	return err
}

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"path/filepath"
	"syscall"
	"time"
)

// crashResult is one crash loop's figures.
type crashResult struct {
	Label      string     `json:"label"`
	Cycles     int        `json:"cycles"`
	Load       loadResult `json:"load"`
	Ready      latency    `json:"ready_after_restart_ms"`
	ReadyOver1 int        `json:"ready_over_1s"`
	Verdict    verdict    `json:"verification"`
}

// cmdCrash: R1. The gateway binary runs as a child; blind transmitters publish a
// storm without pause (each press followed by its cancel, each message unique); the
// gateway is SIGKILLed after a random time (so at a random point of its work, with
// messages in flight) and started again, cycles times. The publishers redial. Then
// every acknowledged message must be an event in the database, none stored twice as
// new, and PRAGMA integrity_check ok. With -external the transmitters publish to an
// external broker (Mosquitto), which acknowledges on its own and keeps the gateway's
// persistent session: after the last cycle the gateway is left to drain its backlog.
func cmdCrash(ctx context.Context, args []string, out io.Writer) (bool, error) {
	fs := flag.NewFlagSet("crash", flag.ContinueOnError)
	var f runFlags
	f.register(fs)
	bin := fs.String("gateway", "", "the gateway binary")
	cycles := fs.Int("cycles", 200, "SIGKILL/restart cycles")
	minRun := fs.Duration("min-run", 100*time.Millisecond, "shortest time the gateway runs before a SIGKILL")
	maxRun := fs.Duration("max-run", 1500*time.Millisecond, "longest time the gateway runs before a SIGKILL")
	external := fs.Bool("external", false, "the transmitters publish to an external broker (Mosquitto) on -broker")
	apiPort := fs.Int("api-port", 18080, "the gateway's API port (for /readyz)")
	if err := fs.Parse(args); err != nil {
		return false, err
	}
	if *bin == "" || f.dir == "" {
		return false, errors.New("crash: -gateway and -dir are required")
	}
	site, err := readSiteJSON(f.dir)
	if err != nil {
		return false, err
	}
	cfg, logPath := sitePath(f.dir), filepath.Join(f.dir, "gateway.log")
	f.o.Broker, f.o.Transmitters, f.o.Blind = f.broker, len(site.Transmitters), true
	f.o.Duration = 24 * time.Hour // until stopped
	f.o.Drain = 10 * time.Second
	led := newLedger()
	l := newLoader(f.o, led)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 2))

	gw, err := startGateway(*bin, cfg, logPath, *apiPort, 30*time.Second)
	if err != nil {
		return false, err
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := l.connect(runCtx); err != nil {
		gw.signal(syscall.SIGKILL)
		return false, err
	}
	stop := make(chan struct{})
	resc := make(chan loadResult, 1)
	go func() { resc <- l.run(runCtx, stop) }()

	var ready []time.Duration
	res := crashResult{Label: f.label, Cycles: *cycles}
	for c := range *cycles {
		d := *minRun + time.Duration(rng.Int64N(int64(*maxRun-*minRun)+1))
		select {
		case <-ctx.Done():
			close(stop)
			gw.signal(syscall.SIGKILL)
			return false, ctx.Err()
		case <-time.After(d):
		}
		gw.signal(syscall.SIGKILL)
		if gw, err = startGateway(*bin, cfg, logPath, *apiPort, 30*time.Second); err != nil {
			close(stop)
			return false, fmt.Errorf("cycle %d: %w", c, err)
		}
		ready = append(ready, gw.ready)
		if gw.ready > time.Second {
			res.ReadyOver1++
		}
		if (c+1)%20 == 0 {
			_, a := led.counts()
			fmt.Fprintf(out, "%s: %d/%d cycles, %d acknowledged\n", f.label, c+1, *cycles, a)
		}
	}
	// A last stretch of load on the final process, then stop the load.
	select {
	case <-time.After(time.Second):
	case <-ctx.Done():
	}
	close(stop)
	res.Load = <-resc
	res.Load.Label = f.label
	drain := time.Duration(0)
	if *external {
		drain = 30 * time.Second // while the backlog Mosquitto queued for the gateway keeps draining
	}
	res.Verdict, err = verify(ctx, dbPath(f.dir), led, drain)
	gw.signal(syscall.SIGTERM)
	if err != nil {
		return false, err
	}
	// Once more with the gateway stopped: integrity of the file at rest.
	if v2, err := verify(ctx, dbPath(f.dir), led, 0); err == nil {
		res.Verdict.Integrity = v2.Integrity
	}
	res.Ready = percentiles(ready)
	if f.ledger != "" {
		if err := led.save(f.ledger); err != nil {
			return false, err
		}
	}
	fmt.Fprintf(out, "%s: %d SIGKILLs during a storm offered at %.0f presses/s (+ cancels): %d messages sent, %d acknowledged (%.0f events/s acknowledged overall), %d MQTT reconnects\n",
		f.label, *cycles, f.o.Rate, res.Load.Presses+res.Load.Cancels+res.Load.CheckIns, res.Load.Acked, res.Load.EventsPerS, res.Load.Reconnects)
	fmt.Fprintf(out, "%s: ready after restart (exec → /readyz 200): p50 %.0f ms, p99 %.0f ms, max %.0f ms; %d restarts over 1 s\n",
		f.label, res.Ready.P50, res.Ready.P99, res.Ready.Max, res.ReadyOver1)
	fmt.Fprintf(out, "%s: %v\n", f.label, res.Verdict)
	return res.Verdict.ok(), appendJSON(f.jsonOut, res)
}

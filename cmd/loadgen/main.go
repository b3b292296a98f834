// Command loadgen proves the gateway's performance and reliability targets from the
// outside, the way its devices and phones see it: simulated Zigbee2MQTT transmitters
// publish QoS 1 presses, cancels and check-ins over many MQTT connections (a minimal
// MQTT 3.1.1 publisher that times every PUBACK), simulated staff phones hold the push
// WebSocket, confirm every offer and optionally accept it, and afterwards what the
// broker acknowledged is compared with what the SQLite file holds.
//
//	loadgen site   -dir D [-transmitters 500 -staff 200 -api P -broker P -external]
//	loadgen run    -dir D -rate R -duration T [...]   one load run, figures + verdict
//	loadgen crash  -gateway BIN -dir D -cycles N [...] SIGKILL loop during a storm (R1)
//	loadgen verify -db FILE -ledger FILE              acknowledged vs stored
//	loadgen broker-restart -gateway BIN -dir D        Mosquitto restarted, gateway down (R2)
//	loadgen phone-drop -dir D                         a phone drops mid-offer, one never confirms (R8)
//	loadgen plot   -in results.jsonl -out FILE.svg    latency against offered load
//
// It is a separate tool, not part of the gateway: docs/benchmarks.md has the suites
// built on it (scripts/storm.sh, scripts/crash-loop.sh, scripts/compare-nodered.sh).
// All traffic stays on loopback.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	code, err := run(ctx, os.Args[1:], os.Stdout)
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
	}
	os.Exit(code)
}

// run returns 0 on a pass, 1 on a failed verdict or error, 2 on usage errors.
func run(ctx context.Context, args []string, out io.Writer) (int, error) {
	if len(args) == 0 {
		return 2, errors.New("usage: loadgen site|run|crash|verify|plot [flags] (see the package comment)")
	}
	var err error
	var pass = true
	switch args[0] {
	case "site":
		err = cmdSite(args[1:], out)
	case "run":
		pass, err = cmdRun(ctx, args[1:], out)
	case "crash":
		pass, err = cmdCrash(ctx, args[1:], out)
	case "verify":
		pass, err = cmdVerify(ctx, args[1:], out)
	case "phone-drop":
		pass, err = cmdPhoneDrop(ctx, args[1:], out)
	case "broker-restart":
		pass, err = cmdBrokerRestart(ctx, args[1:], out)
	case "plot":
		err = cmdPlot(args[1:])
	default:
		return 2, fmt.Errorf("unknown command %q", args[0])
	}
	if errors.Is(err, flag.ErrHelp) {
		return 2, err
	}
	if err != nil || !pass {
		return 1, err
	}
	return 0, nil
}

func cmdSite(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("site", flag.ContinueOnError)
	s := siteSpec{}
	fs.StringVar(&s.Dir, "dir", "", "folder for site.yaml, site.json and vakt.db")
	fs.IntVar(&s.Transmitters, "transmitters", 500, "Zigbee2MQTT buttons")
	fs.IntVar(&s.Staff, "staff", 200, "staff on duty")
	fs.IntVar(&s.APIPort, "api", 18080, "the gateway's API port (127.0.0.1)")
	fs.IntVar(&s.BrokerPort, "broker", 11883, "the broker's port (127.0.0.1)")
	external := fs.Bool("external", false, "use an external broker (Mosquitto) on -broker instead of the embedded one")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if s.Dir == "" {
		return errors.New("site: -dir is required")
	}
	s.Embedded = !*external
	if err := writeSite(s); err != nil {
		return err
	}
	fmt.Fprintln(out, sitePath(s.Dir))
	return nil
}

func readSiteJSON(dir string) (siteJSON, error) {
	var js siteJSON
	b, err := os.ReadFile(filepath.Join(dir, "site.json"))
	if err != nil {
		return js, fmt.Errorf("read the site (run `loadgen site -dir %s` first): %w", dir, err)
	}
	return js, json.Unmarshal(b, &js)
}

// runFlags are the load flags shared by run and crash.
type runFlags struct {
	dir, broker, api, phonesURL, ledger, verifyDB, jsonOut, label string
	o                                                             loadOpts
	acceptAfter, killAfter, drain                                 time.Duration
	noPhones, floor                                               bool
	killPID, ioPID                                                int
}

func (f *runFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.dir, "dir", "", "the site folder written by `loadgen site`")
	fs.StringVar(&f.broker, "broker", "127.0.0.1:11883", "the broker the transmitters publish to")
	fs.StringVar(&f.api, "api", "http://127.0.0.1:18080", "the gateway's API (phones log in here)")
	fs.StringVar(&f.phonesURL, "phones-url", "", "one WebSocket URL without login instead of the gateway's phones (the Node-RED flow)")
	fs.BoolVar(&f.noPhones, "no-phones", false, "no phones (blind runs)")
	fs.Float64Var(&f.o.Rate, "rate", 1000, "presses offered per second (each followed by its cancel)")
	fs.DurationVar(&f.o.Duration, "duration", 10*time.Second, "how long presses are offered")
	fs.IntVar(&f.o.Conns, "conns", 8, "MQTT connections the transmitters share")
	fs.Float64Var(&f.o.CheckIns, "checkins", 0, "check-ins per second besides the presses")
	fs.BoolVar(&f.o.SteadyHealth, "steady-health", false, "check-ins repeat the same battery and link quality (else both change every time)")
	fs.BoolVar(&f.o.Blind, "blind", false, "cancel each press at once instead of after its offer (durability runs)")
	fs.DurationVar(&f.o.OfferTimeout, "offer-timeout", 10*time.Second, "a press without an offer within this counts as missed")
	fs.DurationVar(&f.acceptAfter, "accept-after", 0, "phones accept each offer after this delay (0: never)")
	fs.StringVar(&f.ledger, "ledger", "", "write every published message and whether it was acknowledged here")
	fs.StringVar(&f.verifyDB, "verify-db", "", "afterwards compare the acknowledged messages with this SQLite file")
	fs.DurationVar(&f.drain, "drain", 0, "with -verify-db: wait up to this for the database to catch up (external broker)")
	fs.StringVar(&f.jsonOut, "json", "", "append the result as one JSON line to this file")
	fs.StringVar(&f.label, "label", "vakt", "name of the system under test in the results")
	fs.BoolVar(&f.floor, "floor", false, "also measure the single-commit fsync floor on the site's disk (same run)")
	fs.IntVar(&f.killPID, "kill-pid", 0, "SIGKILL this process (the system under test) mid-run")
	fs.DurationVar(&f.killAfter, "kill-after", 0, "with -kill-pid: when")
	fs.IntVar(&f.ioPID, "io-pid", 0, "report the bytes this process (the gateway) wrote to disk during the load, from /proc/PID/io (P6)")
}

func cmdRun(ctx context.Context, args []string, out io.Writer) (bool, error) {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	var f runFlags
	f.register(fs)
	if err := fs.Parse(args); err != nil {
		return false, err
	}
	site, err := readSiteJSON(f.dir)
	if err != nil {
		return false, err
	}
	f.o.Broker, f.o.Transmitters = f.broker, len(site.Transmitters)
	led := newLedger()
	l := newLoader(f.o, led)
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var ph *phones
	if !f.noPhones {
		ph = &phones{base: f.api, wsURL: f.phonesURL, acceptAfter: f.acceptAfter, onOffer: l.offer}
		if f.phonesURL == "" {
			if ph.tokens, err = login(ctx, f.api, len(site.Staff)); err != nil {
				return false, err
			}
		}
		ready := make(chan error, 1)
		go ph.run(runCtx, ready)
		if err := <-ready; err != nil {
			return false, err
		}
	} else if !f.o.Blind {
		return false, errors.New("run: -no-phones needs -blind (nobody would see the offers)")
	}
	if err := l.connect(runCtx); err != nil {
		return false, err
	}
	if f.killPID > 0 {
		t := time.AfterFunc(f.killAfter, func() {
			_ = syscall.Kill(f.killPID, syscall.SIGKILL)
			fmt.Fprintf(out, "SIGKILL sent to %d after %v\n", f.killPID, f.killAfter)
		})
		defer t.Stop()
	}
	win, err := startIO(f.ioPID)
	if err != nil {
		return false, err
	}
	res := l.run(runCtx, nil)
	res.Label = f.label
	if f.floor {
		fl, err := commitFloor(ctx, f.dir)
		if err != nil {
			return false, err
		}
		res.FloorCommitMs = float64(fl.Microseconds()) / 1000
		res.FloorCommitsPerS = float64(time.Second) / float64(fl)
	}
	if ph != nil {
		res.PhoneDrops = ph.drops.Load()
	}
	cancel()
	if ph != nil {
		ph.wg.Wait()
	}
	if f.ledger != "" {
		if err := led.save(f.ledger); err != nil {
			return false, err
		}
	}
	pass := true
	if f.verifyDB != "" {
		v, err := verify(ctx, f.verifyDB, led, f.drain)
		if err != nil {
			return false, err
		}
		res.Verification = &v
		pass = v.ok()
	}
	// After the verdict: every acknowledged message is committed by now.
	if err := win.end(); err != nil {
		return false, err
	}
	res.IO = win
	printResult(out, res)
	return pass, appendJSON(f.jsonOut, res)
}

func printResult(out io.Writer, r loadResult) {
	fmt.Fprintf(out, "%s: offered %.0f presses/s for %.1f s: %d presses, %d cancels, %d check-ins published; %d acknowledged (%.0f events/s), %d not sent (connection down)\n",
		r.Label, r.OfferedRate, r.Seconds, r.Presses, r.Cancels, r.CheckIns, r.Acked, r.EventsPerS, r.NotSent)
	if r.Lat.N > 0 || r.Offers > 0 || r.NoOffer > 0 {
		fmt.Fprintf(out, "%s: press → offer (from each press's scheduled time) n=%d p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms; %.0f alarms/s offered; %d presses without an offer, %d offers not matched, %d phone drops\n",
			r.Label, r.Lat.N, r.Lat.P50, r.Lat.P90, r.Lat.P99, r.Lat.Max, r.PressesPerS, r.NoOffer, r.Stray, r.PhoneDrops)
		fmt.Fprintf(out, "%s: press written → offer (without the wait for a free transmitter) p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms\n",
			r.Label, r.Svc.P50, r.Svc.P90, r.Svc.P99, r.Svc.Max)
	}
	if len(r.PerMinute) > 2 {
		fmt.Fprintf(out, "%s: %s\n", r.Label, minutesLine(r.PerMinute, r.Seconds))
	}
	fmt.Fprintf(out, "%s: publish → PUBACK n=%d p50 %.2f ms, p99 %.2f ms, max %.2f ms; %d MQTT reconnects\n",
		r.Label, r.Ack.N, r.Ack.P50, r.Ack.P99, r.Ack.Max, r.Reconnects)
	if r.FloorCommitsPerS > 0 {
		fmt.Fprintf(out, "%s: floor (same run): one fsync'd single-event commit %.3f ms = %.0f commits/s; acknowledged events/s = %.1f× the floor\n",
			r.Label, r.FloorCommitMs, r.FloorCommitsPerS, r.EventsPerS/r.FloorCommitsPerS)
	}
	if r.Verification != nil {
		fmt.Fprintf(out, "%s: %v\n", r.Label, *r.Verification)
	}
	if w := r.IO; w != nil {
		fmt.Fprintf(out, "%s: disk: pid %d wrote %d bytes (write_bytes) from %d to %d (Unix ns)\n",
			r.Label, w.PID, w.WriteBytes, w.StartNs, w.EndNs)
	}
}

func appendJSON(path string, v any) error {
	if path == "" {
		return nil
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	b, _ := json.Marshal(v)
	_, err = f.Write(append(b, '\n'))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func cmdVerify(ctx context.Context, args []string, out io.Writer) (bool, error) {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	db := fs.String("db", "", "the SQLite file")
	lp := fs.String("ledger", "", "the ledger written by `loadgen run -ledger`")
	drain := fs.Duration("drain", 0, "wait up to this for the database to catch up")
	label := fs.String("label", "vakt", "name in the output")
	jsonOut := fs.String("json", "", "append the verdict as one JSON line to this file")
	if err := fs.Parse(args); err != nil {
		return false, err
	}
	led, err := loadLedger(*lp)
	if err != nil {
		return false, err
	}
	v, err := verify(ctx, *db, led, *drain)
	if err != nil {
		return false, err
	}
	fmt.Fprintf(out, "%s: %v\n", *label, v)
	return v.ok(), appendJSON(*jsonOut, map[string]any{"label": *label, "verification": v})
}

// minutesLine sums up a long run minute by minute: the alarms offered in each full
// minute of the schedule and their p99, and the weakest full minute against the
// first, so a cliff (throughput falling off as the storm goes on) shows in one line.
func minutesLine(ms []minuteResult, seconds float64) string {
	full := min(len(ms), int(seconds/60)) // the minutes the schedule ran through
	if full < 2 {
		full = len(ms)
	}
	var offers, p99 []string
	weakest := 0
	for i, m := range ms[:full] {
		offers = append(offers, strconv.FormatInt(m.Offers, 10))
		p99 = append(p99, strconv.FormatFloat(m.P99, 'f', 0, 64))
		if m.Offers < ms[weakest].Offers {
			weakest = i
		}
	}
	ratio := 0.0
	if ms[0].Offers > 0 {
		ratio = float64(ms[weakest].Offers) / float64(ms[0].Offers)
	}
	return fmt.Sprintf("alarms offered per full minute %s; p99 ms %s; weakest minute (%d) = %.2f× the first",
		strings.Join(offers, " "), strings.Join(p99, " "), weakest+1, ratio)
}

// Command gateway is Vakt's on-site alarm gateway. It wires the concrete packages
// together and stays thin: every decision lives in engine and routing.
//
//	gateway run -config FILE            run the gateway
//	gateway check-config -config FILE   print every configuration error, exit 1 if any
//	gateway serial-monitor -port DEV    decode a live ESPA 4.4.4 line, read-only
//	gateway phone -staff ID -secret S   act as a staff phone (demo, commissioning)
//	gateway verify-audit -config FILE   check the audit hash chain
//	gateway export-person -config FILE -staff ID   everything held about a person (G3)
//	gateway erase-person -config FILE -staff ID    erase a person's personal data (G4)
//	gateway healthcheck -url URL        exit 0 when a running gateway is ready
//	gateway version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/vakt/vakt/drivers/mqtt"
	"github.com/vakt/vakt/engine"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	cmd, rest := args[0], args[1:]
	var err error
	switch cmd {
	case "run":
		err = cmdRun(rest, stderr)
	case "check-config":
		err = cmdCheckConfig(rest, stdout)
	case "serial-monitor":
		err = cmdSerialMonitor(rest, stdout)
	case "phone":
		err = cmdPhone(rest, stdout)
	case "verify-audit":
		err = cmdVerifyAudit(rest, stdout)
	case "export-person":
		err = cmdExportPerson(rest, stdout, stderr)
	case "erase-person":
		err = cmdErasePerson(rest, stdout, stderr)
	case "arc-receiver":
		err = cmdARCReceiver(rest, stdout)
	case "healthcheck":
		err = cmdHealthcheck(rest, stdout)
	case "hash-secret":
		err = cmdHashSecret(rest, os.Stdin, stdout)
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, "vakt gateway", version)
	case "help", "-h", "--help":
		usage(stdout)
	default:
		fmt.Fprintf(stderr, "gateway: unknown command %q\n", cmd)
		usage(stderr)
		return 2
	}
	if errors.Is(err, flag.ErrHelp) {
		return 2
	}
	if err != nil {
		fmt.Fprintln(stderr, "gateway:", err)
		return 1
	}
	return 0
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage: gateway <command> [flags]

commands:
  run -config FILE            run the gateway (-log-level debug|info|warn|error)
  check-config -config FILE   check a configuration file, print every error
  serial-monitor -port DEV    decode a live ESPA 4.4.4 line (read-only) while commissioning
  phone -staff ID -secret S   act as a staff phone: print pushes, confirm offers (demo, commissioning)
  verify-audit -config FILE   verify the audit log's hash chain
  export-person -config FILE -staff ID
                              print everything held about a person as JSON (docs/privacy.md)
  erase-person -config FILE -staff ID
                              erase a person's personal data; with the gateway stopped (a
                              running gateway: DELETE /api/v1/admin/staff/ID instead)
  arc-receiver -listen ADDR   a local SIA DC-09 receiver printing what an alarm centre gets (demo)
  healthcheck -url URL        exit 0 when the gateway at URL (/readyz) is ready
  hash-secret [-cost 12]      print the bcrypt hash of the secret read from stdin (secret_hash)
  version                     print the version
`)
}

func cmdRun(args []string, stderr io.Writer) error {
	// The engine's inbound queue (1 MB) and the MQTT driver's with the embedded
	// broker (2.6 MB), made before anything else: on fresh pages they cost only what
	// traffic touches (engine.NewQueue, mqtt.NewQueue; P4). Without the embedded
	// broker the driver's is never used, nor touched.
	queue, mqttQueue := engine.NewQueue(0), mqtt.NewQueue(mqtt.DirectQueueSize)
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	path := fs.String("config", "", "configuration file (required; the demo: config/examples/demo.yaml)")
	levelName := fs.String("log-level", "info", "log level: debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *path == "" {
		return errors.New("run: -config FILE is required (try -config config/examples/demo.yaml for the demo)")
	}
	level, err := parseLevel(*levelName)
	if err != nil {
		return fmt.Errorf("run: %w", err)
	}
	setMemoryLimit(os.Getenv)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// SIGHUP reloads the configuration (reload.go); caught from the start, since
	// its default action would end the process.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	m := &Main{ConfigPath: *path, Log: os.Stdout, Level: level, queue: queue, mqttQueue: mqttQueue}
	if err := m.Open(ctx); err != nil {
		return err
	}
	go m.watchReload(ctx, hup)
	go releaseAfterReady(ctx, m.ready)
	err = m.Run(ctx)
	if cerr := m.Close(); err == nil {
		err = cerr
	}
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// parseLevel reads -log-level.
func parseLevel(name string) (slog.Level, error) {
	switch strings.ToLower(name) {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("-log-level %q: use debug, info, warn or error", name)
}

// defaultMemoryLimit is the Go runtime's soft memory limit when GOMEMLIMIT is not
// set (P4: at most 60 MB resident in a storm on a Pi). It bounds the heap, stacks and
// the runtime's own memory, not the binary's mapped text and data (~17 MB more of
// the resident set): near it the collector runs more often instead of letting the
// heap double after a burst. It is soft: the gateway never fails for want of it, a
// storm only costs collector time. Measured (scripts/footprint.sh, 5,000 presses/s
// offered): peak 56 MB instead of 71-76 MB, storm throughput ~0.7 of unlimited's;
// 36 MiB gave 51 MB but once fell to 0.4, 44 MiB touched 60 MB.
const defaultMemoryLimit = 40 << 20

// setMemoryLimit applies defaultMemoryLimit unless GOMEMLIMIT is set, which the
// runtime has applied already (an installer's override, e.g. GOMEMLIMIT=off or 64MiB
// in the unit file).
func setMemoryLimit(getenv func(string) string) {
	if getenv("GOMEMLIMIT") != "" {
		return
	}
	debug.SetMemoryLimit(defaultMemoryLimit)
}

// releaseAfterReady returns the heap's free pages to the OS once the gateway is ready
// (P4, idle). Starting leaves garbage behind (the configuration's YAML, 200 staff's
// secrets checked, migrations): without this the runtime keeps those pages resident
// until a collection two minutes later lowers its goal, ~8 MB on a 500-button site.
func releaseAfterReady(ctx context.Context, ready <-chan struct{}) {
	select {
	case <-ready:
		debug.FreeOSMemory()
	case <-ctx.Done():
	}
}

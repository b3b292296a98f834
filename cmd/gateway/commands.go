package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"unicode/utf8"

	vakt "github.com/vakt/vakt"
	"github.com/vakt/vakt/config"
	"github.com/vakt/vakt/engine"
	"github.com/vakt/vakt/routing"
	"github.com/vakt/vakt/store"
	"golang.org/x/crypto/bcrypt"
)

func cmdCheckConfig(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("check-config", flag.ContinueOnError)
	path := fs.String("config", "", "configuration file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *path == "" && fs.NArg() == 1 {
		*path = fs.Arg(0)
	}
	if *path == "" {
		return fmt.Errorf("check-config: -config FILE is required")
	}
	// Check, not Load: it also compares secret hashes with the sample secrets, too
	// slow for every start.
	cfg, err := config.Check(*path)
	var errs config.Errors
	if errors.As(err, &errs) {
		// One line per problem, each with the file, so an editor can jump to it.
		for _, e := range errs {
			fmt.Fprintf(stdout, "%s: %s\n", *path, e)
		}
		return fmt.Errorf("%s: %d error(s)", *path, len(errs))
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: ok (site %s: %d zones, %d transmitters, %d staff, %d policies)\n",
		*path, cfg.Site.ID, len(cfg.Zones), len(cfg.Transmitters), len(cfg.Staff), len(cfg.Policies))
	return nil
}

func cmdVerifyAudit(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("verify-audit", flag.ContinueOnError)
	path := fs.String("config", "", "configuration file (required: its storage.path names the database)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *path == "" {
		return errors.New("verify-audit: -config FILE is required")
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	ctx := context.Background()
	// Read-only: a mistyped storage.path is an error rather than a new, empty (and so
	// "intact") database, and it may run beside the gateway.
	db, err := store.OpenReadOnly(ctx, cfg.Storage.Path, store.Options{})
	if err != nil {
		return err
	}
	defer db.Close()
	n, err := db.VerifyAuditCount(ctx)
	if err != nil {
		return fmt.Errorf("audit log %s: %w", cfg.Storage.Path, err)
	}
	seq, hash := db.AuditHead()
	if n == 0 {
		fmt.Fprintf(stdout, "audit log %s: empty (no entries yet)\n", cfg.Storage.Path)
		return verifyAnchor(ctx, cfg, db, stdout)
	}
	if anchor, _, err := db.AuditAnchor(ctx); err == nil && anchor > 0 {
		fmt.Fprintf(stdout, "audit log %s: entries up to %d deleted by retention; the chain is checked from %d\n", cfg.Storage.Path, anchor, anchor+1)
	}
	fmt.Fprintf(stdout, "audit log %s: chain intact, %d entries checked (head %d, hash %.16s…)\n", cfg.Storage.Path, n, seq, hash)
	return verifyAnchor(ctx, cfg, db, stdout)
}

// personAdmin serves the person commands (G3, G4) for the admin endpoints and the
// CLI: the export is a read of the store, audited through the engine; the erasure
// is an engine operation.
type personAdmin struct {
	db  *store.DB
	eng *engine.Engine
}

func (p personAdmin) ExportStaff(ctx context.Context, actor string, id vakt.StaffID) (any, error) {
	x, err := p.db.ExportStaff(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := p.eng.RecordExport(ctx, actor, id); err != nil {
		return nil, fmt.Errorf("audit the export: %w", err)
	}
	return x, nil
}

func (p personAdmin) EraseStaff(ctx context.Context, actor string, id vakt.StaffID) (any, error) {
	return p.eng.EraseStaff(ctx, actor, id)
}

// offline is the store and engine of a stopped gateway, opened in-process for a
// person command.
type offline struct {
	personAdmin
	stop func() error
}

func openOffline(ctx context.Context, cfgPath string, logs io.Writer) (*offline, error) {
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*offline, error) { return nil, err }
	router, err := routing.New(routingConfig(cfg))
	if err != nil {
		return fail(fmt.Errorf("routing: %w", err))
	}
	directory, initial, pins, err := staffFromConfig(cfg)
	if err != nil {
		return fail(err)
	}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	// store.Open takes the database's lock: a running gateway holds it.
	db, err := store.Open(ctx, cfg.Storage.Path, store.Options{Logger: log, LocalOnly: !cfg.Cloud.Enabled})
	if errors.Is(err, store.ErrInUse) {
		return nil, fmt.Errorf("%w: use the admin endpoint of the running gateway instead (DELETE /api/v1/admin/staff/ID, GET /api/v1/admin/staff/ID/export), or stop it first", err)
	}
	if err != nil {
		return fail(fmt.Errorf("open database %s: %w", cfg.Storage.Path, err))
	}
	eng, err := engine.New(ctx, engine.Options{
		Store: db, Router: router, Logger: log,
		Notifier:     vakt.NotifierFunc(func(vakt.StaffID, vakt.Notice) {}), // no phones: the gateway is stopped
		Transmitters: transmittersFromConfig(cfg), Directory: directory, InitialStaff: initial,
		PinnedPositions: pins, NearestRouting: cfg.Privacy.NearestRouting, PositionTTL: cfg.Privacy.PositionTTL.D(),
		WalkTest: cfg.Site.WalkTest,
	})
	if err != nil {
		db.Close()
		return fail(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { _ = eng.Run(runCtx); close(done) }()
	return &offline{personAdmin: personAdmin{db: db, eng: eng}, stop: func() error {
		cancel()
		<-done
		return db.Close()
	}}, nil
}

// personCommand parses -config and -staff and runs f on the offline engine,
// printing its answer as JSON.
func personCommand(name string, args []string, stdout, stderr io.Writer,
	f func(ctx context.Context, p personAdmin, id vakt.StaffID) (any, error)) (err error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	path := fs.String("config", "", "configuration file (for storage.path and the configured staff)")
	staff := fs.String("staff", "", "staff id")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *path == "" || *staff == "" {
		return fmt.Errorf("%s: -config FILE and -staff ID are required", name)
	}
	ctx := context.Background()
	o, err := openOffline(ctx, *path, stderr)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	defer func() {
		if cerr := o.stop(); err == nil && cerr != nil {
			err = fmt.Errorf("%s: close: %w", name, cerr)
		}
	}()
	v, err := f(ctx, o.personAdmin, vakt.StaffID(*staff))
	if err != nil {
		return fmt.Errorf("%s: staff %s: %w", name, *staff, err)
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func cmdExportPerson(args []string, stdout, stderr io.Writer) error {
	return personCommand("export-person", args, stdout, stderr, func(ctx context.Context, p personAdmin, id vakt.StaffID) (any, error) {
		return p.ExportStaff(ctx, "technician", id)
	})
}

func cmdErasePerson(args []string, stdout, stderr io.Writer) error {
	return personCommand("erase-person", args, stdout, stderr, func(ctx context.Context, p personAdmin, id vakt.StaffID) (any, error) {
		return p.EraseStaff(ctx, "technician", id)
	})
}

// cmdHashSecret prints the bcrypt hash (cost 12) of the secret read from stdin, for
// a staff member's secret_hash (config) or the cloud's directory: a technician needs
// no other tool. The secret never appears on the command line (shell history, ps).
func cmdHashSecret(args []string, stdin io.Reader, stdout io.Writer) error {
	fs := flag.NewFlagSet("hash-secret", flag.ContinueOnError)
	cost := fs.Int("cost", 12, "bcrypt cost (10 or more)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cost < bcrypt.DefaultCost || *cost > bcrypt.MaxCost {
		return fmt.Errorf("hash-secret: -cost %d: use %d to %d", *cost, bcrypt.DefaultCost, bcrypt.MaxCost)
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("hash-secret: read the secret from stdin: %w", err)
	}
	secret := strings.TrimRight(line, "\r\n")
	if utf8.RuneCountInString(secret) < 8 {
		return errors.New("hash-secret: the secret (one line on stdin) must have at least 8 characters")
	}
	h, err := bcrypt.GenerateFromPassword([]byte(secret), *cost)
	if err != nil {
		return fmt.Errorf("hash-secret: %w", err)
	}
	fmt.Fprintln(stdout, string(h))
	return nil
}

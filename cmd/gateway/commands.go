package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/vakt/vakt/config"
	"github.com/vakt/vakt/store"
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
		return nil
	}
	fmt.Fprintf(stdout, "audit log %s: chain intact, %d entries checked (head %d, hash %.16s…)\n", cfg.Storage.Path, n, seq, hash)
	return nil
}

// Command cloudsim is the reference cloud of docs/sync-protocol.md: it accepts a
// gateway's outbox uploads into an SQLite file (table entries, one row per accepted
// entry), serves the staff directory and erasure requests, and can be told to fail.
//
//	cloudsim [-listen 127.0.0.1:8090] [-admin 127.0.0.1:8091] [-db data/cloud.db]
//	         [-token GATEWAY:TOKEN]... [-tokens FILE] [-tls-cert F -tls-key F]
//	cloudsim staff put    -gateway G -id ID -name N [-roles a,b] [-phone P] [-email E] [-zone Z] [-secret-hash H]
//	cloudsim staff remove -gateway G -id ID
//	cloudsim erase        -gateway G -id ID
//	cloudsim fault        -mode MODE [-status N] [-retry-after D] [-delay D] [-take N] [-count N]
//	cloudsim fault        -clear
//	cloudsim count        -gateway G
//
// The subcommands talk to the admin endpoint (-admin-url, default http://127.0.0.1:8091).
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/vakt/vakt/sync/cloudsim"
	"github.com/vakt/vakt/sync/cloudsim/sqlitestore"
	"github.com/vakt/vakt/sync/wire"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "cloudsim:", err)
		os.Exit(1)
	}
}

type tokenFlags map[string]string

func (t tokenFlags) String() string { return fmt.Sprint(len(t), " tokens") }

func (t tokenFlags) Set(v string) error {
	gw, tok, ok := strings.Cut(v, ":")
	if !ok || gw == "" || tok == "" {
		return errors.New("want GATEWAY:TOKEN")
	}
	t[tok] = gw
	return nil
}

func run(ctx context.Context, args []string, out io.Writer) error {
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		return admin(ctx, args, out)
	}
	fs := flag.NewFlagSet("cloudsim", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:8090", "API address")
	adminAddr := fs.String("admin", "127.0.0.1:8091", "admin address (no authentication: keep it on loopback)")
	dbPath := fs.String("db", "data/cloud.db", "SQLite file")
	tokensFile := fs.String("tokens", "", "file of lines \"GATEWAY TOKEN\" (mode 0600)")
	cert := fs.String("tls-cert", "", "serve HTTPS with this certificate (PEM)")
	key := fs.String("tls-key", "", "and this key")
	maxBody := fs.Int64("max-body", 8<<20, "largest upload body in bytes (compressed); larger ones get 413")
	tokens := tokenFlags{}
	fs.Var(tokens, "token", "GATEWAY:TOKEN (repeatable; prefer -tokens so the token is not in ps)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *tokensFile != "" {
		if err := readTokens(*tokensFile, tokens); err != nil {
			return err
		}
	}
	if len(tokens) == 0 {
		return errors.New("no gateway tokens: give -token GATEWAY:TOKEN or -tokens FILE")
	}
	if err := os.MkdirAll(filepath.Dir(*dbPath), 0o700); err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	st, err := sqlitestore.Open(ctx, *dbPath)
	if err != nil {
		return err
	}
	defer st.Close()
	sim := cloudsim.New(st, cloudsim.Options{Tokens: tokens, MaxBody: *maxBody, Log: log})

	aln, err := net.Listen("tcp", *adminAddr)
	if err != nil {
		return fmt.Errorf("admin listen: %w", err)
	}
	asrv := &http.Server{Handler: sim.AdminHandler(), ReadHeaderTimeout: 10 * time.Second}
	go asrv.Serve(aln)
	defer asrv.Close()

	if *cert != "" {
		// TLS needs the plain server; the refuse fault is not available then.
		srv := &http.Server{Addr: *listen, Handler: sim.Handler(), ReadHeaderTimeout: 10 * time.Second}
		go func() { <-ctx.Done(); srv.Close() }()
		log.Info("cloudsim listening", "api", "https://"+*listen, "admin", aln.Addr().String(), "db", *dbPath)
		if err := srv.ListenAndServeTLS(*cert, *key); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}
	ready := make(chan string, 1)
	errc := make(chan error, 1)
	go func() { errc <- sim.Serve(ctx, *listen, ready) }()
	select {
	case addr := <-ready:
		log.Info("cloudsim listening", "api", "http://"+addr, "admin", aln.Addr().String(), "db", *dbPath)
		fmt.Fprintf(out, "listening %s admin %s\n", addr, aln.Addr())
	case err := <-errc:
		return err
	}
	return <-errc
}

func readTokens(path string, into tokenFlags) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("%s: mode %v lets others read the tokens; chmod 600 it", path, fi.Mode().Perm())
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		gw, tok, ok := strings.Cut(line, " ")
		if !ok || strings.TrimSpace(tok) == "" {
			return fmt.Errorf("%s line %d: want \"GATEWAY TOKEN\"", path, n)
		}
		into[strings.TrimSpace(tok)] = gw
	}
	return sc.Err()
}

// admin runs a subcommand against the admin endpoint.
func admin(ctx context.Context, args []string, out io.Writer) error {
	cmd := args[0]
	if cmd == "staff" && len(args) > 1 {
		cmd, args = "staff "+args[1], args[1:]
	}
	fs := flag.NewFlagSet("cloudsim "+cmd, flag.ContinueOnError)
	url := fs.String("admin-url", "http://127.0.0.1:8091", "the running cloudsim's admin endpoint")
	gw := fs.String("gateway", "", "gateway id (site.id)")
	id := fs.String("id", "", "staff id")
	var st wire.Staff
	var roles string
	var f cloudsim.Fault
	var retryAfter, delay time.Duration
	clear := false
	switch cmd {
	case "staff put":
		fs.StringVar(&st.Name, "name", "", "name")
		fs.StringVar(&st.Phone, "phone", "", "phone")
		fs.StringVar(&st.Email, "email", "", "e-mail")
		fs.StringVar(&st.Zone, "zone", "", "primary zone")
		fs.StringVar(&st.SecretHash, "secret-hash", "", "bcrypt hash of the login secret")
		fs.StringVar(&roles, "roles", "nurse", "comma-separated roles")
	case "fault":
		fs.StringVar(&f.Mode, "mode", "", "refuse, status, stall, drop-mid-body, drop-after-commit, slow, partial")
		fs.IntVar(&f.Status, "status", 503, "status for -mode status")
		fs.DurationVar(&retryAfter, "retry-after", 0, "Retry-After for -mode status")
		fs.DurationVar(&delay, "delay", 0, "delay for -mode slow")
		fs.IntVar(&f.Take, "take", 1, "entries acknowledged per batch for -mode partial")
		fs.IntVar(&f.Count, "count", 0, "uploads it applies to (0 = until cleared)")
		fs.BoolVar(&clear, "clear", false, "clear the fault")
	case "staff remove", "erase", "count":
	default:
		return fmt.Errorf("unknown subcommand %q (staff put, staff remove, erase, fault, count)", cmd)
	}
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	base := strings.TrimSuffix(*url, "/") + "/admin"
	var method, path string
	var body any
	switch cmd {
	case "staff put":
		st.ID = *id
		if roles != "" {
			st.Roles = strings.Split(roles, ",")
		}
		method, path, body = http.MethodPut, "/gateways/"+*gw+"/staff/"+*id, st
	case "staff remove":
		method, path = http.MethodDelete, "/gateways/"+*gw+"/staff/"+*id
	case "erase":
		method, path, body = http.MethodPost, "/gateways/"+*gw+"/erasures", map[string]string{"staff_id": *id}
	case "count":
		method, path = http.MethodGet, "/gateways/"+*gw+"/count"
	case "fault":
		f.RetryAfter, f.Delay = cloudsim.Duration(retryAfter), cloudsim.Duration(delay)
		method, path, body = http.MethodPut, "/fault", f
		if clear {
			method, body = http.MethodDelete, nil
		}
	}
	if cmd != "fault" && (*gw == "" || (cmd != "count" && *id == "")) {
		return errors.New("give -gateway and -id")
	}
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, rd)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(b))
	}
	out.Write(b)
	return nil
}

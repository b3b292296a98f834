// Package config reads the gateway's one YAML configuration file strictly: unknown
// keys, wrong types, bad durations, dangling references and sample secrets are all
// errors, every one reported with its key path and line, all at once, so that
// `gateway check-config` shows a technician everything to fix in one run.
//
// Secrets are written inline, as ${ENV_NAME}, or as file:/path (mode 0600 or
// stricter); their values never appear in errors or printed output.
//
// This is the only package that imports goccy/go-yaml. docs/configuration.md
// describes every key.
package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"syscall"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

// MaxSize bounds a configuration file; a large site's file is a few hundred KiB.
const MaxSize = 4 << 20

// Load reads and parses the configuration file at path. Relative file: secrets and a
// relative storage.path are taken relative to the file's directory. Problems in the
// file are returned as Errors.
//
// Only a regular file is read: a FIFO, a device or a directory is refused without
// blocking (a FIFO nobody writes to would hang check-config for ever).
func Load(path string) (*Config, error) {
	data, err := readConfigFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(data, path)
}

// readConfigFile reads at most MaxSize+1 bytes of a regular file. It stats before
// opening, opens with O_NONBLOCK (so that a file swapped for a FIFO in between still
// cannot block the open) and checks the opened file again.
func readConfigFile(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if err := regularFile(path, st); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	if st, err = f.Stat(); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if err := regularFile(path, st); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("config: read %s: %w", path, err)
	}
	return data, nil
}

func regularFile(path string, st fs.FileInfo) error {
	m := st.Mode()
	switch {
	case m.IsRegular():
		return nil
	case m.IsDir():
		return fmt.Errorf("config: %s is a directory; give the configuration file inside it, e.g. %s", path, filepath.Join(path, "vakt.yaml"))
	case m&fs.ModeNamedPipe != 0:
		return fmt.Errorf("config: %s is a named pipe (FIFO), not a file; give a regular configuration file", path)
	case m&fs.ModeDevice != 0:
		return fmt.Errorf("config: %s is a device, not a file; give a regular configuration file", path)
	default:
		return fmt.Errorf("config: %s is not a regular file (mode %s); give a regular configuration file", path, m.Type())
	}
}

// Parse parses, completes with defaults (ApplyDefaults) and validates a configuration.
// name is the file's name, used in errors and as the base for relative file: secrets
// and a relative storage.path (which Parse returns absolute); with name "" a relative
// storage.path is left as written.
// On any problem it returns a nil Config and Errors listing every problem found.
func Parse(data []byte, name string) (*Config, error) {
	return parse(data, name, secretResolver{lookupEnv: os.LookupEnv, readFile: readSecretFile})
}

// Check is Load plus the checks too slow for every start: each staff secret_hash is
// compared against the sample secrets (see hashes.go for why Load does not). It is
// what `gateway check-config` runs; it takes about a second per hashed staff member
// spread over the cores.
func Check(path string) (*Config, error) {
	data, err := readConfigFile(path)
	if err != nil {
		return nil, err
	}
	return parseWith(data, path, secretResolver{lookupEnv: os.LookupEnv, readFile: readSecretFile}, true)
}

// parse is Parse with the environment and secret files supplied by the caller.
func parse(data []byte, name string, secrets secretResolver) (*Config, error) {
	return parseWith(data, name, secrets, false)
}

// parseWith is parse; thorough adds Check's slow checks.
func parseWith(data []byte, name string, secrets secretResolver, thorough bool) (*Config, error) {
	fail := func(line int, format string, args ...any) (*Config, error) {
		return nil, Errors{{File: name, Line: line, Msg: fmt.Sprintf(format, args...)}}
	}
	if len(data) > MaxSize {
		return fail(0, "the file is larger than %d MiB", MaxSize>>20)
	}
	// Bound nesting before the parser sees the file: goccy/go-yaml needs memory
	// that grows much faster than the depth (a 4 MiB file of "[" exhausts 6 GB).
	if line, ok := tooDeep(data, maxNesting); !ok {
		return fail(line, "nesting deeper than %d levels; a configuration needs fewer than 10: is this the right file?", maxNesting)
	}
	file, err := parseYAML(data)
	if err != nil {
		var yerr yaml.Error
		if errors.As(err, &yerr) && yerr.GetToken() != nil && yerr.GetToken().Position != nil {
			// GetMessage, not Error: Error quotes the source lines, which may hold a secret.
			return fail(yerr.GetToken().Position.Line, "YAML syntax: %s", yerr.GetMessage())
		}
		return fail(0, "YAML syntax: %v", err)
	}

	if name != "" {
		secrets.dir = filepath.Dir(name)
	}
	d := newDecoder(name, secrets)
	cfg := new(Config)
	var body ast.Node
	for _, doc := range file.Docs {
		if doc == nil || doc.Body == nil {
			continue
		}
		if body != nil {
			d.errorf("", lineOfNode(doc.Body), "only one YAML document per file (remove the second ---)")
			break
		}
		body = doc.Body
		d.collectAnchors(doc, 0)
	}
	if n, ok := d.resolve("", body); ok && n != nil {
		if _, isMap := n.(*ast.MappingNode); !isMap {
			// Nothing else is worth saying about such a file.
			return fail(lineOfNode(n), "the file must be a mapping of sections (site:, zones:, transmitters:, ...), got %s", describe(n))
		}
		d.decode("", n, reflect.ValueOf(cfg).Elem(), 0)
	}

	applyDefaults(cfg, d.isGiven)
	if name != "" && cfg.ARC.KeyFile != "" && !filepath.IsAbs(cfg.ARC.KeyFile) {
		cfg.ARC.KeyFile = filepath.Join(filepath.Dir(name), cfg.ARC.KeyFile)
	}
	d.cloudToken(cfg)
	errs := append(d.errs, validate(cfg, d.lineOf, d.reported)...)
	if thorough {
		errs = append(errs, sampleHashes(cfg, d.lineOf)...)
	}
	for _, e := range errs {
		e.File = name
	}
	errs.sort()
	if len(errs) > 0 {
		return nil, errs
	}
	if name != "" {
		if cfg.Storage.Path, err = resolvePath(filepath.Dir(name), cfg.Storage.Path); err != nil {
			return fail(d.lineOf("storage.path"), "storage.path: %v", err)
		}
	}
	return cfg, nil
}

// resolvePath makes a relative path relative to dir (the configuration file's
// directory) and absolute, so that the database is the same file whatever directory
// the gateway is started from, and every consumer of Config gets the same path.
func resolvePath(dir, path string) (string, error) {
	if !filepath.IsAbs(path) {
		path = filepath.Join(dir, path)
	}
	return filepath.Abs(path)
}

// parseYAML runs goccy's parser. Duplicate keys are allowed there so that the decoder
// can report each of them instead of the parser stopping at the first. A panic in the
// parser (a library bug on malformed input) becomes an error: a bad file must never
// take the gateway or check-config down.
func parseYAML(data []byte) (f *ast.File, err error) {
	defer func() {
		if r := recover(); r != nil {
			f, err = nil, fmt.Errorf("the YAML parser failed on this file (%v); check its syntax", r)
		}
	}()
	return parser.ParseBytes(data, 0, parser.AllowDuplicateMapKey())
}

// cloudToken reads cloud.token_file under the secret-file rules (mode 0600, not
// empty, bounded) into cfg.Cloud.Token, relative to the configuration file.
func (d *decoder) cloudToken(cfg *Config) {
	c := &cfg.Cloud
	if !c.Enabled {
		return
	}
	if c.TokenFile == "" {
		if cfg.Site.Demo {
			// The demo syncs with a cloudsim started with -token <site.id>:demo, and
			// a token file from a clone would not have mode 0600.
			c.Token = Secret{Value: DemoCloudToken, From: "demo default"}
		}
		return
	}
	tok, err := d.secrets.resolve("file:" + c.TokenFile)
	if err != nil {
		d.errorf("cloud.token_file", d.lineOf("cloud.token_file"), "%v", err)
		return
	}
	c.Token = tok
}

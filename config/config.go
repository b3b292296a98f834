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
	"os"
	"path/filepath"
	"reflect"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

// MaxSize bounds a configuration file; a large site's file is a few hundred KiB.
const MaxSize = 4 << 20

// Load reads and parses the configuration file at path. Relative file: secrets are
// read relative to the file's directory. Problems in the file are returned as Errors.
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("config: read %s: %w", path, err)
	}
	return Parse(data, path)
}

// Parse parses, completes with defaults (ApplyDefaults) and validates a configuration.
// name is the file's name, used in errors and as the base for relative file: secrets.
// On any problem it returns a nil Config and Errors listing every problem found.
func Parse(data []byte, name string) (*Config, error) {
	return parse(data, name, secretResolver{lookupEnv: os.LookupEnv, readFile: readSecretFile})
}

// parse is Parse with the environment and secret files supplied by the caller.
func parse(data []byte, name string, secrets secretResolver) (*Config, error) {
	fail := func(line int, format string, args ...any) (*Config, error) {
		return nil, Errors{{File: name, Line: line, Msg: fmt.Sprintf(format, args...)}}
	}
	if len(data) > MaxSize {
		return fail(0, "the file is larger than %d MiB", MaxSize>>20)
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
	errs := append(d.errs, validate(cfg, d.lineOf, d.reported)...)
	for _, e := range errs {
		e.File = name
	}
	errs.sort()
	if len(errs) > 0 {
		return nil, errs
	}
	return cfg, nil
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

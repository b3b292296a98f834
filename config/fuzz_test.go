package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fuzzSecret is what every secret file holds during fuzzing; no error may show it.
const fuzzSecret = "FUZZ-file-secret-0x5eed"

// fuzzSecrets resolves secrets without touching the machine: every environment
// variable is set unless its name starts with UNSET, every file exists unless its
// path contains "missing".
var fuzzSecrets = secretResolver{
	lookupEnv: func(name string) (string, bool) {
		if strings.HasPrefix(name, "UNSET") {
			return "", false
		}
		return "env-" + name, true
	},
	readFile: func(path string) (string, error) {
		if strings.Contains(path, "missing") {
			return "", fmt.Errorf("cannot read secret file: %w", &fs.PathError{Op: "stat", Path: path, Err: fs.ErrNotExist})
		}
		return fuzzSecret, nil
	},
}

// FuzzParse: no input panics, hangs or reveals a secret; every failure is a
// non-empty Errors; whatever Parse accepts, Validate accepts too.
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("testdata", "cases", "*", "config.yaml"))
	examples, _ := filepath.Glob(filepath.Join("examples", "*.yaml"))
	for _, path := range append(seeds, examples...) {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := parse(data, "fuzz.yaml", fuzzSecrets)
		if err != nil {
			if cfg != nil {
				t.Fatal("a Config was returned together with an error")
			}
			var errs Errors
			if !errors.As(err, &errs) || len(errs) == 0 {
				t.Fatalf("error %T is not a non-empty Errors: %v", err, err)
			}
			for _, e := range errs {
				if e.Msg == "" {
					t.Fatalf("empty message in %+v", e)
				}
			}
			if !bytes.Contains(data, []byte(fuzzSecret)) && strings.Contains(err.Error(), fuzzSecret) {
				t.Fatalf("error reveals a secret file's content:\n%v", err)
			}
			return
		}
		if cfg == nil {
			t.Fatal("neither a Config nor an error")
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("Parse accepted a configuration that Validate refuses:\n%v", err)
		}
	})
}

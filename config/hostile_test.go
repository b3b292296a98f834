package config

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// TestDeepNestingRefused: a file inside the size limit that nests collections
// millions of levels deep is refused before the YAML parser runs (which would need
// gigabytes for it), with an error naming the line; real files still load.
func TestDeepNestingRefused(t *testing.T) {
	const depth = 1_900_000
	cases := map[string]struct {
		data []byte
		line int
	}{
		"flow sequences": {bytes.Repeat([]byte("["), depth), 1},
		"flow mappings":  {append([]byte("site:\n  id: s\nx: "), bytes.Repeat([]byte("{a: "), depth/4)...), 3},
		"under a key":    {append([]byte("site:\n  id: s\nzones: "), bytes.Repeat([]byte("[ "), depth)...), 3},
		"tagged":         {append([]byte("x: "), bytes.Repeat([]byte("!t [&a "), depth/8)...), 1},
		"compact block":  {append([]byte("x:\n  "), bytes.Repeat([]byte("- "), depth)...), 2},
		"complex keys":   {bytes.Repeat([]byte("? "), depth), 1},
		"indentation":    {indented(200), 65},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if len(tc.data) > MaxSize {
				t.Fatalf("test file is %d bytes, over MaxSize", len(tc.data))
			}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err := parse(tc.data, "deep.yaml", fuzzSecrets)
			runtime.ReadMemStats(&after)
			// Bounded memory: the parser, which would need gigabytes, never ran.
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 1<<20 {
				t.Errorf("refusing the file allocated %d KiB", alloc>>10)
			}
			want := "nesting deeper than 64 levels"
			var errs Errors
			if !errors.As(err, &errs) || len(errs) != 1 || !strings.Contains(errs[0].Msg, want) || errs[0].Line != tc.line {
				t.Fatalf("err = %v, want one error %q on line %d", err, want, tc.line)
			}
		})
	}
}

// indented builds a block mapping nested n levels by indentation.
func indented(n int) []byte {
	var b bytes.Buffer
	for i := range n {
		b.WriteString(strings.Repeat(" ", i) + "k:\n")
	}
	return b.Bytes()
}

// TestNestingNotMisread: brackets inside quoted or plain scalars, comments and block
// scalars are text, not nesting; 60 real levels pass the pre-scan.
func TestNestingNotMisread(t *testing.T) {
	many := strings.Repeat("[", 100)
	for name, text := range map[string]string{
		"double quoted": "x: \"" + many + "\\\"" + many + "\"\n",
		"single quoted": "x: '" + many + "''" + many + "'\n",
		"plain":         "x: a" + many + "\n",
		"comment":       "x: 1 # " + many + "\n",
		"block scalar":  "x: |\n  " + many + "\n" + "\n  a\n     b\ny: 2\n",
		"in flow":       "x: [\"" + many + "\", '" + many + "']\n",
		"60 deep":       strings.Repeat("[", 60) + strings.Repeat("]", 60) + "\n",
		"multi-line":    "x: \"a\n  " + many + "\n  b\"\ny: [1,\n  2]\n",
	} {
		if line, ok := tooDeep([]byte(text), maxNesting); !ok {
			t.Errorf("%s: refused at line %d:\n%s", name, line, text)
		}
	}
	if line, ok := tooDeep(indented(64), maxNesting); !ok {
		t.Errorf("64 levels of indentation refused at line %d", line)
	}
	if _, ok := tooDeep(indented(65), maxNesting); ok {
		t.Error("65 levels of indentation accepted")
	}
}

// TestLoadRefusesNonRegularFiles: a FIFO, a directory or a device given as the
// configuration file is refused at once, with an error saying what it is; nothing
// blocks (a FIFO nobody writes to would hang a plain open for ever).
func TestLoadRefusesNonRegularFiles(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "vakt.yaml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ path, want string }{
		{fifo, "is a named pipe (FIFO)"},
		{dir, "is a directory"},
		{os.DevNull, "is a device"},
	} {
		done := make(chan error, 1)
		go func() {
			_, err := Load(tc.path)
			done <- err
		}()
		ctx := t.Context()
		if dl, ok := t.Deadline(); ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithDeadline(ctx, dl.Add(-5*time.Second))
			defer cancel()
		}
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Load(%s) = %v, want %q", tc.path, err, tc.want)
			}
		case <-ctx.Done():
			// Unblock the goroutine so the test binary can end.
			if f, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
				f.Close()
			}
			t.Fatalf("Load(%s) is still blocked at the test deadline", tc.path)
		}
	}
}

// TestStoragePathRelativeToConfigFile: a relative storage.path is taken relative to
// the configuration file's directory, not to the directory the gateway is started
// from, and Load returns it absolute; an absolute path is kept.
func TestStoragePathRelativeToConfigFile(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(t.TempDir()) // somewhere else entirely
	for _, tc := range []struct{ storage, want string }{
		{"storage: {path: db/site.db}\n", filepath.Join(dir, "db", "site.db")},
		{"storage: {path: ../elsewhere/site.db}\n", filepath.Join(filepath.Dir(dir), "elsewhere", "site.db")},
		{"", filepath.Join(dir, "data", "vakt.db")}, // the default, data/vakt.db
		{"storage: {path: /var/lib/vakt/vakt.db}\n", "/var/lib/vakt/vakt.db"},
	} {
		path := filepath.Join(dir, "vakt.yaml")
		if err := os.WriteFile(path, []byte(minimalConfig+tc.storage), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := Load(path)
		if err != nil {
			t.Fatalf("%q: %v", tc.storage, err)
		}
		if cfg.Storage.Path != tc.want {
			t.Errorf("%q: storage.path = %s, want %s", tc.storage, cfg.Storage.Path, tc.want)
		}
	}
}

// TestDemoDatabaseInRepositoryData: the demo's database lands in the repository's
// data/ folder, as the README says, whatever the working directory.
func TestDemoDatabaseInRepositoryData(t *testing.T) {
	demo, err := filepath.Abs(filepath.Join("examples", "demo.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	repo := filepath.Dir(filepath.Dir(filepath.Dir(demo)))
	t.Chdir(t.TempDir())
	cfg, err := Load(demo)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(repo, "data", "vakt.db"); cfg.Storage.Path != want {
		t.Errorf("demo storage.path = %s, want %s", cfg.Storage.Path, want)
	}
}

// testHash is a bcrypt hash (cost 10) of a secret printed nowhere; printedHashes
// are refused outside demo mode.
const testHash = "$2a$10$ig/AlgzFuFG4z8HPiOcJyO/mnFZ0tg8ZH7lFL4cTGHLsGDqwhrNqu"

const minimalConfig = `site: {id: test-site}
zones: [{id: east}]
transmitters: [{id: room-101, kind: button, driver: zigbee2mqtt, address: room101/button, zone: east}]
staff: [{id: nurse-1, secret_hash: "` + testHash + `"}]
policies: [{name: all, tiers: [{target: site, wait: 60s}]}]
drivers: {mqtt: {enabled: true, url: "tcp://127.0.0.1:1883"}}
`

// TestSampleHashesCompareEverySample: Check compares each distinct acceptable hash
// with every sample secret and reports only the matches, on every key that has the
// hash; hashes refused anyway (printed, too cheap, too slow, malformed) and demo
// sites cost no comparison. bcrypt itself is replaced by a counting fake, since 15
// real comparisons at cost 10 take many seconds under -race.
func TestSampleHashesCompareEverySample(t *testing.T) {
	const sampleHash = "$2a$10$Scz8mJExcbhG54DQB.I0V.is3jO6ZDwIsMPlmPzMzEycvePr5Vy/m" // "changeme"
	var mu sync.Mutex
	calls := map[string]int{}
	orig := compareHash
	compareHash = func(hash, secret []byte) error {
		mu.Lock()
		calls[string(hash)]++
		mu.Unlock()
		if string(hash) == sampleHash && string(secret) == "changeme" {
			return nil
		}
		return bcrypt.ErrMismatchedHashAndPassword
	}
	t.Cleanup(func() { compareHash = orig })

	cfg := &Config{Staff: []Staff{
		{ID: "a", SecretHash: testHash},
		{ID: "b", SecretHash: sampleHash},
		{ID: "c", SecretHash: testHash},
		{ID: "d", SecretHash: "$2a$12$aGbG21dLF87ds.Vuxcqiku73h/Je.EbPwGrzOjutOiAZqgw5a8fLi"},
		{ID: "e", SecretHash: "$2a$04$S2R4TMZ9PnicCCORc5lyoeGhu8FL9H7BOjIZoDC0fgt.Gfrjg1ljW"},
		{ID: "f", SecretHash: "$2b$31$ig/AlgzFuFG4z8HPiOcJyO/mnFZ0tg8ZH7lFL4cTGHLsGDqwhrNqu"},
		{ID: "g", SecretHash: "not a hash"},
	}}
	errs := sampleHashes(cfg, nil)
	if len(errs) != 1 || errs[0].Path != "staff[1].secret_hash" || !strings.Contains(errs[0].Msg, "sample secret") {
		t.Errorf("errors = %v, want staff[1].secret_hash only", errs)
	}
	if calls[testHash] != len(sampleSecrets) {
		t.Errorf("the real hash (used twice) was compared %d times, want once per sample (%d)", calls[testHash], len(sampleSecrets))
	}
	if n := calls[sampleHash]; n < 1 || n > len(sampleSecrets) {
		t.Errorf("the sample hash was compared %d times", n)
	}
	if len(calls) != 2 {
		t.Errorf("compared hashes %v; printed, cheap, too slow and malformed ones need no comparison", calls)
	}

	clear(calls)
	cfg.Site.Demo = true
	if errs := sampleHashes(cfg, nil); len(errs) != 0 || len(calls) != 0 {
		t.Errorf("demo site: errors %v after %d comparisons, want none", errs, len(calls))
	}
}

var printedHash = regexp.MustCompile(`\$2[aby]\$[0-9]{2}\$[./A-Za-z0-9]{53}`)

// TestPrintedHashesListed: every bcrypt hash printed in the documentation, the
// README or the examples is in printedHashes, so none of them is accepted outside
// demo mode.
func TestPrintedHashesListed(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("examples", "*"))
	docs, _ := filepath.Glob(filepath.Join("..", "*.md"))
	files = append(files, docs...)
	err := filepath.WalkDir(filepath.Join("..", "docs"), func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range printedHash.FindAllString(string(data), -1) {
			found++
			if !printedHashes[h] {
				t.Errorf("%s prints the hash %s; add it to printedHashes in config/hashes.go", f, h)
			}
		}
	}
	if found < 3 {
		t.Errorf("found %d printed hashes in %d files; is the search looking in the right place?", found, len(files))
	}
}

// BenchmarkTooDeep: the nesting pre-scan of a large (4 MiB) but ordinary file, which
// every start pays.
func BenchmarkTooDeep(b *testing.B) {
	data, err := os.ReadFile(filepath.Join("examples", "demo.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	data = bytes.Repeat(data, MaxSize/len(data))
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if line, ok := tooDeep(data, maxNesting); !ok {
			b.Fatalf("refused at line %d", line)
		}
	}
}

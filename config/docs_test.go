package config

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/goccy/go-yaml/parser"
)

const docsPath = "../docs/configuration.md"

// TestDocsCoverEveryKey: docs/configuration.md names every key of the schema.
func TestDocsCoverEveryKey(t *testing.T) {
	doc, err := os.ReadFile(docsPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range yamlKeys(reflect.TypeFor[Config](), "") {
		name := key[strings.LastIndex(key, ".")+1:]
		if !strings.Contains(string(doc), "`"+name+"`") && !strings.Contains(string(doc), "## "+key) {
			t.Errorf("%s: key %q is not documented", docsPath, key)
		}
	}
}

func yamlKeys(t reflect.Type, prefix string) []string {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || t == durationType || t == secretType {
		return nil
	}
	var keys []string
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if name == "" {
			continue
		}
		keys = append(keys, prefix+name)
		keys = append(keys, yamlKeys(t.Field(i).Type, prefix+name+".")...)
	}
	return keys
}

var yamlBlock = regexp.MustCompile("(?s)```yaml\n(.*?)```")

// TestDocsExamples: every YAML example in the docs uses only real keys with the right
// types, and the complete ones pass every check.
func TestDocsExamples(t *testing.T) {
	doc, err := os.ReadFile(docsPath)
	if err != nil {
		t.Fatal(err)
	}
	blocks := yamlBlock.FindAllStringSubmatch(string(doc), -1)
	if len(blocks) < 10 {
		t.Fatalf("found only %d yaml examples", len(blocks))
	}
	for _, b := range blocks {
		text := dedent(b[1])
		if strings.HasPrefix(text, "site:") { // a whole file
			if _, err := parse([]byte(text), "doc.yaml", fuzzSecrets); err != nil {
				t.Errorf("example fails:\n%s\n%v", text, err)
			}
			continue
		}
		file, err := parser.ParseBytes([]byte(text), 0)
		if err != nil {
			t.Errorf("example is not YAML:\n%s\n%v", text, err)
			continue
		}
		d := newDecoder("doc.yaml", fuzzSecrets)
		d.collectAnchors(file.Docs[0], 0)
		d.decode("", file.Docs[0].Body, reflect.ValueOf(new(Config)).Elem(), 0)
		if len(d.errs) > 0 {
			t.Errorf("example has errors:\n%s\n%v", text, d.errs)
		}
	}
}

// dedent removes the indentation of a code block nested in a list item.
func dedent(s string) string {
	lines := strings.Split(s, "\n")
	indent := len(lines[0]) - len(strings.TrimLeft(lines[0], " "))
	for i, l := range lines {
		if len(l) >= indent && strings.TrimSpace(l[:indent]) == "" {
			lines[i] = l[indent:]
		}
	}
	return strings.Join(lines, "\n")
}

// TestExamplesAreDocumented: the examples the docs point to exist.
func TestExamplesAreDocumented(t *testing.T) {
	doc, _ := os.ReadFile(docsPath)
	files, _ := filepath.Glob(filepath.Join("examples", "*.yaml"))
	for _, f := range files {
		if !strings.Contains(string(doc), "config/examples/"+filepath.Base(f)) {
			t.Errorf("%s is not mentioned in %s", f, docsPath)
		}
	}
}

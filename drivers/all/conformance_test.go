package all_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	vakt "github.com/vakt/vakt"
	"github.com/vakt/vakt/config"
	"github.com/vakt/vakt/drivers"
	_ "github.com/vakt/vakt/drivers/all"
)

// A driver folder is drivers/<dir> with a sample.yaml; a dialect's folder also has
// testdata/messages.jsonl, its golden messages in delivery order.
type folder struct {
	dir      string
	cfg      *config.Config
	dialects map[string]bool // MQTT dialects its sample uses
	used     []string        // every driver its sample uses
}

type golden struct {
	Topic   string `json:"topic"`
	Payload string `json:"payload"`
	Expect  string `json:"expect"`
	Device  string `json:"device"`
}

// folders loads every driver folder's sample.yaml with the real loader.
func folders(t testing.TB) []folder {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("..", "*", "sample.yaml"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no ../*/sample.yaml (%v)", err)
	}
	var out []folder
	for _, p := range paths {
		cfg, err := config.Load(p)
		if err != nil {
			t.Fatalf("%s does not load: %v", p, err)
		}
		f := folder{dir: filepath.Dir(p), cfg: cfg, dialects: map[string]bool{}}
		for _, tr := range cfg.Transmitters {
			if !slices.Contains(f.used, tr.Driver) {
				f.used = append(f.used, tr.Driver)
			}
			fac, _ := drivers.Lookup(tr.Driver)
			if _, ok := fac(drivers.Settings{}).(drivers.Dialect); ok {
				f.dialects[tr.Driver] = true
			}
		}
		out = append(out, f)
	}
	return out
}

// dialect builds the folder's dialect and gives it the sample's transmitters.
func (f folder) dialect(t testing.TB, name string) drivers.Dialect {
	t.Helper()
	fac, _ := drivers.Lookup(name)
	d := fac(f.cfg.Drivers.MQTT.Settings()).(drivers.Dialect)
	for i := range f.cfg.Transmitters {
		if tr := &f.cfg.Transmitters[i]; tr.Driver == name {
			if err := d.Add(tr.Device()); err != nil {
				t.Fatalf("%s: %s: %v", f.dir, tr.ID, err)
			}
		}
	}
	return d
}

func (f folder) golden(t testing.TB) []golden {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(f.dir, "testdata", "messages.jsonl"))
	if err != nil {
		t.Fatalf("%s: a dialect's folder needs testdata/messages.jsonl: %v", f.dir, err)
	}
	var out []golden
	for l := range bytes.Lines(data) {
		if l = bytes.TrimSpace(l); len(l) == 0 {
			continue
		}
		var g golden
		if err := json.Unmarshal(l, &g); err != nil {
			t.Fatalf("%s/testdata/messages.jsonl: %v", f.dir, err)
		}
		out = append(out, g)
	}
	return out
}

// TestEveryDriverHasAFolder: each registered driver is shown by some folder's
// sample.yaml, which the real configuration loader accepts.
func TestEveryDriverHasAFolder(t *testing.T) {
	shown := map[string]bool{}
	for _, f := range folders(t) {
		for _, n := range f.used {
			shown[n] = true
		}
	}
	for _, n := range drivers.Names() {
		if !shown[n] {
			t.Errorf("driver %s is registered but no drivers/*/sample.yaml uses it", n)
		}
	}
}

// TestConformance plays every dialect's golden messages: each decodes as stated,
// every event is well formed, and every truncation of a JSON payload is rejected
// as malformed, never half-read.
func TestConformance(t *testing.T) {
	for _, f := range folders(t) {
		for name := range f.dialects {
			t.Run(name, func(t *testing.T) {
				lines := f.golden(t)
				d := f.dialect(t, name)
				for i, g := range lines {
					res, err := d.Decode(g.Topic, []byte(g.Payload), false)
					check(t, i+1, g, res, err)
				}
				fresh := f.dialect(t, name)
				for i, g := range lines {
					if strings.HasPrefix(g.Expect, "reject:") || g.Expect == "ignore" || !strings.HasPrefix(g.Payload, "{") {
						continue
					}
					for n := 1; n < len(g.Payload); n++ {
						if _, err := fresh.Decode(g.Topic, []byte(g.Payload[:n]), false); !errors.Is(err, drivers.ErrMalformed) {
							t.Errorf("line %d cut to %d bytes: err %v, want malformed", i+1, n, err)
							break
						}
					}
				}
			})
		}
	}
}

func check(t *testing.T, line int, g golden, res drivers.Result, err error) {
	t.Helper()
	where := func() string { return g.Topic + " (" + g.Device + ")" }
	head, tail, _ := strings.Cut(g.Expect, ":")
	var want vakt.EventKind
	switch head {
	case "reject":
		sentinel := map[string]error{"malformed": drivers.ErrMalformed, "unknown": drivers.ErrUnknown, "oversize": drivers.ErrOversize}[tail]
		if sentinel == nil {
			t.Fatalf("line %d: unknown expectation %q", line, g.Expect)
		}
		if !errors.Is(err, sentinel) || res.Ignored || len(res.Events) > 0 {
			t.Errorf("line %d %s: %+v, %v; want %v", line, where(), res, err, sentinel)
		}
		return
	case "ignore":
		if err != nil || !res.Ignored || len(res.Events) > 0 {
			t.Errorf("line %d %s: %+v, %v; want ignored", line, where(), res, err)
		}
		return
	case "alarm":
		want = vakt.EventKind(tail)
	case "technical":
		want = vakt.EventKind(strings.ReplaceAll(tail, "_", "-"))
	case "checkin":
		want = vakt.EventCheckIn
	default:
		t.Fatalf("line %d: unknown expectation %q", line, g.Expect)
	}
	if err != nil {
		t.Errorf("line %d %s: %v", line, where(), err)
		return
	}
	var kinds []vakt.EventKind
	for _, ev := range res.Events {
		kinds = append(kinds, ev.Kind)
		if ev.Transmitter == "" || ev.Transmitter != res.Transmitter || string(ev.Raw) != g.Payload {
			t.Errorf("line %d %s: malformed event %+v", line, where(), ev)
		}
	}
	if !slices.Equal(kinds, []vakt.EventKind{want}) {
		t.Errorf("line %d %s: kinds %v, want [%s]", line, where(), kinds, want)
	}
}

// FuzzDialects feeds arbitrary messages to every dialect of every folder (each keeps
// its state across inputs, so odd sequences are covered too). Nothing may panic; a
// message is rejected with a sentinel, ignored, or yields well-formed events.
func FuzzDialects(f *testing.F) {
	var ds []drivers.Dialect
	for _, fo := range folders(f) {
		names := make([]string, 0, len(fo.dialects))
		for n := range fo.dialects {
			names = append(names, n)
		}
		slices.Sort(names)
		for _, n := range names {
			ds = append(ds, fo.dialect(f, n))
			for _, g := range fo.golden(f) {
				f.Add(uint8(len(ds)-1), g.Topic, []byte(g.Payload), false)
				f.Add(uint8(len(ds)-1), g.Topic, []byte(g.Payload), true)
			}
		}
	}
	f.Fuzz(func(t *testing.T, which uint8, topic string, payload []byte, retained bool) {
		res, err := ds[int(which)%len(ds)].Decode(topic, payload, retained)
		if err != nil {
			if !errors.Is(err, drivers.ErrMalformed) && !errors.Is(err, drivers.ErrUnknown) && !errors.Is(err, drivers.ErrOversize) {
				t.Fatalf("error %v is not a sentinel", err)
			}
			if len(res.Events) != 0 || res.Ignored {
				t.Fatalf("rejection with a result: %+v", res)
			}
			return
		}
		if res.Ignored {
			if len(res.Events) != 0 {
				t.Fatalf("ignored with events: %+v", res)
			}
			return
		}
		if len(res.Events) == 0 || res.Transmitter == "" {
			t.Fatalf("no events: %+v", res)
		}
		for _, ev := range res.Events {
			if ev.Transmitter != res.Transmitter || !drivers.ValidKind(ev.Kind) {
				t.Fatalf("bad event %+v", ev)
			}
			if retained && ev.Kind != vakt.EventCheckIn && ev.Kind != vakt.EventOffline {
				t.Fatalf("retained message raised %s", ev.Kind)
			}
			if ev.Battery != nil && (*ev.Battery < 0 || *ev.Battery > 100) {
				t.Fatalf("battery %d", *ev.Battery)
			}
		}
	})
}

// TestSamplesShowEveryKey: a driver's sample.yaml is its documentation; every key of
// its options (and of structs inside them) appears in the sample of a folder that
// uses the driver.
func TestSamplesShowEveryKey(t *testing.T) {
	texts := map[string]string{} // driver → its folders' samples
	for _, f := range folders(t) {
		data, err := os.ReadFile(filepath.Join(f.dir, "sample.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range f.used {
			texts[n] += string(data)
		}
	}
	for _, n := range drivers.Names() {
		fac, _ := drivers.Lookup(n)
		o := fac(drivers.Settings{}).Options()
		if o == nil {
			continue
		}
		for _, key := range yamlKeys(reflect.TypeOf(o)) {
			if !strings.Contains(texts[n], key+":") {
				t.Errorf("driver %s: option %s is not shown in its sample.yaml", n, key)
			}
		}
	}
}

func yamlKeys(t reflect.Type) []string {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
		if t.Kind() == reflect.Map {
			return nil
		}
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	var keys []string
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		keys = append(keys, name)
		keys = append(keys, yamlKeys(t.Field(i).Type)...)
	}
	return keys
}

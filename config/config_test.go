package config

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vakt/vakt/drivers"
	"github.com/vakt/vakt/drivers/jsonmap"
	"github.com/vakt/vakt/drivers/z2m"
)

var update = flag.Bool("update", false, "rewrite testdata/cases/*/want.txt with the current output")

// TestCases runs the golden cases: each directory under testdata/cases holds a
// config.yaml, the exact expected output in want.txt ("ok" or the error text), and
// optionally env.txt with NAME=value lines to set in the environment. Cases named
// check-* run through Check (what check-config runs), the others through Load.
// "{registered drivers}" stands for drivers.Names(), comma-separated.
func TestCases(t *testing.T) {
	dirs, err := filepath.Glob(filepath.Join("testdata", "cases", "*"))
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) == 0 {
		t.Fatal("no golden cases found")
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			setEnvFile(t, filepath.Join(dir, "env.txt"))
			path := filepath.Join(dir, "config.yaml")
			load := Load
			if strings.HasPrefix(filepath.Base(dir), "check-") {
				load = Check
			}
			cfg, err := load(path)
			got := "ok"
			if err != nil {
				// The list of drivers grows with every driver registered; the cases
				// name it, so that adding one changes no case.
				got = strings.ReplaceAll(err.Error(), strings.Join(drivers.Names(), ", "), "{registered drivers}")
				if cfg != nil {
					t.Errorf("Load returned a Config together with an error")
				}
				var errs Errors
				if !errors.As(err, &errs) || len(errs) == 0 {
					t.Errorf("error is %T, want non-empty config.Errors", err)
				}
			} else if cfg == nil {
				t.Fatal("Load returned neither a Config nor an error")
			}

			wantPath := filepath.Join(dir, "want.txt")
			if *update {
				if err := os.WriteFile(wantPath, []byte(got+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(wantPath)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if w := strings.TrimRight(string(want), "\n"); got != w {
				t.Errorf("output differs from %s\n--- got:\n%s\n--- want:\n%s", wantPath, got, w)
			}
		})
	}
}

func setEnvFile(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if name, value, ok := strings.Cut(sc.Text(), "="); ok {
			t.Setenv(name, value)
		}
	}
}

// TestGoldenCasesCoverEveryLine checks that no golden case with errors has an error
// without a line, except the few that cannot have one.
func TestErrorsHaveLines(t *testing.T) {
	noLine := map[string]bool{"empty-file": true}
	dirs, _ := filepath.Glob(filepath.Join("testdata", "cases", "*"))
	for _, dir := range dirs {
		setEnvFile(t, filepath.Join(dir, "env.txt"))
		_, err := Load(filepath.Join(dir, "config.yaml"))
		var errs Errors
		if !errors.As(err, &errs) || noLine[filepath.Base(dir)] {
			continue
		}
		for _, e := range errs {
			if e.Line == 0 {
				t.Errorf("%s: %q has no line", filepath.Base(dir), e.Error())
			}
			if e.File != filepath.Join(dir, "config.yaml") {
				t.Errorf("%s: File = %q", filepath.Base(dir), e.File)
			}
		}
	}
}

func TestDemoExample(t *testing.T) {
	cfg, err := Load(filepath.Join("examples", "demo.yaml"))
	if err != nil {
		t.Fatalf("demo.yaml: %v", err)
	}
	if !cfg.Site.Demo {
		t.Error("demo.yaml is not in demo mode")
	}
	if len(cfg.Zones) < 3 || len(cfg.Transmitters) < 10 || len(cfg.Staff) < 6 {
		t.Errorf("demo has %d zones, %d transmitters, %d staff; want 3+, 10+, 6+",
			len(cfg.Zones), len(cfg.Transmitters), len(cfg.Staff))
	}

	tr := transmitter(t, cfg, "room-101-sos")
	if tr.Kind != "sos-pendant" || tr.Driver != "zigbee2mqtt" || tr.Address != "room101/sos" ||
		tr.Room != "101" || tr.Zone != "east" || tr.Floor != 1 {
		t.Errorf("room-101-sos = %+v", tr)
	}
	if topic := cfg.Drivers.MQTT.BaseTopic + "/" + tr.Address; topic != "zigbee2mqtt/room101/sos" {
		t.Errorf("room-101-sos topic = %q", topic)
	}
	heiman := transmitter(t, cfg, "room-103-button")
	if o, ok := heiman.Options.(*z2m.Options); heiman.Address != "room103/button" || !ok || o.Actions["single"] != "call" ||
		o.Actions["hold"] != "emergency" || o.Actions["double"] != "assist" {
		t.Errorf("room-103-button = %+v", heiman)
	}
	var shelly *Transmitter
	for i := range cfg.Transmitters {
		if cfg.Transmitters[i].Address == "shellies/shellybutton1-A4CF12F45ABC/input_event/0" {
			shelly = &cfg.Transmitters[i]
		}
	}
	var m *jsonmap.Mapping
	if shelly != nil {
		if o, ok := shelly.Options.(*jsonmap.Options); ok {
			m = o.Mapping
		}
	}
	if shelly == nil || shelly.Driver != "mqtt" || m == nil || m.Field != "event" ||
		m.Values["S"] != "call" || m.Values["SS"] != "assist" || m.Values["L"] != "emergency" {
		t.Errorf("Shelly button = %+v", shelly)
	}
	for _, addr := range []string{"room102/sos", "room104/bed", "exit/door"} {
		found := false
		for _, tr := range cfg.Transmitters {
			found = found || tr.Address == addr && tr.Driver == "zigbee2mqtt"
		}
		if !found {
			t.Errorf("no zigbee2mqtt transmitter at %s", addr)
		}
	}
	if fb := transmitter(t, cfg, "nurse-call-unknown"); fb.Driver != "espa" || fb.Kind != "nurse-call-line" || fb.Address != "*" {
		t.Errorf("nurse-call-unknown = %+v", fb)
	}

	// nurse-1 must be the nearest to room 101 (great-circle distance plus the floor
	// penalty, as routing ranks), so the demo's first offer is predictable.
	nearest, best := "", math.Inf(1)
	for _, s := range cfg.Staff {
		if s.Secret.Value != "demo" || !s.OnDuty || s.Availability != "available" || s.Position == nil {
			t.Errorf("staff %s: want secret demo, on duty, available, with a position", s.ID)
			continue
		}
		d := distanceM(tr.Lat, tr.Lon, s.Position.Lat, s.Position.Lon) +
			math.Abs(float64(tr.Floor-s.Position.Floor))*cfg.Routing.FloorPenaltyM
		if d < best {
			nearest, best = s.ID, d
		}
	}
	if nearest != "nurse-1" || best < 3 || best > 7 {
		t.Errorf("nearest to room 101 is %s at %.1f m; want nurse-1 at about 5 m", nearest, best)
	}

	want := map[string]struct {
		kinds   string
		tiers   string
		realarm time.Duration
	}{
		"emergency": {"emergency,fall", "nearest/1/30s/busy zone/0/30s site/0/1m0s arc/0/0s", 3 * time.Minute},
		"call":      {"call,assist,sensor,door", "nearest/1/45s site/0/1m0s", 5 * time.Minute},
		"technical": {"low-battery,tamper,offline", "role/0/10m0s", 0},
	}
	for _, p := range cfg.Policies {
		w, ok := want[p.Name]
		if !ok {
			t.Errorf("unexpected policy %q", p.Name)
			continue
		}
		delete(want, p.Name)
		var tiers []string
		for _, tier := range p.Tiers {
			s := fmt.Sprintf("%s/%d/%s", tier.Target, tier.Count, tier.Wait)
			if tier.IncludeBusy {
				s += "/busy"
			}
			tiers = append(tiers, s)
		}
		if got := strings.Join(p.Kinds, ","); got != w.kinds {
			t.Errorf("policy %s kinds = %s, want %s", p.Name, got, w.kinds)
		}
		if got := strings.Join(tiers, " "); got != w.tiers {
			t.Errorf("policy %s tiers = %s, want %s", p.Name, got, w.tiers)
		}
		if p.ReAlarmAfter.D() != w.realarm {
			t.Errorf("policy %s realarm_after = %s", p.Name, p.ReAlarmAfter)
		}
	}
	if len(want) > 0 {
		t.Errorf("missing policies: %v", want)
	}

	d := cfg.Drivers
	if !d.Broker.Enabled || d.Broker.Listen != "127.0.0.1:1883" || !d.MQTT.Enabled ||
		d.MQTT.URL != "" /* read in-process */ || d.MQTT.ClientID != "vakt-solbakken-demo" || len(d.Serial) != 0 {
		t.Errorf("drivers = %+v", d)
	}
	if cfg.API.Listen != "127.0.0.1:8080" || filepath.Base(cfg.Storage.Path) != "vakt.db" ||
		!cfg.Privacy.NearestRouting || cfg.Privacy.PositionTTL.D() != 15*time.Minute {
		t.Errorf("api/storage/privacy = %+v %+v %+v", cfg.API, cfg.Storage, cfg.Privacy)
	}
}

func transmitter(t *testing.T, cfg *Config, id string) *Transmitter {
	t.Helper()
	for i := range cfg.Transmitters {
		if cfg.Transmitters[i].ID == id {
			return &cfg.Transmitters[i]
		}
	}
	t.Fatalf("no transmitter %s", id)
	return nil
}

// distanceM is the haversine distance; routing uses golang-geo, which config must not import.
func distanceM(lat1, lon1, lat2, lon2 float64) float64 {
	const r = 6371e3
	rad := math.Pi / 180
	dlat, dlon := (lat2-lat1)*rad, (lon2-lon1)*rad
	a := math.Sin(dlat/2)*math.Sin(dlat/2) + math.Cos(lat1*rad)*math.Cos(lat2*rad)*math.Sin(dlon/2)*math.Sin(dlon/2)
	return 2 * r * math.Asin(math.Sqrt(a))
}

// TestDemoOutsideDemoMode: the demo file with demo mode turned off is refused for
// its sample secrets, one error per staff member, naming the key.
func TestDemoOutsideDemoMode(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("examples", "demo.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	data = bytes.Replace(data, []byte("\n  demo: true\n"), []byte("\n  demo: false\n"), 1)
	_, err = Parse(data, "demo.yaml")
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("err = %v, want Errors", err)
	}
	secrets := 0
	for _, e := range errs {
		if strings.HasSuffix(e.Path, ".secret") && strings.Contains(e.Msg, "sample secret") {
			secrets++
		}
	}
	if secrets != 7 {
		t.Errorf("%d sample-secret errors, want 7:\n%v", secrets, err)
	}
}

func TestSiteExample(t *testing.T) {
	creds := t.TempDir()
	writeSecret(t, filepath.Join(creds, "mqtt-password"), "q9-Zr4-mqtt-LIVE\n", 0o400)
	t.Setenv("CREDENTIALS_DIRECTORY", creds)
	t.Setenv("VAKT_TECH_SECRET", "tech-Qv83-LIVE")

	// As shipped, the example's hashes are refused: they are printed for all to see.
	_, err := Load(filepath.Join("examples", "site.yaml"))
	want := "staff[0].secret_hash: this hash is printed in Vakt's documentation or examples"
	if err == nil || !strings.HasPrefix(err.Error(), want) || strings.Count(err.Error(), "\n") != 1 ||
		!strings.Contains(err.Error(), "staff[1].secret_hash: this hash is printed") {
		t.Fatalf("site.yaml as shipped: %v\nwant exactly its two printed hashes refused", err)
	}
	// With the site's own hashes, it loads.
	data, err := os.ReadFile(filepath.Join("examples", "site.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for h := range printedHashes {
		data = bytes.ReplaceAll(data, []byte(h), []byte(testHash))
	}
	site := filepath.Join(t.TempDir(), "site.yaml")
	if err := os.WriteFile(site, data, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(site)
	if err != nil {
		t.Fatalf("site.yaml: %v", err)
	}
	if cfg.Site.Demo {
		t.Error("site.yaml must not be in demo mode")
	}
	if got := cfg.Drivers.MQTT.Password; got.Value != "q9-Zr4-mqtt-LIVE" || !strings.HasPrefix(got.From, "file ") {
		t.Errorf("mqtt password = %q from %q", got.Value, got.From)
	}
	if got := cfg.Staff[2].Secret; got.Value != "tech-Qv83-LIVE" || got.From != "environment variable VAKT_TECH_SECRET" {
		t.Errorf("staff secret = %q from %q", got.Value, got.From)
	}
	if len(cfg.Drivers.Serial) != 1 {
		t.Fatalf("serial ports = %d", len(cfg.Drivers.Serial))
	}
	s := cfg.Drivers.Serial[0]
	if r := s.Rules[0]; r.CallAddress != "550" || r.Text != `ROOM (\d+)` || r.Transmitter != "room-$1" {
		t.Errorf("rule = %+v", r)
	}
	if cfg.API.TLSCert == "" || cfg.API.TLSKey == "" || cfg.Drivers.MQTT.CAFile == "" {
		t.Errorf("TLS settings missing: %+v %+v", cfg.API, cfg.Drivers.MQTT)
	}

	// Without the environment, every missing variable is named.
	os.Unsetenv("VAKT_TECH_SECRET")
	os.Unsetenv("CREDENTIALS_DIRECTORY")
	_, err = Load(site)
	if err == nil || !strings.Contains(err.Error(), "VAKT_TECH_SECRET") || !strings.Contains(err.Error(), "CREDENTIALS_DIRECTORY") {
		t.Errorf("without env: %v", err)
	}
}

func writeSecret(t *testing.T, path, value string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(value), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // umask may have narrowed it
		t.Fatal(err)
	}
}

const secretFileConfig = `site:
  id: test-site
staff:
  - id: nurse-1
    secret: "file:%s"
`

func TestSecretFile(t *testing.T) {
	dir := t.TempDir()
	const value = "Zq7-file-Secret-9x"
	tests := []struct {
		name    string
		content string
		mode    os.FileMode
		ref     string // the file: path; "" means the file written
		want    string // substring of the error, or "" for success
	}{
		{"0600", value + "\n", 0o600, "", ""},
		{"0400 CRLF", value + "\r\n", 0o400, "", ""},
		{"0644", value, 0o644, "", "staff[0].secret: secret file %s has mode 0644, so other users can read it; run: chmod 600 %s (line 5)"},
		{"0640", value, 0o640, "", "has mode 0640"},
		{"0604", value, 0o604, "", "has mode 0604"},
		{"empty", "\n", 0o600, "", "secret file %s is empty"},
		{"missing", "", 0, filepath.Join(dir, "nope"), "staff[0].secret: cannot read secret file: stat %s: no such file or directory"},
		{"directory", "", 0, dir, "is not a regular file"},
		{"too large", strings.Repeat("x", maxSecretFile+1), 0o600, "", "larger than 64 KiB"},
		{"no path", "", 0, "-", "file: needs a path"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := tt.ref
			if path == "" {
				path = filepath.Join(dir, fmt.Sprintf("secret-%d", i))
				writeSecret(t, path, tt.content, tt.mode)
			}
			if path == "-" {
				path = ""
			}
			cfg, err := Parse(fmt.Appendf(nil, secretFileConfig, path), "test.yaml")
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if got := cfg.Staff[0].Secret; got.Value != value || got.From != "file "+path {
					t.Errorf("secret = %q from %q", got.Value, got.From)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			want := strings.ReplaceAll(tt.want, "%s", path)
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error:\n%v\nwant it to contain:\n%s", err, want)
			}
			if strings.Contains(err.Error(), value) {
				t.Errorf("error reveals the secret: %v", err)
			}
		})
	}
}

func TestSecretFileRelative(t *testing.T) {
	dir := t.TempDir()
	writeSecret(t, filepath.Join(dir, "nurse-1.secret"), "rel-Secret-42\n", 0o600)
	path := filepath.Join(dir, "vakt.yaml")
	if err := os.WriteFile(path, fmt.Appendf(nil, secretFileConfig, "nurse-1.secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Staff[0].Secret.Value; got != "rel-Secret-42" {
		t.Errorf("secret = %q", got)
	}
}

func TestSecretEnv(t *testing.T) {
	const cfgText = "site: {id: s}\nstaff:\n  - id: nurse-1\n    secret: ${VAKT_TEST_NURSE_SECRET}\n"
	t.Run("set", func(t *testing.T) {
		t.Setenv("VAKT_TEST_NURSE_SECRET", "env-Secret-77")
		cfg, err := Parse([]byte(cfgText), "")
		if err != nil {
			t.Fatal(err)
		}
		if s := cfg.Staff[0].Secret; s.Value != "env-Secret-77" || s.From != "environment variable VAKT_TEST_NURSE_SECRET" {
			t.Errorf("secret = %q from %q", s.Value, s.From)
		}
	})
	t.Run("empty", func(t *testing.T) {
		t.Setenv("VAKT_TEST_NURSE_SECRET", "")
		_, err := Parse([]byte(cfgText), "")
		if want := "staff[0].secret: environment variable VAKT_TEST_NURSE_SECRET is empty (line 4)"; err == nil || err.Error() != want {
			t.Errorf("err = %v, want %s", err, want)
		}
	})
	t.Run("unset", func(t *testing.T) {
		_, err := Parse([]byte(cfgText), "")
		if want := "staff[0].secret: environment variable VAKT_TEST_NURSE_SECRET is not set (line 4)"; err == nil || err.Error() != want {
			t.Errorf("err = %v, want %s", err, want)
		}
	})
	t.Run("sample from env", func(t *testing.T) {
		t.Setenv("VAKT_TEST_NURSE_SECRET", "changeme")
		_, err := Parse([]byte(cfgText), "")
		want := "staff[0].secret: a sample secret (read from the environment variable VAKT_TEST_NURSE_SECRET) is refused outside demo mode; set a real one (line 4)"
		if err == nil || err.Error() != want {
			t.Errorf("err = %v, want %s", err, want)
		}
	})
}

// TestSecretsNeverShown: secret values appear in no error and no printed or encoded
// form of a Config.
func TestSecretsNeverShown(t *testing.T) {
	dir := t.TempDir()
	const (
		inline = "Inline-XYZZY-1"
		env    = "Env-XYZZY-2"
		file   = "File-XYZZY-3"
	)
	writeSecret(t, filepath.Join(dir, "mqtt"), file, 0o600)
	t.Setenv("VAKT_TEST_SECRET", env)
	good := fmt.Sprintf(`site: {id: s}
staff:
  - {id: nurse-1, secret: %s}
  - {id: nurse-2, secret: "${VAKT_TEST_SECRET}"}
drivers:
  mqtt: {enabled: true, url: "tcp://127.0.0.1:1883", username: u, password: "file:%s"}
`, inline, filepath.Join(dir, "mqtt"))
	cfg, err := Parse([]byte(good), "")
	if err != nil {
		t.Fatal(err)
	}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("config", "cfg", cfg, "secret", cfg.Staff[0].Secret)
	slog.New(slog.NewTextHandler(&logged, nil)).Info("config", "cfg", cfg, "secret", cfg.Staff[0].Secret)
	js, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	shown := map[string]string{
		"%v":   fmt.Sprintf("%v", cfg),
		"%+v":  fmt.Sprintf("%+v", cfg),
		"%#v":  fmt.Sprintf("%#v", cfg),
		"%s":   fmt.Sprintf("%s", cfg.Drivers.MQTT.Password),
		"json": string(js),
		"slog": logged.String(),
	}
	for how, text := range shown {
		for _, secret := range []string{inline, env, file} {
			if strings.Contains(text, secret) {
				t.Errorf("%s shows secret %s:\n%s", how, secret, text)
			}
		}
	}

	// The same secrets, in places where they cause errors.
	bad := fmt.Sprintf(`site: {id: s}
staff:
  - {id: nurse-1, secret: %[1]s, secret_hash: x}
  - {id: nurse-2, secret: "${VAKT_TEST_SECRET}", zone: nowhere, roles: [ghost]}
  - {id: nurse-3, secret: [%[1]s]}
  - {id: nurse-4, secret: {%[1]s: %[1]s}}
drivers:
  mqtt: {enabled: true, url: "tcp://127.0.0.1:1883", password: "file:%[2]s", max_payload: -1}
  broker: {enabled: true, clients: [{username: a, password: "${VAKT_TEST_SECRET}", publish: ["#/x"]}]}
`, inline, filepath.Join(dir, "mqtt"))
	_, err = Parse([]byte(bad), "")
	if err == nil {
		t.Fatal("no error")
	}
	if n := len(err.(Errors)); n < 6 {
		t.Errorf("only %d errors:\n%v", n, err)
	}
	for _, secret := range []string{inline, env, file} {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error shows secret %s:\n%v", secret, err)
		}
	}
}

func TestDefaults(t *testing.T) {
	cfg, err := Parse([]byte(`site: {id: home}
zones: [{id: east}]
transmitters: [{id: fb, kind: nurse-call-line, driver: espa, address: "*", zone: east}]
policies: [{name: p, tiers: [{target: nearest, wait: 30s}, {target: site, wait: 1m}]}]
drivers:
  broker: {enabled: true, clients: [{username: gw, password: Kq3-88-xP}]}
  mqtt: {enabled: true}
  serial: [{device: /dev/ttyUSB0, fallback: fb}]
`), "")
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.Drivers.Serial[0]
	got := map[string]any{
		"api.listen":              cfg.API.Listen,
		"api.session_ttl":         cfg.API.SessionTTL.D(),
		"storage.path":            cfg.Storage.Path,
		"routing.offer_confirm":   cfg.Routing.OfferConfirm.D(),
		"routing.floor_penalty_m": cfg.Routing.FloorPenaltyM,
		"privacy.position_ttl":    cfg.Privacy.PositionTTL.D(),
		"privacy.visit_notes":     strings.Join(cfg.Privacy.VisitNotes, "|"),
		"mqtt.client_id":          cfg.Drivers.MQTT.ClientID,
		"mqtt.base_topic":         cfg.Drivers.MQTT.BaseTopic,
		"mqtt.max_payload":        cfg.Drivers.MQTT.MaxPayload,
		"mqtt.url":                cfg.Drivers.MQTT.URL,
		"broker.listen":           cfg.Drivers.Broker.Listen,
		"serial.name":             s.Name,
		"serial.baud":             s.Baud,
		"serial.data_bits":        s.DataBits,
		"serial.parity":           s.Parity,
		"serial.stop_bits":        s.StopBits,
		"serial.role":             s.Role,
		"serial.address":          s.Address,
		"serial.peer":             s.Peer,
		"serial.guard_time":       s.GuardTime.D(),
		"tier.count nearest":      cfg.Policies[0].Tiers[0].Count,
		"tier.count site":         cfg.Policies[0].Tiers[1].Count,
	}
	want := map[string]any{
		"api.listen":              "127.0.0.1:8080",
		"api.session_ttl":         12 * time.Hour,
		"storage.path":            "data/vakt.db",
		"routing.offer_confirm":   10 * time.Second,
		"routing.floor_penalty_m": 30.0,
		"privacy.position_ttl":    15 * time.Minute,
		"privacy.visit_notes":     "assisted|false alarm|no help needed|round|done",
		"mqtt.client_id":          "vakt-home",
		"mqtt.base_topic":         "zigbee2mqtt",
		"mqtt.max_payload":        4096,
		"mqtt.url":                "", // read in-process: the embedded broker is on
		"broker.listen":           "127.0.0.1:1883",
		"serial.name":             "/dev/ttyUSB0",
		"serial.baud":             9600,
		"serial.data_bits":        7,
		"serial.parity":           "even",
		"serial.stop_bits":        2,
		"serial.role":             "slave",
		"serial.address":          "2",
		"serial.peer":             "1",
		"serial.guard_time":       50 * time.Millisecond,
		"tier.count nearest":      1,
		"tier.count site":         0,
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s = %v, want %v", k, got[k], w)
		}
	}

	// Explicit values win over defaults, including 0 where 0 is valid.
	cfg, err = Parse([]byte("site: {id: home}\nrouting: {floor_penalty_m: 0, offer_confirm: 3s}\n"), "")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Routing.FloorPenaltyM != 0 || cfg.Routing.OfferConfirm.D() != 3*time.Second {
		t.Errorf("routing = %+v", cfg.Routing)
	}
}

// TestValidateInCode: a Config built in code gets the same checks, without lines.
func TestValidateInCode(t *testing.T) {
	cfg := &Config{
		Site:  Site{ID: "s"},
		Zones: []Zone{{ID: "east"}},
		Transmitters: []Transmitter{
			{ID: "t1", Kind: "button", Driver: "espa", Address: "1", Zone: "west"},
		},
		Policies: []Policy{{Name: "p", Tiers: []Tier{{Target: "nearest", Wait: Duration(-time.Second)}}}},
		Routing:  Routing{FloorPenaltyM: math.NaN()},
	}
	cfg.ApplyDefaults()
	if cfg.API.Listen != DefaultAPIListen || cfg.Policies[0].Tiers[0].Count != 1 {
		t.Errorf("ApplyDefaults did not fill defaults: %+v", cfg.API)
	}
	err := cfg.Validate()
	want := `transmitters[0].zone: unknown zone "west"; defined zones: east
policies[0].tiers[0].wait: must be set and longer than 0, e.g. "30s"
routing.floor_penalty_m: must be 0 or more metres`
	if err == nil || err.Error() != want {
		t.Errorf("Validate() =\n%v\nwant\n%s", err, want)
	}

	cfg.Transmitters[0].Zone = "east"
	cfg.Policies[0].Tiers[0].Wait = Duration(time.Second)
	cfg.Routing.FloorPenaltyM = 30
	if err := cfg.Validate(); err != nil {
		t.Errorf("Validate() = %v", err)
	}
}

func TestErrorsAs(t *testing.T) {
	_, err := Parse([]byte("site: {id: s}\nzones:\n  - id: east\n  - id: east\n"), "x.yaml")
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("errors.As(*Error) failed on %v", err)
	}
	if e.Path != "zones[1].id" || e.Line != 4 || e.File != "x.yaml" {
		t.Errorf("error = %+v", e)
	}
}

func TestDurationText(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"30s": 30 * time.Second, "2m": 2 * time.Minute, "25h": 25 * time.Hour,
		"1h30m": 90 * time.Minute, "0": 0, " 10s ": 10 * time.Second, "1.5s": 1500 * time.Millisecond,
	} {
		var d Duration
		if err := d.UnmarshalText([]byte(in)); err != nil || d.D() != want {
			t.Errorf("UnmarshalText(%q) = %v, %v; want %v", in, d, err, want)
		}
		if out, _ := d.MarshalText(); string(out) != want.String() {
			t.Errorf("MarshalText(%v) = %s", d, out)
		}
	}
	for _, in := range []string{"30 seconds", "30", "1d", "", "-5m", "s"} {
		var d Duration
		if err := d.UnmarshalText([]byte(in)); err == nil {
			t.Errorf("UnmarshalText(%q) = %v, want an error", in, d)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	if _, err := Load(filepath.Join(t.TempDir(), "missing.yaml")); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	big := filepath.Join(t.TempDir(), "big.yaml")
	if err := os.WriteFile(big, bytes.Repeat([]byte("# padding\n"), MaxSize/10+1), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(big); err == nil || !strings.Contains(err.Error(), "larger than 4 MiB") {
		t.Errorf("big file: %v", err)
	}
}

// TestAliasBomb: merge keys that expand to merge keys ("billion laughs") are cut
// off by the decoder's budget instead of running for ever.
func TestAliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString("site: {id: s}\nm0: &m0 {floor: 1}\n")
	for i := 1; i <= 9; i++ {
		p := fmt.Sprintf("*m%d", i-1)
		fmt.Fprintf(&b, "m%d: &m%d {<<: [%s]}\n", i, i, strings.TrimSuffix(strings.Repeat(p+", ", 10), ", "))
	}
	b.WriteString("zones: [{<<: *m9, id: east}]\n")
	_, err := Parse([]byte(b.String()), "")
	if err == nil || !strings.Contains(err.Error(), "expands to more than") {
		t.Errorf("err = %v", err)
	}

	_, err = Parse([]byte("site: {id: s}\nzones:\n  - &z\n    id: east\n    <<: *z\n"), "")
	t.Logf("self merge: %v", err)
}

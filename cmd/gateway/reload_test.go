package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	vakt "github.com/vakt/vakt"
	"github.com/vakt/vakt/config"
	"github.com/vakt/vakt/engine"
	"github.com/vakt/vakt/internal/fakeclock"
)

// Issue 10: "Reload: good change applied, bad change refused with its errors, open
// alarms and sessions untouched."

// siteFile is a small demo-mode site, written so a test can change one thing at a
// time and reload.
type siteFile struct {
	path                string
	apiPort, brokerPort int
	db                  string
	// extraStaff and extraTransmitters are YAML list entries added as written.
	extraStaff, extraTransmitters []string
	wait                          string // each tier's wait [1m]
	sessionTTL                    string // api.session_ttl [12h]
	logLevel                      string // log.level ["" = the flag's]
	external                      bool   // an external broker (Mosquitto) on brokerPort
	raw                           string // when set, written instead (a broken file)
}

func newSiteFile(t testing.TB) *siteFile {
	dir := t.TempDir()
	f := &siteFile{path: filepath.Join(dir, "gateway.yaml"), apiPort: freePort(t), brokerPort: freePort(t),
		db: filepath.Join(dir, "vakt.db"), wait: "1m", sessionTTL: "12h"}
	f.write(t)
	return f
}

func (f *siteFile) write(t testing.TB) {
	t.Helper()
	body := f.raw
	if body == "" {
		var b strings.Builder
		fmt.Fprintf(&b, `site: {id: reload-site, name: Reload site, demo: true, lat: 59.9139, lon: 10.7522}
zones: [{id: east, name: East wing, floor: 1}]
roles: [nurse]
transmitters:
  - {id: room-101-sos, kind: sos-pendant, driver: zigbee2mqtt, address: room101/sos, room: "101", zone: east, floor: 1}
  - {id: room-103-sos, kind: sos-pendant, driver: zigbee2mqtt, address: room103/sos, room: "103", zone: east, floor: 1}
`)
		for _, x := range f.extraTransmitters {
			fmt.Fprintf(&b, "  - %s\n", x)
		}
		b.WriteString("staff:\n  - {id: nurse-1, name: Nurse One, roles: [nurse], zone: east, secret: demo, on_duty: true}\n")
		for _, x := range f.extraStaff {
			fmt.Fprintf(&b, "  - %s\n", x)
		}
		fmt.Fprintf(&b, `policies:
  - name: everyone
    tiers: [{target: site, wait: %s}, {target: site, wait: %s}]
drivers:
%s
api: {listen: "127.0.0.1:%d", session_ttl: %s}
storage: {path: %q}
`, f.wait, f.wait, f.drivers(), f.apiPort, f.sessionTTL, f.db)
		if f.logLevel != "" {
			fmt.Fprintf(&b, "log: {level: %s}\n", f.logLevel)
		}
		body = b.String()
	}
	// Written beside and renamed over, as an editor or a deployment does: a reload
	// never reads half a file.
	tmp := f.path + ".new"
	if err := os.WriteFile(tmp, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, f.path); err != nil {
		t.Fatal(err)
	}
}

func (f *siteFile) drivers() string {
	if f.external {
		return fmt.Sprintf("  mqtt: {enabled: true, base_topic: zigbee2mqtt, url: \"tcp://127.0.0.1:%d\"}", f.brokerPort)
	}
	return fmt.Sprintf("  broker: {enabled: true, listen: \"127.0.0.1:%d\"}\n  mqtt: {enabled: true, base_topic: zigbee2mqtt}", f.brokerPort)
}

const (
	nurse2   = "{id: nurse-2, name: Nurse Two, roles: [nurse], zone: east, secret: demo, on_duty: true}"
	room102  = `{id: room-102-sos, kind: sos-pendant, driver: zigbee2mqtt, address: room102/sos, room: "102", zone: east, floor: 1}`
	sosPress = `{"action":"emergency","battery":97}`
)

// auditActions returns "action subject" of every audit entry.
func auditActions(t *testing.T, m *Main) []string {
	t.Helper()
	entries, err := m.DB.AuditRange(context.Background(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Action+" "+e.Subject)
	}
	return out
}

// confirmed holds for alarm id once offered and every offer is confirmed delivered:
// its deadline is then the tier's end, not a delivery confirmation's.
func confirmed(id string) func(vakt.Alarm) bool {
	return func(a vakt.Alarm) bool {
		if string(a.ID) != id || len(a.Offers) == 0 {
			return false
		}
		for _, o := range a.Offers {
			if o.Status == vakt.OfferPending {
				return false
			}
		}
		return true
	}
}

func hasEntry(list []string, prefix string) bool {
	return slices.ContainsFunc(list, func(s string) bool { return strings.HasPrefix(s, prefix) })
}

// TestReloadAppliesLiveChanges: a staff member, a transmitter and longer tier waits
// are added to the file of a running gateway with an alarm open and a phone
// connected. After the reload the new nurse logs in and gets offers, the new
// transmitter's press raises an alarm showing its room, a new alarm waits the new
// tier time while the open one keeps its deadline and goes on under the same id,
// the first nurse's token and WebSocket still work, a restart-only change is named
// and not applied, the log level follows log.level, and the reload is audited.
func TestReloadAppliesLiveChanges(t *testing.T) {
	f := newSiteFile(t)
	clock := fakeclock.New(time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC))
	watch := newAlarmWatch()
	logs := &lockedBuffer{}
	m := &Main{ConfigPath: f.path, Log: logs, Clock: clock, Observers: []vakt.Observer{watch}}
	c := runMain(t, m)

	tok1 := c.login("nurse-1", "demo")
	phone1 := c.phone("nurse-1", tok1)
	press(t, f.brokerPort, "zigbee2mqtt/room101/sos", sosPress)
	first := phone1.expect("offer").Alarm
	a1 := watch.until(t, "the first alarm's offer delivered", confirmed(first.ID))
	if want := clock.Now().Add(time.Minute); !a1.Deadline.Equal(want) {
		t.Fatalf("first alarm's deadline %v, want %v (tier wait 1m)", a1.Deadline, want)
	}
	if code, _ := c.do("POST", "/api/v1/sessions", "", map[string]string{"staff_id": "nurse-2", "secret": "demo"}); code == http.StatusCreated {
		t.Fatal("nurse-2 logged in before being added to the file")
	}

	f.extraStaff = []string{nurse2}
	f.extraTransmitters = []string{room102}
	f.wait = "5m"
	f.sessionTTL = "8h" // api.* needs a restart
	f.logLevel = "debug"
	f.write(t)
	ch, err := m.Reload(context.Background())
	if err != nil {
		t.Fatalf("reload: %v", err)
	}
	if !slices.Equal(ch.StaffAdded, []vakt.StaffID{"nurse-2"}) || !slices.Equal(ch.TransmittersAdded, []vakt.TransmitterID{"room-102-sos"}) ||
		!ch.Policies || !slices.Equal(ch.Restart, []string{"api.session_ttl"}) || len(ch.StaffChanged) != 0 {
		t.Fatalf("reload changed %+v (%s)", ch, ch.Summary())
	}

	// The new nurse logs in; the new transmitter raises an alarm with its room,
	// offered to both, on nurse-1's WebSocket from before the reload too.
	tok2 := c.login("nurse-2", "demo")
	phone2 := c.phone("nurse-2", tok2)
	settle(t, m)
	raised := clock.Now()
	press(t, f.brokerPort, "zigbee2mqtt/room102/sos", sosPress)
	o2 := phone2.expect("offer").Alarm
	if o2.Transmitter.ID != "room-102-sos" || o2.Transmitter.Room != "102" {
		t.Fatalf("offer to nurse-2 = %+v, want room 102's alarm", *o2)
	}
	if o := phone1.expect("offer").Alarm; o.ID != o2.ID {
		t.Fatalf("nurse-1 offered %s, want %s", o.ID, o2.ID)
	}
	a2 := watch.until(t, "the new alarm's offers delivered", confirmed(o2.ID))
	if want := raised.Add(5 * time.Minute); !a2.Deadline.Equal(want) {
		t.Fatalf("new alarm's deadline %v, want %v (the new tier wait 5m)", a2.Deadline, want)
	}

	// The open alarm kept its deadline: at 1m it is decided again, under the same
	// id, by the policy as the file now says (tier 1 lasts 5m), which offers it to
	// the new nurse too.
	settle(t, m)
	clock.Advance(time.Minute)
	if got := phone2.expect("offer").Alarm; got.ID != first.ID || got.Tier != 1 {
		t.Fatalf("after 1m nurse-2 offered %+v, want alarm %s, still tier 1", *got, first.ID)
	}
	a1 = watch.until(t, "the first alarm's new offer delivered", confirmed(first.ID))
	if want := a1.TierStartedAt.Add(5 * time.Minute); !a1.Deadline.Equal(want) {
		t.Fatalf("open alarm's deadline after its next decision %v, want %v (tier start + the new 5m)", a1.Deadline, want)
	}
	code, body := c.do("GET", "/api/v1/alarms", tok1, nil)
	if code != http.StatusOK || !strings.Contains(string(body), `"id":"`+first.ID+`"`) {
		t.Fatalf("nurse-1's token from before the reload: GET /alarms %d %s", code, body)
	}
	if code, body := c.do("POST", "/api/v1/alarms/"+first.ID+"/accept", tok1, nil); code != http.StatusOK {
		t.Fatalf("nurse-1 accepts the alarm from before the reload: %d %s", code, body)
	}
	if taken := phone2.expect("taken"); taken.AlarmID != first.ID {
		t.Fatalf("nurse-2 got %+v", taken)
	}

	if got := m.rl.level.Level(); got != slog.LevelDebug {
		t.Fatalf("log level %v after log.level: debug", got)
	}
	log := logs.String()
	for _, want := range []string{`"msg":"configuration change needs a restart; not applied","key":"api.session_ttl"`, `"msg":"configuration reloaded"`} {
		if !strings.Contains(log, want) {
			t.Fatalf("log lacks %s:\n%s", want, log)
		}
	}
	audit := auditActions(t, m)
	raw, _ := os.ReadFile(f.path)
	sum := sha256.Sum256(raw)
	for _, want := range []string{
		"config.reloaded config:sha256:" + hex.EncodeToString(sum[:8]) + " staff+=nurse-2 transmitters+=room-102-sos policies restart=api.session_ttl",
		"config.needs-restart config:api.session_ttl",
	} {
		if !slices.Contains(audit, want) {
			t.Fatalf("audit lacks %q: %q", want, audit)
		}
	}

	// A reload of the same file changes nothing and logs nobody out (a plain
	// secret keeps its hash).
	if ch, err := m.Reload(context.Background()); err != nil || ch.Summary() != "restart=api.session_ttl" {
		t.Fatalf("second reload: %s, %v", ch.Summary(), err)
	}
	if code, body := c.do("GET", "/api/v1/alarms", tok2, nil); code != http.StatusOK {
		t.Fatalf("nurse-2's token after a reload of the same file: %d %s", code, body)
	}
	phone1.none("revoked")
}

// TestReloadRefusesBadFile: a file with errors is refused, each error logged with
// its key and line; the running configuration stays (its transmitters still route
// to its staff, the refused file's nurse cannot log in), the open alarm and the
// session are untouched, and the refusal is audited.
func TestReloadRefusesBadFile(t *testing.T) {
	f := newSiteFile(t)
	clock := fakeclock.New(time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC))
	watch := newAlarmWatch()
	logs := &lockedBuffer{}
	m := &Main{ConfigPath: f.path, Log: logs, Clock: clock, Observers: []vakt.Observer{watch}}
	c := runMain(t, m)
	tok1 := c.login("nurse-1", "demo")
	phone1 := c.phone("nurse-1", tok1)
	press(t, f.brokerPort, "zigbee2mqtt/room101/sos", sosPress)
	first := phone1.expect("offer").Alarm

	// Two errors: a zone nobody defined, a wait that is no duration.
	f.extraStaff = []string{strings.Replace(nurse2, "zone: east", "zone: south", 1)}
	f.wait = "soon"
	f.write(t)
	_, err := m.Reload(context.Background())
	var errs config.Errors
	if !errors.As(err, &errs) || len(errs) < 2 {
		t.Fatalf("reload of a bad file: %v, want its config errors", err)
	}
	log := logs.String()
	for _, e := range errs {
		want := fmt.Sprintf(`"msg":"configuration reload refused","key":%q,"line":%d`, e.Path, e.Line)
		if e.Line == 0 || !strings.Contains(log, want) {
			t.Fatalf("log lacks %s:\n%s", want, log)
		}
	}

	// The old configuration still routes: another room's press reaches nurse-1.
	press(t, f.brokerPort, "zigbee2mqtt/room103/sos", sosPress)
	if o := phone1.expect("offer").Alarm; o.Transmitter.Room != "103" || o.ID == first.ID {
		t.Fatalf("after the refused reload nurse-1 offered %+v, want room 103's new alarm", *o)
	}
	if code, _ := c.do("POST", "/api/v1/sessions", "", map[string]string{"staff_id": "nurse-2", "secret": "demo"}); code == http.StatusCreated {
		t.Fatal("nurse-2 of the refused file logged in")
	}
	code, body := c.do("GET", "/api/v1/alarms", tok1, nil)
	if code != http.StatusOK || !strings.Contains(string(body), `"id":"`+first.ID+`"`) {
		t.Fatalf("after the refused reload: GET /alarms %d %s", code, body)
	}
	audit := auditActions(t, m)
	if !hasEntry(audit, "config.reload_refused config:sha256:") || !slices.ContainsFunc(audit, func(s string) bool {
		return strings.Contains(s, " errors=staff[1].zone@") && strings.HasPrefix(s, "config.reload_refused")
	}) || hasEntry(audit, "config.reloaded") {
		t.Fatalf("audit after a refused reload: %q", audit)
	}
}

// TestReloadKeepsDirectoryRules: a person taken out of the file keeps their entry
// (as after a restart) and may then be erased; a reload of the same file does not
// bring them back; a person in the file still cannot be erased.
func TestReloadKeepsDirectoryRules(t *testing.T) {
	f := newSiteFile(t)
	f.extraStaff = []string{nurse2}
	f.write(t)
	m := &Main{ConfigPath: f.path, Log: &lockedBuffer{}, Clock: fakeclock.New(time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC))}
	c := runMain(t, m)
	ctx := context.Background()
	if _, err := m.Engine.EraseStaff(ctx, "technician", "nurse-2"); !errors.Is(err, engine.ErrConfigStaff) {
		t.Fatalf("erase a person of the file: %v, want ErrConfigStaff", err)
	}
	f.extraStaff = nil
	f.write(t)
	ch, err := m.Reload(ctx)
	if err != nil || !slices.Equal(ch.StaffUnlisted, []vakt.StaffID{"nurse-2"}) {
		t.Fatalf("reload without nurse-2: %+v, %v", ch, err)
	}
	if _, err := m.Engine.EraseStaff(ctx, "technician", "nurse-2"); err != nil {
		t.Fatalf("erase after the reload took them out of the file: %v", err)
	}
	if ch, err := m.Reload(ctx); err != nil || len(ch.StaffAdded)+len(ch.StaffChanged) != 0 {
		t.Fatalf("reload after the erasure: %+v, %v", ch, err)
	}
	if code, _ := c.do("POST", "/api/v1/sessions", "", map[string]string{"staff_id": "nurse-2", "secret": "demo"}); code == http.StatusCreated {
		t.Fatal("the erased nurse logged in after a reload")
	}
	if _, err := m.Engine.EraseStaff(ctx, "technician", "nurse-1"); !errors.Is(err, engine.ErrConfigStaff) {
		t.Fatalf("erase nurse-1 (still in the file): %v, want ErrConfigStaff", err)
	}
}

// TestReloadOnSIGHUP is the real thing: a gateway process gets SIGHUP, as from
// systemd's ExecReload; a good file applies (the new nurse gets the new room's
// alarm, the WebSocket and token from before still work), a bad one is refused
// with its errors and the process keeps running on the old file.
func TestReloadOnSIGHUP(t *testing.T) {
	f := newSiteFile(t)
	g := startLogChild(t, f.path, f.apiPort)
	c := client{t: t, base: fmt.Sprintf("http://127.0.0.1:%d", f.apiPort)}
	tok1 := c.login("nurse-1", "demo")
	phone1 := c.phone("nurse-1", tok1)
	press(t, f.brokerPort, "zigbee2mqtt/room101/sos", sosPress)
	first := phone1.expect("offer").Alarm

	f.extraStaff = []string{nurse2}
	f.extraTransmitters = []string{room102}
	f.write(t)
	hup := func() {
		if err := g.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}
	hup()
	waitChildLog(t, g, `"msg":"configuration reloaded"`, 1)
	phone2 := c.phone("nurse-2", c.login("nurse-2", "demo"))
	press(t, f.brokerPort, "zigbee2mqtt/room102/sos", sosPress)
	if o := phone2.expect("offer").Alarm; o.Transmitter.Room != "102" {
		t.Fatalf("nurse-2 offered %+v", *o)
	}
	if o := phone1.expect("offer").Alarm; o.Transmitter.Room != "102" {
		t.Fatalf("nurse-1 (WebSocket from before the reload) offered %+v", *o)
	}

	f.raw = "site: {id: reload-site\n" // a syntax error
	f.write(t)
	hup()
	waitChildLog(t, g, `"msg":"configuration reload refused","key":"","line":`, 1)
	select {
	case <-g.exited:
		t.Fatalf("gateway exited after a bad reload:\n%s", g.log())
	default:
	}
	if code, body := c.do("GET", "/api/v1/alarms", tok1, nil); code != http.StatusOK || !strings.Contains(string(body), `"id":"`+first.ID+`"`) {
		t.Fatalf("after the refused reload: %d %s", code, body)
	}
	c.login("nurse-2", "demo") // the applied configuration stays
}

// waitChildLog waits until the child's log holds s at least n times.
func waitChildLog(t *testing.T, g *logChild, s string, n int) {
	t.Helper()
	timeout := time.After(waitLimit)
	for strings.Count(g.log(), s) < n {
		select {
		case <-g.notify:
		case <-g.exited:
			t.Fatalf("gateway exited waiting for %s:\n%s", s, g.log())
		case <-timeout:
			t.Fatalf("no %s in the log within %v:\n%s", s, waitLimit, g.log())
		}
	}
}

// TestReloadChangedSecretLogsOut: a person whose secret the file changes is logged
// out at the reload (WebSocket closed as revoked, old token refused) and logs in with
// the new one; everyone else stays logged in.
func TestReloadChangedSecretLogsOut(t *testing.T) {
	f := newSiteFile(t)
	f.extraStaff = []string{nurse2}
	f.write(t)
	m := &Main{ConfigPath: f.path, Log: &lockedBuffer{}, Clock: fakeclock.New(time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC))}
	c := runMain(t, m)
	tok1, tok2 := c.login("nurse-1", "demo"), c.login("nurse-2", "demo")
	phone2 := c.phone("nurse-2", tok2)

	f.extraStaff = []string{strings.Replace(nurse2, "secret: demo", "secret: demo-2", 1)}
	f.write(t)
	ch, err := m.Reload(context.Background())
	if err != nil || !slices.Equal(ch.StaffChanged, []vakt.StaffID{"nurse-2"}) {
		t.Fatalf("reload: %+v, %v", ch, err)
	}
	timeout := time.After(waitLimit)
	for open := true; open; {
		select {
		case _, open = <-phone2.msgs: // closed when the gateway ends the WebSocket
		case <-timeout:
			t.Fatal("nurse-2's WebSocket still open after the secret changed")
		}
	}
	if code, _ := c.do("GET", "/api/v1/alarms", tok2, nil); code != http.StatusUnauthorized {
		t.Fatalf("nurse-2's old token after the secret changed: %d, want 401", code)
	}
	c.login("nurse-2", "demo-2")
	if code, body := c.do("GET", "/api/v1/alarms", tok1, nil); code != http.StatusOK {
		t.Fatalf("nurse-1's token: %d %s", code, body)
	}
}

// TestReloadNewDeviceExternalBroker: with Mosquitto in front, a Zigbee2MQTT device
// added by a reload is heard at once (the driver's subscription covers the base
// topic) and its alarm shows its room.
func TestReloadNewDeviceExternalBroker(t *testing.T) {
	f := newSiteFile(t)
	f.external = true
	f.write(t)
	mosquitto(t, f.brokerPort)
	m := &Main{ConfigPath: f.path, Log: &lockedBuffer{}, Clock: fakeclock.New(time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC))}
	c := runMain(t, m)
	phone1 := c.phone("nurse-1", c.login("nurse-1", "demo"))
	f.extraTransmitters = []string{room102}
	f.write(t)
	if ch, err := m.Reload(context.Background()); err != nil || !slices.Equal(ch.TransmittersAdded, []vakt.TransmitterID{"room-102-sos"}) || len(ch.Restart) != 0 {
		t.Fatalf("reload: %+v, %v", ch, err)
	}
	press(t, f.brokerPort, "zigbee2mqtt/room102/sos", sosPress)
	if o := phone1.expect("offer").Alarm; o.Transmitter.ID != "room-102-sos" || o.Transmitter.Room != "102" {
		t.Fatalf("offer after the reload = %+v, want room 102's alarm", *o)
	}
}

package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"

	vakt "github.com/vakt/vakt"
	"github.com/vakt/vakt/config"
	"github.com/vakt/vakt/drivers"
	"github.com/vakt/vakt/engine"
	"github.com/vakt/vakt/routing"
)

// A reload (SIGHUP, systemd's ExecReload) re-reads the -config file. A file with
// errors is refused, each error logged with its key and line, and the running
// configuration stays. Otherwise what can change live does, in one engine
// operation (staff, transmitters with their supervision, policies and routing);
// the log level follows log.level; every other changed key is named in a warning
// "needs a restart" and not applied. Open alarms, visits and phone sessions are
// untouched. docs/configuration.md "Reloading" lists the keys.

// reloadActor is the audit actor of a reload: whoever sent the signal, as for the
// configuration a start audits.
const reloadActor = "technician"

// reloadState is what a reload compares against. Open sets it; after that only
// Reload touches it, one at a time.
type reloadState struct {
	mu sync.Mutex
	// cfg is the configuration in force (Main.Config stays the one Open built
	// the parts from).
	cfg *config.Config
	// dir is the staff list last applied, with its hashes: a plain secret that did
	// not change keeps its hash (a new bcrypt salt would log its owner out).
	dir []vakt.Staff
	// level is the log's level: log.level, or the -log-level flag (flag) without it.
	level *slog.LevelVar
	flag  slog.Level
	// dialects are the MQTT driver's dialects by driver name (new devices are
	// added to them); bound is each transmitter as its driver knows it (from the
	// start, or added by a reload).
	dialects map[string]drivers.Dialect
	bound    map[string]config.Transmitter
}

// levelVar is the log's level, made once (Open).
func (m *Main) levelVar() *slog.LevelVar {
	if m.rl.level == nil {
		m.rl.level = new(slog.LevelVar)
		if m.Level != nil {
			m.rl.flag = m.Level.Level()
		}
		m.rl.level.Set(m.rl.flag)
	}
	return m.rl.level
}

// setLogLevel applies log.level (or the flag's level when the file has none).
func (m *Main) setLogLevel(cfg *config.Config) {
	lv := m.levelVar()
	want := m.rl.flag
	if cfg.Log.Level != "" {
		if l, err := parseLevel(cfg.Log.Level); err == nil {
			want = l
		}
	}
	if lv.Level() != want {
		lv.Set(want)
		m.Logger.Warn("log level set", "level", want.String())
	}
}

// watchReload reloads on every signal from hup once the gateway is ready (a signal
// during the start waits; several in a row are one reload).
func (m *Main) watchReload(ctx context.Context, hup <-chan os.Signal) {
	select {
	case <-m.Ready():
	case <-ctx.Done():
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			m.Logger.Info("reload requested (SIGHUP)", "config", m.ConfigPath)
			_, _ = m.Reload(ctx)
		}
	}
}

// Reload re-reads the configuration file and applies it as described above. An
// error means nothing was applied (a file with errors: config.Errors).
func (m *Main) Reload(ctx context.Context) (engine.ConfigChange, error) {
	m.rl.mu.Lock()
	defer m.rl.mu.Unlock()
	cfg, err := config.Load(m.ConfigPath)
	if err != nil {
		return engine.ConfigChange{}, m.refuse(ctx, err)
	}
	// Live keys compare with the configuration last applied, the others with the
	// one the running parts were built from: until a restart, every reload names
	// them again.
	old := m.rl.cfg
	restart := restartKeys(m.Config, cfg)

	// The router keeps the running privacy switches: privacy.* needs a restart.
	rc := routingConfig(cfg)
	rc.NearestEnabled, rc.PositionTTL = m.Config.Privacy.NearestRouting, m.Config.Privacy.PositionTTL.D()
	router, err := routing.New(rc)
	if err != nil {
		return engine.ConfigChange{}, m.refuse(ctx, fmt.Errorf("routing: %w", err))
	}
	dir, initial, pins, err := staffFromConfig(keepHashes(cfg, old, m.rl.dir))
	if err != nil {
		return engine.ConfigChange{}, m.refuse(ctx, err)
	}
	adds, bindRestart := m.bindings(cfg)
	restart = append(restart, bindRestart...)
	slices.Sort(restart)
	restart = slices.Compact(restart)

	ch, err := m.Engine.ApplyConfig(ctx, reloadActor, engine.LiveConfig{
		Router:          router,
		Policies:        policiesChanged(old, cfg),
		Transmitters:    transmittersFromConfig(cfg),
		Directory:       dir,
		InitialStaff:    initial,
		PinnedPositions: pins,
		Restart:         restart,
		Digest:          fileDigest(m.ConfigPath),
	})
	if err != nil && (errors.Is(err, vakt.ErrClosed) || ctx.Err() != nil || ch.Registry == nil) {
		m.Logger.Error("configuration reload not applied", "err", err)
		return ch, fmt.Errorf("reload: %w", err)
	}
	if err != nil {
		// The engine applied it in memory; the commit failed (it serves from
		// memory and raises the storage alarm).
		m.Logger.Error("configuration reload applied but not stored", "err", err)
	}
	m.Hub.SetTransmitters(ch.Registry)
	// The new devices reach the driver after the engine knows where they are.
	for _, a := range adds {
		if aerr := a.d.Add(a.dev); aerr != nil {
			m.Logger.Warn("transmitter not added to its driver: needs a restart", "transmitter", a.dev.ID, "err", aerr)
			continue
		}
		m.rl.bound[a.t.ID] = a.t
	}
	m.setLogLevel(cfg)
	m.rl.cfg, m.rl.dir = cfg, dir
	for _, k := range ch.Restart {
		m.Logger.Warn("configuration change needs a restart; not applied", "key", k)
	}
	m.Logger.Info("configuration reloaded", "changes", ch.Summary())
	return ch, err
}

// refuse logs every error of a refused reload with its key and line, and audits
// the refusal (keys and lines only). The running configuration stays.
func (m *Main) refuse(ctx context.Context, err error) error {
	var errs config.Errors
	var where []string
	if errors.As(err, &errs) {
		for _, e := range errs {
			m.Logger.Error("configuration reload refused", "key", e.Path, "line", e.Line, "problem", logSafe(e))
			where = append(where, fmt.Sprintf("%s@%d", e.Path, e.Line))
		}
	} else {
		// Not a problem at a key: the file could not be read, or routing or the
		// staff list could not be built from it.
		m.Logger.Error("configuration reload refused", "err", err)
		where = append(where, "not-applicable")
	}
	m.Logger.Warn("configuration not reloaded: the running configuration stays; fix the file (gateway check-config) and reload again", "errors", len(where))
	reason := "errors=" + strings.Join(where, ",")
	if d := fileDigest(m.ConfigPath); d != "" {
		reason = d + " " + reason
	}
	if aerr := m.Engine.RefuseConfig(ctx, reloadActor, reason); aerr != nil {
		m.Logger.Error("audit reload refusal", "err", aerr)
	}
	return fmt.Errorf("reload refused: %w", err)
}

// fileDigest is "sha256:" and the first 8 bytes of the file's SHA-256 in hex, as a
// start audits it; "" when unreadable (the reload reports why).
func fileDigest(path string) string {
	raw, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(raw)
	return "sha256:" + hex.EncodeToString(sum[:8])
}

// logSafe is an error's message for the log: a problem in a person's name, phone,
// e-mail or position may quote the value, which the log never holds.
func logSafe(e *config.Error) string {
	if strings.HasPrefix(e.Path, "staff[") {
		for _, k := range []string{".name", ".phone", ".email", ".position"} {
			if strings.Contains(e.Path, k) {
				return "personal field (value not logged): see gateway check-config"
			}
		}
	}
	return e.Msg
}

// keepHashes returns cfg with the hash last applied for each plain secret that
// did not change.
func keepHashes(cfg, old *config.Config, dir []vakt.Staff) *config.Config {
	oldSecret := map[string]string{}
	for _, s := range old.Staff {
		if s.SecretHash == "" && s.Secret.Value != "" {
			oldSecret[s.ID] = s.Secret.Value
		}
	}
	hash := map[vakt.StaffID]string{}
	for _, d := range dir {
		hash[d.ID] = d.SecretHash
	}
	c := *cfg
	c.Staff = slices.Clone(cfg.Staff)
	for i := range c.Staff {
		s := &c.Staff[i]
		if s.SecretHash == "" && s.Secret.Value != "" && oldSecret[s.ID] == s.Secret.Value && hash[vakt.StaffID(s.ID)] != "" {
			s.SecretHash = hash[vakt.StaffID(s.ID)]
		}
	}
	return &c
}

func policiesChanged(old, cfg *config.Config) bool {
	return !reflect.DeepEqual(old.Policies, cfg.Policies) || old.Routing != cfg.Routing || old.Site.Timezone != cfg.Site.Timezone
}

// liveSections are applied by a reload; site is compared key by key (its
// timezone and reference position are live, the rest is not).
var liveSections = map[string]bool{
	"zones": true, "roles": true, "transmitters": true, "staff": true, "policies": true, "routing": true, "log": true,
}

var liveSiteKeys = map[string]bool{"timezone": true, "lat": true, "lon": true}

// restartKeys names every changed key that a reload does not apply, one level
// below its section ("api.listen", "drivers.serial").
func restartKeys(old, cfg *config.Config) []string {
	var keys []string
	ov, nv := reflect.ValueOf(old).Elem(), reflect.ValueOf(cfg).Elem()
	for i := range ov.NumField() {
		name := keyName(ov.Type().Field(i))
		if liveSections[name] {
			continue
		}
		a, b := ov.Field(i), nv.Field(i)
		if a.Kind() != reflect.Struct {
			if !reflect.DeepEqual(a.Interface(), b.Interface()) {
				keys = append(keys, name)
			}
			continue
		}
		for j := range a.NumField() {
			sub := keyName(a.Type().Field(j))
			if name == "site" && liveSiteKeys[sub] {
				continue
			}
			if !reflect.DeepEqual(a.Field(j).Interface(), b.Field(j).Interface()) {
				keys = append(keys, name+"."+sub)
			}
		}
	}
	return keys
}

// keyName is a field's YAML key (the lower-cased field name when it has none).
func keyName(f reflect.StructField) string {
	tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if tag == "" {
		return strings.ToLower(f.Name)
	}
	return tag
}

// deviceAdd is a new device for an MQTT dialect.
type deviceAdd struct {
	d   drivers.Dialect
	dev drivers.Device
	t   config.Transmitter
}

// bindAll records every transmitter of cfg as bound to its driver (Open).
func (m *Main) bindAll(cfg *config.Config) {
	m.rl.bound = map[string]config.Transmitter{}
	for _, t := range cfg.Transmitters {
		m.rl.bound[t.ID] = t
	}
}

// bindings compares what the drivers know of each transmitter. A new transmitter
// of an MQTT dialect is added to it live (with an external broker, only when the
// dialect's subscriptions already cover it); any other new, changed or removed
// binding (driver, address, low_battery, driver options) needs a restart, while
// the registry (room, zone, supervision, ...) still changes live.
func (m *Main) bindings(cfg *config.Config) ([]deviceAdd, []string) {
	oldT := m.rl.bound
	var adds []deviceAdd
	var restart []string
	key := func(id string) string { return "transmitters[" + id + "]" }
	newIDs := map[string]bool{}
	for i := range cfg.Transmitters {
		t := &cfg.Transmitters[i]
		newIDs[t.ID] = true
		if o, had := oldT[t.ID]; had {
			if o.Driver != t.Driver || o.Address != t.Address || o.LowBattery != t.LowBattery || !reflect.DeepEqual(o.Options, t.Options) {
				restart = append(restart, key(t.ID))
			}
			continue
		}
		d, ok := m.rl.dialects[t.Driver]
		if !ok || !m.coveredByTopics(d, t) {
			restart = append(restart, key(t.ID))
			continue
		}
		adds = append(adds, deviceAdd{d: d, dev: t.Device(), t: *t})
	}
	for _, t := range oldT {
		if !newIDs[t.ID] {
			if _, ok := m.rl.dialects[t.Driver]; ok {
				// Its driver still decodes it: its events raise alarms of an
				// unknown transmitter until the restart.
				restart = append(restart, key(t.ID))
			}
		}
	}
	return adds, restart
}

// coveredByTopics reports whether the driver hears t once its dialect knows it:
// always with the embedded broker (in-process, every publish), and with an
// external broker when the dialect subscribes to a wildcard covering t's topic.
func (m *Main) coveredByTopics(d drivers.Dialect, t *config.Transmitter) bool {
	if direct(m.Config) {
		return true
	}
	topic := d.Topic(t.Device())
	for _, f := range d.Topics() {
		if topicMatches(f, topic) {
			return true
		}
	}
	return false
}

// topicMatches is MQTT filter matching (+ one level, # the rest).
func topicMatches(filter, topic string) bool {
	fs, ts := strings.Split(filter, "/"), strings.Split(topic, "/")
	for i, f := range fs {
		if f == "#" {
			return true
		}
		if i >= len(ts) || (f != "+" && f != ts[i]) {
			return false
		}
	}
	return len(fs) == len(ts)
}

// dialectsByName names the MQTT driver's dialects by their registered driver name.
func dialectsByName(cfg *config.Config, ds []drivers.Dialect) map[string]drivers.Dialect {
	out := map[string]drivers.Dialect{}
	settings := cfg.Drivers.MQTT.Settings()
	for _, name := range drivers.Names() {
		f, _ := drivers.Lookup(name)
		probe := reflect.TypeOf(f(settings))
		for _, d := range ds {
			if reflect.TypeOf(d) == probe {
				out[name] = d
			}
		}
	}
	return out
}

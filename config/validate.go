package config

import (
	"fmt"
	"math"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	vakt "github.com/vakt/vakt"
	"github.com/vakt/vakt/drivers"
	"github.com/vakt/vakt/drivers/espa"
	"github.com/vakt/vakt/drivers/mqtt"
	"github.com/vakt/vakt/drivers/serial"
)

// The values that keys accept. They are spelled as in the root package and routing.
var (
	transmitterKinds = []string{
		string(vakt.KindButton), string(vakt.KindPullCord), string(vakt.KindPendant),
		string(vakt.KindFall), string(vakt.KindDoor), string(vakt.KindBed),
		string(vakt.KindSmoke), string(vakt.KindNurseCall), string(vakt.KindSensor),
	}
	// policyKinds are the kinds that open alarms: care kinds plus technical ones.
	policyKinds = []string{
		string(vakt.EventCall), string(vakt.EventAssist), string(vakt.EventEmergency),
		string(vakt.EventFall), string(vakt.EventSensor), string(vakt.EventDoor),
		string(vakt.EventLowBattery), string(vakt.EventTamper), string(vakt.EventOffline),
	}
	tierTargets    = []string{"nearest", "zone", "site", "role", "primary", "arc", "pager"}
	availabilities = []string{string(vakt.Available), string(vakt.Busy), string(vakt.Away)}
)

// sampleSecrets are the values found in examples, manuals and factory defaults.
// Outside demo mode none of them is accepted as a secret (requirement S1).
var sampleSecrets = []string{
	"demo", "changeme", "change-me", "change_me", "password", "passw0rd", "secret",
	"1234", "12345", "123456", "0000", "admin", "test", "default", "vakt",
}

func isSample(s string) bool {
	return slices.Contains(sampleSecrets, strings.ToLower(strings.TrimSpace(s)))
}

var validID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:@-]{0,63}$`)

// maxBrokerRate and maxBrokerBurst bound drivers.broker.rate_limit and rate_burst.
const (
	maxBrokerRate  = 100_000
	maxBrokerBurst = 1_000_000
)

// maxPayloadLimit bounds drivers.mqtt.max_payload: alarm payloads are tiny.
const maxPayloadLimit = 1 << 20

// Validate checks a Config built in code; Parse has already validated what it returns.
// Errors from here carry no line numbers.
func (c *Config) Validate() error { return validate(c, nil, nil).err() }

type validator struct {
	c        *Config
	line     func(path string) int
	reported func(path string) bool
	errs     Errors

	zones        map[string]bool
	roles        map[string]bool
	transmitters map[string]*Transmitter
	rooms        map[string]bool
	drivers      map[string]drivers.Driver // by name, built once
}

// validate checks everything that the types alone cannot: required keys, allowed
// values, references between sections, and the security rules. line, when not nil,
// gives the line of a key path; reported, when not nil, the paths that already have
// an error from decoding and need no second one.
func validate(c *Config, line func(string) int, reported func(string) bool) Errors {
	v := &validator{
		c:            c,
		line:         line,
		reported:     reported,
		zones:        map[string]bool{},
		roles:        map[string]bool{},
		transmitters: map[string]*Transmitter{},
		rooms:        map[string]bool{},
		drivers:      map[string]drivers.Driver{},
	}
	// Index what others refer to first, so every reference can be checked.
	for _, z := range c.Zones {
		v.zones[z.ID] = true
	}
	for _, r := range c.Roles {
		v.roles[r] = true
	}
	for i := range c.Transmitters {
		t := &c.Transmitters[i]
		if _, dup := v.transmitters[t.ID]; !dup {
			v.transmitters[t.ID] = t
		}
		if t.Room != "" {
			v.rooms[t.Room] = true
		}
	}

	v.site()
	v.zoneList()
	v.roleList()
	v.transmitterList()
	v.staffList()
	v.policyList()
	v.routing()
	v.mqtt()
	v.broker()
	v.serialPorts()
	v.api()
	v.arc()
	if l := c.Storage.CheckInLinger.D(); l < 0 || l > time.Minute {
		v.errorf("storage.checkin_linger", "must be between 0 and 1m: check-ins are acknowledged only after their commit")
	}
	if c.Storage.Path == "" {
		v.errorf("storage.path", "required: where the database file lives, e.g. %q", DefaultStoragePath)
	}
	v.positive("privacy.position_ttl", c.Privacy.PositionTTL, "15m")
	v.visitNotes()
	v.retention()
	v.cloud()
	if c.Log.Level != "" {
		v.oneOf("log.level", c.Log.Level, "log level", []string{"debug", "info", "warn", "error"})
	}
	return v.errs
}

func (v *validator) errorf(path, format string, args ...any) {
	if v.reported != nil && v.reported(path) {
		return
	}
	line := 0
	if v.line != nil {
		line = v.line(path)
	}
	v.errs = append(v.errs, &Error{Path: path, Line: line, Msg: fmt.Sprintf(format, args...)})
}

// where says where a key path is, for "first used at" hints.
func (v *validator) where(path string) string {
	if v.line != nil {
		if l := v.line(path); l > 0 {
			return fmt.Sprintf("%s on line %d", path, l)
		}
	}
	return path
}

func (v *validator) demo() bool { return v.c.Site.Demo }

// ident checks a required id and that no earlier entry has it (seen: id → path).
func (v *validator) ident(path, id, what string, seen map[string]string) {
	switch {
	case id == "":
		noun := "id"
		if strings.HasSuffix(path, ".name") {
			noun = "name"
		}
		v.errorf(path, "required: a unique %s %s, e.g. %q", what, noun, exampleID(what))
		return
	case !validID.MatchString(id):
		v.errorf(path, "%s is not a valid id: use letters, digits and . _ : @ - (at most 64, starting with a letter or digit)", quoteShort(id))
		return
	}
	if seen == nil {
		return
	}
	if first, dup := seen[id]; dup {
		noun := "id"
		if strings.HasSuffix(path, ".name") {
			noun = "name"
		}
		v.errorf(path, "duplicate %s %q, already used by %s", noun, id, v.where(first))
		return
	}
	seen[id] = path
}

func exampleID(what string) string {
	switch what {
	case "zone":
		return "east"
	case "transmitter":
		return "room-101-sos"
	case "staff":
		return "s-1042"
	case "policy":
		return "emergency"
	case "role":
		return "nurse"
	}
	return "solbakken"
}

func (v *validator) oneOf(path, value, what string, allowed []string) bool {
	if value == "" {
		v.errorf(path, "required: the %s, one of %s", what, strings.Join(allowed, ", "))
		return false
	}
	if !slices.Contains(allowed, value) {
		v.errorf(path, "unknown %s %s; use one of %s", what, quoteShort(value), strings.Join(allowed, ", "))
		return false
	}
	return true
}

// undecodable reports whether a whole section failed to decode: references into it
// are then not checked, to avoid one error per reference.
func (v *validator) undecodable(section string) bool {
	return v.reported != nil && v.reported(section)
}

func (v *validator) zoneRef(path, zone string) {
	if v.zones[zone] || v.undecodable("zones") {
		return
	}
	if len(v.c.Zones) == 0 {
		v.errorf(path, "unknown zone %s: no zones are defined (add them under zones:)", quoteShort(zone))
		return
	}
	ids := make([]string, 0, len(v.c.Zones))
	for _, z := range v.c.Zones {
		ids = append(ids, z.ID)
	}
	v.errorf(path, "unknown zone %s; defined zones: %s", quoteShort(zone), strings.Join(ids, ", "))
}

func (v *validator) roleRefs(path string, roles []string) {
	for i, r := range roles {
		if v.roles[r] || v.undecodable("roles") {
			continue
		}
		p := drivers.Index(path, i)
		if len(v.c.Roles) == 0 {
			v.errorf(p, "unknown role %s: no roles are defined (list them under roles:)", quoteShort(r))
		} else {
			v.errorf(p, "unknown role %s; defined roles: %s", quoteShort(r), strings.Join(v.c.Roles, ", "))
		}
	}
}

func (v *validator) latLon(path string, lat, lon float64) {
	if math.IsNaN(lat) || lat < -90 || lat > 90 {
		v.errorf(path+".lat", "latitude %v is outside -90..90", lat)
	}
	if math.IsNaN(lon) || lon < -180 || lon > 180 {
		v.errorf(path+".lon", "longitude %v is outside -180..180", lon)
	}
}

func (v *validator) positive(path string, d Duration, example string) {
	if d <= 0 {
		v.errorf(path, "must be set and longer than 0, e.g. %q", example)
	}
}

// retention checks every period of retention: (G5) is set and at least
// MinRetention. 0 would mean "keep forever", which the privacy policy does not
// allow for personal data.
func (v *validator) retention() {
	r := v.c.Retention
	for _, p := range []struct {
		key string
		d   Duration
	}{
		{"alarms", r.Alarms}, {"events", r.Events}, {"visits", r.Visits},
		{"epr_records", r.EPRRecords}, {"audit", r.Audit},
	} {
		switch path := "retention." + p.key; {
		case p.d == 0:
			v.errorf(path, "0 would keep personal data forever, which the privacy policy does not allow; set a period such as %q (90 days), or leave the key out for that default", "2160h")
		case p.d.D() < MinRetention:
			v.errorf(path, "%s is shorter than %s (a typo would delete recent history); write hours, e.g. %q for 90 days", p.d, Duration(MinRetention), "2160h")
		}
	}
}

func (v *validator) notNegative(path string, d Duration) {
	if d < 0 {
		v.errorf(path, "a duration cannot be negative")
	}
}

// secret applies S1 to one secret: required (unless optional), and outside demo
// mode neither a sample value nor shorter than minSecretLen characters. The message
// names the key, never the value.
func (v *validator) secret(path string, s Secret, required bool) {
	switch {
	case !s.IsSet():
		if required {
			v.errorf(path, "required: write it inline, as ${ENV_NAME} or as file:/path")
		}
	case v.demo():
	case isSample(s.Value):
		v.errorf(path, "a sample secret (read from the %s) is refused outside demo mode; set a real one", s.From)
	case utf8.RuneCountInString(s.Value) < minSecretLen:
		v.errorf(path, "the secret (read from the %s) is shorter than %d characters, which is refused outside demo mode; set a longer one", s.From, minSecretLen)
	}
}

func (v *validator) site() {
	s := v.c.Site
	if s.ID == "" {
		v.errorf("site.id", "required: a short name for this installation, e.g. %q", "solbakken")
	} else {
		v.ident("site.id", s.ID, "site", nil)
	}
	v.latLon("site", s.Lat, s.Lon)
	if _, err := s.Location(); err != nil {
		v.errorf("site.timezone", "unknown time zone %s: use an IANA name such as %q, or leave it out for the system's", quoteShort(s.Timezone), "Europe/Oslo")
	}
}

func (v *validator) zoneList() {
	seen := map[string]string{}
	for i, z := range v.c.Zones {
		v.ident(drivers.Index("zones", i)+".id", z.ID, "zone", seen)
	}
}

func (v *validator) roleList() {
	seen := map[string]string{}
	for i, r := range v.c.Roles {
		p := drivers.Index("roles", i)
		if r == "" || !validID.MatchString(r) {
			v.errorf(p, "%s is not a valid role name: use letters, digits and . _ : @ -", quoteShort(r))
			continue
		}
		if first, dup := seen[r]; dup {
			v.errorf(p, "role %q is listed twice (also %s)", r, v.where(first))
			continue
		}
		seen[r] = p
	}
}

// visitNotes checks privacy.visit_notes: short, distinct, printable words a phone
// offers as choices.
func (v *validator) visitNotes() {
	notes := v.c.Privacy.VisitNotes
	if len(notes) > MaxVisitNotes {
		v.errorf("privacy.visit_notes", "%d notes: at most %d (a list to pick from on a phone)", len(notes), MaxVisitNotes)
	}
	seen := map[string]string{}
	for i, n := range notes {
		p := drivers.Index("privacy.visit_notes", i)
		switch {
		case strings.TrimSpace(n) != n || n == "":
			v.errorf(p, "empty, or spaces at either end: write the note itself, e.g. %q", "assisted")
		case len(n) > MaxVisitNote:
			v.errorf(p, "longer than %d bytes: a note names an outcome, e.g. %q", MaxVisitNote, "false alarm")
		case strings.ContainsFunc(n, func(r rune) bool { return !unicode.IsPrint(r) }):
			v.errorf(p, "holds a control character")
		default:
			if first, dup := seen[n]; dup {
				v.errorf(p, "%q is listed twice (also %s)", n, v.where(first))
			}
			seen[n] = p
		}
	}
}

func (v *validator) transmitterList() {
	seen := map[string]string{}
	topics := map[string]string{} // MQTT topic → path of the transmitter using it
	for i := range v.c.Transmitters {
		t := &v.c.Transmitters[i]
		p := drivers.Index("transmitters", i)
		v.ident(p+".id", t.ID, "transmitter", seen)
		v.oneOf(p+".kind", t.Kind, "kind", transmitterKinds)
		drv, driverOK := v.driver(p+".driver", t.Driver)
		if t.Address == "" {
			hint := "the device's address at its driver"
			if driverOK {
				hint = drv.AddressHint()
			}
			v.errorf(p+".address", "required: %s", hint)
		}
		if t.Zone == "" {
			v.errorf(p+".zone", "required: the zone the transmitter is in")
		} else {
			v.zoneRef(p+".zone", t.Zone)
		}
		v.latLon(p, t.Lat, t.Lon)
		v.notNegative(p+".supervision", t.Supervision)
		if t.LowBattery < 0 || t.LowBattery > 100 {
			v.errorf(p+".low_battery", "%d is not a percentage (0..100; 0 = only the device's own low-battery flag)", t.LowBattery)
		}
		contacts := map[string]string{}
		for j, id := range t.PrimaryContacts {
			v.ident(drivers.Index(p+".primary_contacts", j), id, "staff", contacts)
		}
		if !driverOK {
			continue
		}
		// The driver checks its own keys; its paths are relative to the transmitter.
		dev := t.Device()
		addressOK := t.Address != ""
		drv.Check(dev, func(rel, format string, args ...any) {
			if rel == "address" {
				if !addressOK {
					return // already "required"
				}
				addressOK = false
			}
			v.errorf(p+"."+rel, format, args...)
		})
		// No two transmitters listen on the same MQTT topic.
		if dl, ok := drv.(drivers.Dialect); ok && addressOK {
			topic := dl.Topic(dev)
			if first, dup := topics[topic]; dup {
				v.errorf(p+".address", "topic %s is already used by %s", quoteShort(topic), v.where(first))
			} else {
				topics[topic] = p
			}
		}
	}
}

// driver checks a transmitter's driver name and returns the driver, configured with
// the MQTT settings, for its checks.
func (v *validator) driver(path, name string) (drivers.Driver, bool) {
	if !v.oneOf(path, name, "driver", drivers.Names()) {
		return nil, false
	}
	if d, ok := v.drivers[name]; ok {
		return d, true
	}
	f, _ := drivers.Lookup(name)
	d := f(v.c.Drivers.MQTT.Settings())
	v.drivers[name] = d
	return d, true
}

// Device is the transmitter as its driver sees it.
func (t *Transmitter) Device() drivers.Device {
	return drivers.Device{ID: vakt.TransmitterID(t.ID), Address: t.Address, LowBattery: t.LowBattery, Options: t.Options}
}

// Settings are the connection settings the MQTT dialects need.
func (m MQTT) Settings() drivers.Settings {
	return drivers.Settings{BaseTopic: m.BaseTopic, MaxPayload: m.MaxPayload}
}

func (v *validator) staffList() {
	seen := map[string]string{}
	for i, s := range v.c.Staff {
		p := drivers.Index("staff", i)
		v.ident(p+".id", s.ID, "staff", seen)
		v.roleRefs(p+".roles", s.Roles)
		if s.Zone != "" {
			v.zoneRef(p+".zone", s.Zone)
		}
		if s.Email != "" && !strings.Contains(s.Email, "@") {
			v.errorf(p+".email", "%s is not an e-mail address", quoteShort(s.Email))
		}
		if s.Availability != "" && !slices.Contains(availabilities, s.Availability) {
			v.errorf(p+".availability", "unknown availability %s; use one of %s (or leave it out)", quoteShort(s.Availability), strings.Join(availabilities, ", "))
		}

		switch {
		case s.Secret.IsSet() && s.SecretHash != "":
			v.errorf(p+".secret", "give secret or secret_hash, not both")
		case s.SecretHash != "":
			v.secretHash(p+".secret_hash", s.SecretHash)
		case !s.Secret.IsSet():
			v.errorf(p+".secret", "required: the staff member's login secret (or secret_hash, a bcrypt hash of it)")
		default:
			v.secret(p+".secret", s.Secret, true)
		}

		if !v.demo() {
			// At a real site duty and position come from the phones, and a position
			// in a file would outlive the privacy policy's TTL.
			for _, k := range []struct {
				key string
				set bool
			}{{"on_duty", s.OnDuty}, {"availability", s.Availability != ""}, {"position", s.Position != nil}} {
				if k.set {
					v.errorf(p+"."+k.key, "only for demo mode (site.demo: true); at a real site staff set it from their phones")
				}
			}
		}
		if s.Position != nil {
			v.latLon(p+".position", s.Position.Lat, s.Position.Lon)
		}
	}
}

func (v *validator) policyList() {
	seen := map[string]string{}
	routed := map[string]string{} // scope + kind → policy path, for policies without windows
	type timed struct {
		path string
		week *week
	}
	windowed := map[string][]timed{} // scope + kind → policies with windows
	for i := range v.c.Policies {
		pol := &v.c.Policies[i]
		p := drivers.Index("policies", i)
		v.ident(p+".name", pol.Name, "policy", seen)

		kindsOK := map[string]bool{}
		var kinds []string // valid, without repeats
		for j, k := range pol.Kinds {
			kp := drivers.Index(p+".kinds", j)
			switch {
			case !slices.Contains(policyKinds, k):
				v.errorf(kp, "unknown alarm kind %s; use one of %s", quoteShort(k), strings.Join(policyKinds, ", "))
			case kindsOK[k]:
				v.errorf(kp, "%q is listed twice", k)
			default:
				kindsOK[k] = true
				kinds = append(kinds, k)
			}
		}
		if pol.Priority < 0 || pol.Priority > int(vakt.PriorityTechnical) {
			v.errorf(p+".priority", "%d is not a priority: 1 emergency, 2 high, 3 normal, 4 technical (or leave it out for the kind's default)", pol.Priority)
		}
		if pol.Zone != "" {
			v.zoneRef(p+".zone", pol.Zone)
		}
		for j, r := range pol.Rooms {
			if !v.rooms[r] {
				v.errorf(drivers.Index(p+".rooms", j), "no transmitter is in room %s", quoteShort(r))
			}
		}
		v.notNegative(p+".realarm_after", pol.ReAlarmAfter)
		var wk *week
		if pol.Windows != nil {
			wk = v.windows(p+".windows", pol.Windows)
		}

		if len(pol.Tiers) == 0 {
			v.errorf(p+".tiers", "at least one tier is required: whom to offer the alarm to, and how long to wait")
		}
		for j := range pol.Tiers {
			tp := drivers.Index(p+".tiers", j)
			v.tier(tp, &pol.Tiers[j])
			if j == 0 && pol.Tiers[j].Parallel {
				v.errorf(tp+".parallel", "the first tier cannot be parallel: no tier comes before it")
			}
		}

		// The most specific policy wins (room, zone, site; then naming the kind;
		// then an open window); two at the same level for the same kind would
		// leave the choice to chance: both without windows, or windows that overlap.
		scopes := []string{"the whole site"}
		switch {
		case len(pol.Rooms) > 0:
			scopes = scopes[:0]
			for _, r := range pol.Rooms {
				scopes = append(scopes, "room "+strconv.Quote(r))
			}
		case pol.Zone != "":
			scopes = []string{"zone " + strconv.Quote(pol.Zone)}
		}
		all := len(pol.Kinds) == 0
		if all {
			kinds = []string{"*"}
		}
		for _, scope := range scopes {
			for _, k := range kinds {
				key := scope + "\x00" + k
				what := fmt.Sprintf("alarm kind %q", k)
				if all {
					what = "every care alarm (no kinds)"
				}
				if wk != nil {
					clash := false
					for _, o := range windowed[key] {
						if m := wk.overlap(o.week); m >= 0 {
							v.errorf(p+".windows", "%s in %s is already routed by %s at overlapping times (e.g. %s); make the windows meet without overlapping, or merge the two policies", what, scope, v.where(o.path), minuteName(m))
							clash = true
							break
						}
					}
					if !clash {
						windowed[key] = append(windowed[key], timed{p, wk})
					}
					continue
				}
				if first, dup := routed[key]; dup {
					v.errorf(p+".kinds", "%s in %s is already routed by %s; merge the two policies", what, scope, v.where(first))
					continue
				}
				routed[key] = p
			}
		}
	}
}

// windows checks a policy's windows and returns the minutes of the week they cover
// (nil when one is invalid: overlaps are then not checked).
func (v *validator) windows(p string, ws []Window) *week {
	if len(ws) == 0 {
		v.errorf(p, "an empty list would never match; leave windows out for a policy that always applies")
		return nil
	}
	wk, all := new(week), true
	for i, w := range ws {
		wp := drivers.Index(p, i)
		ok := true
		for j, d := range w.Days {
			if _, known := dayNames[strings.ToLower(d)]; !known {
				v.errorf(drivers.Index(wp+".days", j), "unknown day %s; use %s", quoteShort(d), dayList)
				ok = false
			}
		}
		if w.Days != nil && len(w.Days) == 0 {
			v.errorf(wp+".days", "an empty list would never match; leave days out for every day")
			ok = false
		}
		from, err := clock(w.From, false)
		if err != nil {
			v.errorf(wp+".from", "%v", err)
			ok = false
		}
		to, err := clock(w.To, true)
		if err != nil {
			v.errorf(wp+".to", "%v", err)
			ok = false
		} else if to == 0 {
			to = 24 * time.Hour
		}
		if ok && from == to {
			v.errorf(wp+".to", "equals from: the window would be empty (for a whole day write from: \"00:00\", to: \"24:00\")")
			ok = false
		}
		if ok {
			wk.addWindow(w)
		}
		all = all && ok
	}
	if !all {
		return nil
	}
	return wk
}

func (v *validator) tier(p string, t *Tier) {
	if !v.oneOf(p+".target", t.Target, "tier target", tierTargets) {
		return
	}
	switch {
	case t.Parallel && t.Target != "arc" && t.Target != "pager":
		v.errorf(p+".parallel", "only targets arc and pager can be parallel (they hold no offers); to offer more staff at once, widen this tier's target or roles")
	case t.Parallel && t.Wait != 0:
		v.errorf(p+".wait", "a parallel tier runs on the wait of the tier it starts with; leave wait out")
	case t.Parallel:
	case t.Target != "arc":
		v.positive(p+".wait", t.Wait, "30s")
	default:
		v.notNegative(p+".wait", t.Wait)
	}
	switch {
	case t.Count < 0:
		v.errorf(p+".count", "cannot be negative")
	case t.Count > 0 && t.Target != "nearest":
		v.errorf(p+".count", "count is only for target nearest")
	}
	if t.Target == "role" && len(t.Roles) == 0 {
		v.errorf(p+".roles", "required for target role: which roles to offer to")
	}
	v.roleRefs(p+".roles", t.Roles)
	switch {
	case t.Target == "pager" && t.Pager == "":
		v.errorf(p+".pager", "required for target pager: the name of the drivers.serial port of the paging system")
	case t.Target == "pager" && !v.serialPort(t.Pager):
		v.errorf(p+".pager", "unknown serial port %q; define it under drivers.serial", t.Pager)
	case t.Target != "pager" && t.Pager != "":
		v.errorf(p+".pager", "pager is only for target pager")
	}
	switch {
	case t.Target == "pager" && t.CallAddress == "":
		v.errorf(p+".call_address", "required for target pager: the pager or group number to call")
	case t.Target == "pager" && len(t.CallAddress) > espa.MaxCallAddress:
		v.errorf(p+".call_address", "at most %d characters (ESPA 4.4.4 record 1)", espa.MaxCallAddress)
	case t.Target != "pager" && t.CallAddress != "":
		v.errorf(p+".call_address", "call_address is only for target pager")
	}
	if t.Zone != "" {
		if t.Target != "zone" {
			v.errorf(p+".zone", "zone is only for target zone")
		} else {
			v.zoneRef(p+".zone", t.Zone)
		}
	}
}

// serialPort reports whether a drivers.serial port has this name.
func (v *validator) serialPort(name string) bool {
	for _, sp := range v.c.Drivers.Serial {
		if sp.Name == name {
			return true
		}
	}
	return false
}

func (v *validator) routing() {
	r := v.c.Routing
	v.positive("routing.offer_confirm", r.OfferConfirm, "10s")
	if r.FloorPenaltyM < 0 || math.IsNaN(r.FloorPenaltyM) || math.IsInf(r.FloorPenaltyM, 0) {
		v.errorf("routing.floor_penalty_m", "must be 0 or more metres")
	}
}

func (v *validator) mqtt() {
	m := v.c.Drivers.MQTT
	if !m.Enabled {
		var users []int
		for i, t := range v.c.Transmitters {
			if f, ok := drivers.Lookup(t.Driver); ok {
				if _, mqtt := f(drivers.Settings{}).(drivers.Dialect); mqtt {
					users = append(users, i)
				}
			}
		}
		if len(users) > 0 {
			// Reported at the first transmitter, which has a line; drivers: may be absent.
			v.errorf(drivers.Index("transmitters", users[0])+".driver", "the MQTT driver is off but %d transmitter(s) need it; set drivers.mqtt.enabled: true", len(users))
		}
		return
	}
	const p = "drivers.mqtt"
	if v.c.Drivers.Broker.Enabled {
		// With the embedded broker the driver reads it in-process (the broker acknowledges
		// a publish only after its commit); it connects and logs in nowhere, so a key that
		// names another broker or a login would be silently ignored, and a site that meant
		// to read its Mosquitto would not.
		for _, k := range []struct {
			key string
			set bool
		}{{"url", m.URL != ""}, {"ca_file", m.CAFile != ""}, {"username", m.Username != ""}, {"password", m.Password.IsSet()}} {
			if k.set {
				v.errorf(p+"."+k.key, "not used: the embedded broker is on (%s), and the gateway reads it in-process and logs in to no broker; remove %s, or set drivers.broker.enabled: false to read the broker at drivers.mqtt.url", v.where("drivers.broker.enabled"), k.key)
			}
		}
	} else if m.URL == "" {
		v.errorf(p+".url", "required: the broker, e.g. tcp://127.0.0.1:1883 or ssl://broker.example:8883")
	} else if u, err := url.Parse(m.URL); err != nil || u.Host == "" || !slices.Contains(mqtt.Schemes, u.Scheme) {
		v.errorf(p+".url", "%s is not a broker URL; write scheme://host:port with scheme %s", quoteShort(m.URL), strings.Join(mqtt.Schemes, ", "))
	} else if m.CAFile != "" && !slices.Contains(mqtt.TLSSchemes, u.Scheme) {
		v.errorf(p+".ca_file", "ca_file is for TLS connections; use an ssl://, tls://, mqtts:// or wss:// url")
	}
	if m.ClientID == "" {
		v.errorf(p+".client_id", "required (it defaults to vakt-<site.id>)")
	}
	if m.BaseTopic == "" {
		v.errorf(p+".base_topic", "required: Zigbee2MQTT's base topic, usually %q", DefaultBaseTopic)
	} else if msg := drivers.TopicProblem(m.BaseTopic, false); msg != "" {
		v.errorf(p+".base_topic", "%s", msg)
	}
	if m.MaxPayload < 1 || m.MaxPayload > maxPayloadLimit {
		v.errorf(p+".max_payload", "%d is outside 1..%d bytes", m.MaxPayload, maxPayloadLimit)
	}
	if m.Username != "" && !m.Password.IsSet() && !v.demo() {
		v.errorf(p+".password", "required when username is set")
	}
	v.secret(p+".password", m.Password, false)
}

func (v *validator) broker() {
	b := v.c.Drivers.Broker
	if !b.Enabled {
		return
	}
	const p = "drivers.broker"
	if !v.c.Drivers.MQTT.Enabled {
		// The broker keeps sessions in memory only: it may acknowledge a publish only once
		// the MQTT driver committed it, so without the driver it could only lose presses.
		v.errorf(p+".enabled", "the embedded broker hands every publish to the MQTT driver and acknowledges it only after the commit; set drivers.mqtt.enabled: true")
	}
	v.listen(p+".listen", b.Listen)
	if (b.TLSCert == "") != (b.TLSKey == "") {
		if b.TLSCert == "" {
			v.errorf(p+".tls_cert", "required when tls_key is set (give both, or neither for plain MQTT)")
		} else {
			v.errorf(p+".tls_key", "required when tls_cert is set (give both, or neither for plain MQTT)")
		}
	}
	if math.IsNaN(b.RateLimit) || b.RateLimit <= 0 || b.RateLimit > maxBrokerRate {
		v.errorf(p+".rate_limit", "must be more than 0 and at most %d publishes a second per client (username), e.g. %g", maxBrokerRate, DefaultBrokerRateLimit)
	}
	if b.RateBurst < 1 || b.RateBurst > maxBrokerBurst {
		v.errorf(p+".rate_burst", "must be 1..%d publishes at once per client (username), e.g. %d", maxBrokerBurst, DefaultBrokerRateBurst)
	}
	if !v.demo() && len(b.Clients) == 0 {
		v.errorf(p+".clients", "outside demo mode the embedded broker needs clients: every device and the gateway must log in")
	}
	seen := map[string]string{}
	for i, c := range b.Clients {
		cp := drivers.Index(p+".clients", i)
		switch first, dup := seen[c.Username]; {
		case c.Username == "":
			v.errorf(cp+".username", "required")
		case dup:
			v.errorf(cp+".username", "username %s is already used by %s", quoteShort(c.Username), v.where(first))
		default:
			seen[c.Username] = cp
		}
		v.secret(cp+".password", c.Password, !v.demo())
		for j, f := range c.Publish {
			if msg := drivers.TopicProblem(f, true); msg != "" {
				v.errorf(drivers.Index(cp+".publish", j), "%s", msg)
			}
		}
		for j, f := range c.Subscribe {
			if msg := drivers.TopicProblem(f, true); msg != "" {
				v.errorf(drivers.Index(cp+".subscribe", j), "%s", msg)
			}
		}
	}
}

func (v *validator) serialPorts() {
	names := map[string]string{}
	devices := map[string]string{}
	for i := range v.c.Drivers.Serial {
		s := &v.c.Drivers.Serial[i]
		p := drivers.Index("drivers.serial", i)
		if s.Device == "" {
			v.errorf(p+".device", "required: the serial device, e.g. /dev/serial/by-id/usb-FTDI_..., or /dev/ttyUSB0")
		} else if first, dup := devices[s.Device]; dup {
			v.errorf(p+".device", "device %s is already used by %s", quoteShort(s.Device), v.where(first))
		} else {
			devices[s.Device] = p
		}
		if s.Name != "" {
			if first, dup := names[s.Name]; dup {
				v.errorf(p+".name", "name %s is already used by %s", quoteShort(s.Name), v.where(first))
			} else {
				names[s.Name] = p
			}
		}
		serial.Line{
			Baud: s.Baud, DataBits: s.DataBits, Parity: s.Parity, StopBits: s.StopBits,
			Role: s.Role, Address: s.Address, Peer: s.Peer, GuardTime: s.GuardTime.D(),
		}.Check(func(key, format string, args ...any) { v.errorf(p+"."+key, format, args...) })

		for j := range s.Rules {
			v.serialRule(drivers.Index(p+".rules", j), &s.Rules[j])
		}
		if s.Fallback == "" {
			v.errorf(p+".fallback", "required: the transmitter that raises calls no rule maps (calls are never dropped)")
		} else {
			v.espaTransmitter(p+".fallback", s.Fallback)
		}
	}
}

// templateRef finds the group references of a rule's transmitter template, as
// regexp.Expand reads them: $name or ${name}, where $1x means ${1x}, not ${1}x.
var templateRef = regexp.MustCompile(`\$(\{[^}]*\}|[A-Za-z0-9_]+)`)

func (v *validator) serialRule(p string, r *SerialRule) {
	if len(r.CallAddress) > espa.MaxCallAddress {
		v.errorf(p+".call_address", "an ESPA call address has at most %d characters", espa.MaxCallAddress)
	}
	var re *regexp.Regexp
	if r.Text != "" {
		var err error
		if re, err = regexp.Compile(r.Text); err != nil {
			v.errorf(p+".text", "not a valid regular expression: %v", err)
		}
	}
	// ${call} (the call address) and $$ (a literal $) need no groups.
	groups := strings.ReplaceAll(strings.ReplaceAll(r.Transmitter, "$$", ""), "${call}", "")
	switch {
	case strings.TrimSpace(r.Transmitter) == "":
		v.errorf(p+".transmitter", "required: the transmitter id, which may use $1.. from text, e.g. %q", "room-$1")
	case !strings.Contains(r.Transmitter, "$"):
		v.espaTransmitter(p+".transmitter", r.Transmitter)
	case r.Text == "" && templateRef.MatchString(groups):
		v.errorf(p+".transmitter", "uses $ groups but the rule has no text to take them from (only ${call} works without text)")
	case re != nil:
		v.templateGroups(p+".transmitter", groups, re)
	}
}

// templateGroups checks that $1, ${name}... in a rule's transmitter exist in its text.
func (v *validator) templateGroups(path, tmpl string, re *regexp.Regexp) {
	for _, m := range templateRef.FindAllStringSubmatch(tmpl, -1) {
		ref := strings.TrimSuffix(strings.TrimPrefix(m[1], "{"), "}")
		if n, err := strconv.Atoi(ref); err == nil {
			if n > re.NumSubexp() {
				v.errorf(path, "$%s refers to group %d, but text has %d group(s)", m[1], n, re.NumSubexp())
			}
			continue
		}
		if re.SubexpIndex(ref) < 0 {
			hint := ""
			if digits := len(ref) - len(strings.TrimLeft(ref, "0123456789")); digits > 0 {
				// $1b reads as group "1b"; the technician meant ${1}b.
				hint = fmt.Sprintf("; to put text right after group %s write ${%s}", ref[:digits], ref[:digits])
			}
			v.errorf(path, "$%s: text has no group named %s%s", m[1], quoteShort(ref), hint)
		}
	}
}

func (v *validator) espaTransmitter(path, id string) {
	t, ok := v.transmitters[id]
	switch {
	case !ok:
		v.errorf(path, "unknown transmitter %s; define it under transmitters: with driver espa", quoteShort(id))
	case t.Driver != "espa":
		v.errorf(path, "transmitter %s has driver %s; serial calls need a transmitter with driver espa", quoteShort(id), quoteShort(t.Driver))
	}
}

func (v *validator) api() {
	a := v.c.API
	v.listen("api.listen", a.Listen)
	if (a.TLSCert == "") != (a.TLSKey == "") {
		if a.TLSCert == "" {
			v.errorf("api.tls_cert", "required when tls_key is set (give both, or neither for plain HTTP)")
		} else {
			v.errorf("api.tls_key", "required when tls_cert is set (give both, or neither for plain HTTP)")
		}
	}
	v.positive("api.session_ttl", a.SessionTTL, "12h")
	v.roleRefs("api.see_all_roles", a.SeeAllRoles)
}

// listen checks a host:port listen address, and that demo mode keeps to loopback:
// a demo box has sample secrets and must not be reachable from the network.
func (v *validator) listen(path, addr string) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		v.errorf(path, "%s is not host:port, e.g. 127.0.0.1:8080 or 0.0.0.0:8443", quoteShort(addr))
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		v.errorf(path, "%s: the port must be a number 1..65535", quoteShort(addr))
		return
	}
	if v.demo() && !isLoopback(host) {
		v.errorf(path, "demo mode listens on loopback only (127.0.0.1, ::1 or localhost), got %s; turn site.demo off to listen on the network", quoteShort(addr))
	}
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// cloud checks the sync section: only when enabled is anything required.
func (v *validator) cloud() {
	c := v.c.Cloud
	if !c.Enabled {
		return
	}
	u, err := url.Parse(c.URL)
	switch {
	case c.URL == "":
		v.errorf("cloud.url", "required when cloud.enabled: the cloud's base URL, e.g. %q", "https://cloud.example.com/vakt")
	case err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "":
		v.errorf("cloud.url", "%s is not a base URL like https://cloud.example.com/vakt (no user, query or fragment)", quoteShort(c.URL))
	case u.Scheme == "https":
	case u.Scheme == "http" && !v.demo():
		v.errorf("cloud.url", "plain http is allowed in demo mode only (site.demo: true), to a loopback address; use https")
	case u.Scheme == "http" && !isLoopback(u.Hostname()):
		v.errorf("cloud.url", "demo mode syncs over plain http with a loopback address only (127.0.0.1, ::1 or localhost), got %s; use https for anything else", quoteShort(u.Hostname()))
	case u.Scheme != "http":
		v.errorf("cloud.url", "the scheme must be https, got %s", quoteShort(u.Scheme))
	}
	if c.GatewayID == "" {
		v.errorf("cloud.gateway_id", "required: the gateway id the cloud knows this site by (default site.id)")
	} else {
		v.ident("cloud.gateway_id", c.GatewayID, "gateway", nil)
	}
	if c.TokenFile == "" && !v.demo() {
		v.errorf("cloud.token_file", "required when cloud.enabled: a file of mode 0600 holding this gateway's bearer token, e.g. %q", "/etc/vakt/secrets/cloud-token")
	} else if c.TokenFile != "" {
		v.secret("cloud.token_file", c.Token, false)
	}
	if c.BatchSize < 1 || c.BatchSize > 5000 {
		v.errorf("cloud.batch_size", "must be 1..5000 (entries per upload; a cloud accepts at least 5000), e.g. %d", DefaultCloudBatchSize)
	}
	v.positive("cloud.upload_interval", c.UploadInterval, "5s")
	v.positive("cloud.directory_interval", c.DirectoryInterval, "1m")
	if c.BacklogMaxEntries < 0 {
		v.errorf("cloud.backlog_max_entries", "cannot be negative (0 = no cap by entries)")
	}
	if c.BacklogMaxBytes < 0 {
		v.errorf("cloud.backlog_max_bytes", "cannot be negative (0 = no cap by bytes)")
	}
}

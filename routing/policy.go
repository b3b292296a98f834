package routing

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	vakt "github.com/vakt/vakt"
)

// defaultOfferConfirm applies when Config.OfferConfirm is zero: a phone on site
// Wi-Fi confirms within a second; ten leaves room for a slow push.
const defaultOfferConfirm = 10 * time.Second

// fallbackName names the built-in policy for alarms no configured policy matches.
const fallbackName = "fallback"

// fallback routes what no configured policy matches: never drop an alarm. A fresh
// value each time, so no caller can change it for the next.
func fallback() Policy {
	return Policy{Name: fallbackName, Tiers: []Tier{{Target: TargetSite, Wait: 60 * time.Second}}}
}

// validate checks cfg and fills defaults. Every problem is reported, each naming
// the policy and tier, so check-config shows the whole list at once.
func validate(cfg *Config) error {
	var errs []error
	switch {
	case cfg.OfferConfirm < 0:
		errs = append(errs, fmt.Errorf("offer confirm must be >= 0, got %v", cfg.OfferConfirm))
	case cfg.OfferConfirm == 0:
		cfg.OfferConfirm = defaultOfferConfirm
	}
	if !(cfg.FloorPenaltyM >= 0) || math.IsInf(cfg.FloorPenaltyM, 1) { // NaN too
		errs = append(errs, fmt.Errorf("floor penalty must be >= 0 metres, got %v", cfg.FloorPenaltyM))
	}
	if cfg.NearestEnabled && cfg.PositionTTL <= 0 {
		// Zero would make every position stale: nearest routing silently off.
		errs = append(errs, fmt.Errorf("position TTL must be > 0 when nearest routing is on, got %v", cfg.PositionTTL))
	}
	seen := make(map[string]bool, len(cfg.Policies))
	for i := range cfg.Policies {
		p := &cfg.Policies[i]
		if p.Name == "" {
			errs = append(errs, fmt.Errorf("policy %d: name must be set", i+1))
		} else if seen[p.Name] {
			// Alarms store the policy by name; two of one name would be ambiguous.
			errs = append(errs, fmt.Errorf("policy %q: name used twice", p.Name))
		}
		seen[p.Name] = true
		errs = append(errs, validatePolicy(p)...)
	}
	return errors.Join(errs...)
}

func validatePolicy(p *Policy) []error {
	var errs []error
	fail := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("policy %q: "+format, append([]any{p.Name}, args...)...))
	}
	for _, k := range p.Kinds {
		if !k.Raises() && !k.Technical() {
			fail("kind %q does not raise an alarm", k)
		}
	}
	if p.Priority < 0 || p.Priority > vakt.PriorityTechnical {
		fail("priority must be 1..%d or unset, got %d", vakt.PriorityTechnical, p.Priority)
	}
	if p.ReAlarmAfter < 0 {
		fail("re-alarm after must be >= 0, got %v", p.ReAlarmAfter)
	}
	for i, w := range p.Windows {
		if err := validateWindow(w); err != nil {
			fail("window %d: %v", i+1, err)
		}
	}
	if len(p.Tiers) == 0 {
		fail("needs at least one tier")
	}
	if len(p.Tiers) > 0 && p.Tiers[0].Parallel {
		fail("tier 1 cannot be parallel: no tier comes before it")
	}
	for i := range p.Tiers {
		for _, err := range validateTier(&p.Tiers[i]) {
			errs = append(errs, fmt.Errorf("policy %q tier %d: %w", p.Name, i+1, err))
		}
	}
	return errs
}

func validateWindow(w Window) error {
	day := 24 * time.Hour
	switch {
	case w.From < 0 || w.From >= day:
		return fmt.Errorf("from must be 00:00..23:59, got %v", w.From)
	case w.To <= 0 || w.To > day:
		return fmt.Errorf("to must be 00:01..24:00, got %v", w.To)
	case w.From == w.To:
		return errors.New("from and to are equal: the window would be empty")
	}
	for _, d := range w.Days {
		if d < time.Sunday || d > time.Saturday {
			return fmt.Errorf("day %d is not a weekday", d)
		}
	}
	return nil
}

func validateTier(t *Tier) []error {
	var errs []error
	if t.Parallel {
		if t.Target != TargetARC && t.Target != TargetPager {
			errs = append(errs, fmt.Errorf("only arc and pager tiers can be parallel, not %q", t.Target))
		}
		if t.Wait != 0 {
			// It runs on the wait of the tier it starts with.
			errs = append(errs, fmt.Errorf("a parallel tier has no wait of its own, got %v", t.Wait))
		}
		if t.Target == TargetPager && (t.Pager == "" || t.CallAddress == "") {
			errs = append(errs, errors.New("pager target needs a pager and a call address"))
		}
		return errs
	}
	switch t.Target {
	case TargetNearest, TargetZone, TargetSite, TargetPrimary:
	case TargetRole:
		if len(t.Roles) == 0 {
			errs = append(errs, errors.New("role target needs roles"))
		}
	case TargetPager:
		if t.Pager == "" || t.CallAddress == "" {
			errs = append(errs, errors.New("pager target needs a pager and a call address"))
		}
	case TargetARC:
		// The centre takes over; a wait only delays later tiers.
		if t.Wait < 0 {
			errs = append(errs, fmt.Errorf("wait must be >= 0, got %v", t.Wait))
		}
		return errs
	default:
		errs = append(errs, fmt.Errorf("unknown target %q (want nearest, zone, site, role, primary, arc or pager)", t.Target))
	}
	if t.Wait <= 0 {
		errs = append(errs, errors.New("wait must be > 0"))
	}
	if t.Count < 0 {
		errs = append(errs, fmt.Errorf("count must be >= 0, got %d", t.Count))
	}
	return errs
}

// clonePolicies copies the slices a Router keeps, so a caller changing its Config
// afterwards cannot race with decisions.
func clonePolicies(ps []Policy) []Policy {
	ps = slices.Clone(ps)
	for i := range ps {
		p := &ps[i]
		p.Kinds = slices.Clone(p.Kinds)
		p.Rooms = slices.Clone(p.Rooms)
		p.Windows = slices.Clone(p.Windows)
		for j := range p.Windows {
			p.Windows[j].Days = slices.Clone(p.Windows[j].Days)
		}
		p.Tiers = slices.Clone(p.Tiers)
		for j := range p.Tiers {
			p.Tiers[j].Roles = slices.Clone(p.Tiers[j].Roles)
		}
	}
	return ps
}

// Specificity of a policy's location match; higher wins.
const (
	noMatch = iota
	siteMatch
	zoneMatch
	roomMatch
)

// match scores how specifically p covers an alarm of kind at loc at now, 0 for not
// at all. The location decides first (room, zone, site); at the same location a
// policy that names the kind beats a catch-all, so a site-wide "everything" policy
// never shadows a site-wide emergency policy, wherever it is listed; then a policy
// with an open window beats one without windows (the night policy beats the
// all-day one while it is night).
func (p *Policy) match(kind vakt.EventKind, loc vakt.Location, now time.Time, tz *time.Location) int {
	named := 1
	if len(p.Kinds) == 0 {
		// Technical alarms go to technicians, so only a policy naming them routes them.
		if !kind.Raises() {
			return 0
		}
		named = 0
	} else if !slices.Contains(p.Kinds, kind) {
		return 0
	}
	if p.Zone != "" && p.Zone != loc.Zone {
		return 0
	}
	where := siteMatch
	switch {
	case len(p.Rooms) > 0:
		if !slices.Contains(p.Rooms, loc.Room) {
			return 0
		}
		where = roomMatch
	case p.Zone != "":
		where = zoneMatch
	}
	windowed := 0
	if len(p.Windows) > 0 {
		if !p.open(now, tz) {
			return 0
		}
		windowed = 1
	}
	return 4*where + 2*named + windowed
}

// open reports whether one of p's windows covers now in tz. A zero now (no time
// known) is in no window.
func (p *Policy) open(now time.Time, tz *time.Location) bool {
	if now.IsZero() {
		return false
	}
	l := now.In(tz)
	// The local clock time, not the time since midnight: on a daylight saving day
	// those differ by the hour the clocks moved.
	clock := time.Duration(l.Hour())*time.Hour + time.Duration(l.Minute())*time.Minute +
		time.Duration(l.Second())*time.Second + time.Duration(l.Nanosecond())
	today := l.Weekday()
	yesterday := (today + 6) % 7
	for _, w := range p.Windows {
		if w.From < w.To {
			if w.on(today) && clock >= w.From && clock < w.To {
				return true
			}
			continue
		}
		// Crosses midnight: the evening part today, the morning part of
		// yesterday's window.
		if w.on(today) && clock >= w.From || w.on(yesterday) && clock < w.To {
			return true
		}
	}
	return false
}

func (w *Window) on(d time.Weekday) bool {
	return len(w.Days) == 0 || slices.Contains(w.Days, d)
}

// loc is the site's time zone.
func (r *Router) loc() *time.Location {
	if r.cfg.Location != nil {
		return r.cfg.Location
	}
	return time.Local
}

// byName finds a configured policy by name.
func (r *Router) byName(name string) (Policy, bool) {
	for _, p := range r.cfg.Policies {
		if p.Name == name {
			return p, true
		}
	}
	if name == fallbackName {
		return fallback(), true
	}
	return Policy{}, false
}

// policyFor returns the policy the alarm was raised under. When it is gone (a
// reload renamed it) or was never set, the alarm is routed by today's rules and
// a.Policy says so, so every later decision uses the same one.
func (r *Router) policyFor(a *vakt.Alarm, env *Env) Policy {
	if p, ok := r.byName(a.Policy); ok {
		return p
	}
	p := r.PolicyAt(a.Kind, env.Origin, env.Now)
	a.Policy = p.Name
	return p
}

func hasARC(p *Policy) bool {
	for _, t := range p.Tiers {
		if t.Target == TargetARC {
			return true
		}
	}
	return false
}

// count is how many a nearest tier keeps offered at once.
func (t *Tier) count() int {
	if t.Count > 0 {
		return t.Count
	}
	return 1
}

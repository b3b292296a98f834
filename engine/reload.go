package engine

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	vakt "github.com/vakt/vakt"
	"github.com/vakt/vakt/routing"
)

// LiveConfig is the part of the configuration that a reload (SIGHUP) applies while
// the gateway runs: the people of the configuration file, the transmitter registry
// (with supervision) and the routing policies. Everything else needs a restart and
// never reaches the engine.
type LiveConfig struct {
	// Router replaces the routing policies; nil keeps the current one. Open alarms
	// keep their current deadline; their later steps follow the new policy of the
	// same name (routing re-routes an alarm whose policy is gone).
	Router *routing.Router
	// Transmitters is the whole new registry.
	Transmitters []vakt.Transmitter
	// Directory is the whole new staff list of the configuration file.
	Directory []vakt.Staff
	// InitialStaff and PinnedPositions are the demo's starting state; applied only
	// to people with no live state yet, as at a start.
	InitialStaff    []vakt.StaffState
	PinnedPositions map[vakt.StaffID]vakt.Position
	// Policies says the policies changed (audited; Router carries them).
	Policies bool
	// Restart lists the changed keys that were not applied and need a restart;
	// they are audited with the reload.
	Restart []string
	// Digest names the file read (e.g. "sha256:<hex>", as config.loaded at a
	// start), written first in the audit subject.
	Digest string
}

// ConfigChange is what a reload changed, ids only.
type ConfigChange struct {
	StaffAdded, StaffChanged []vakt.StaffID
	// StaffUnlisted are no longer in the file: as after a restart they keep their
	// directory entry, which the cloud's feed may now change, and may be erased.
	StaffUnlisted                                               []vakt.StaffID
	TransmittersAdded, TransmittersChanged, TransmittersRemoved []vakt.TransmitterID
	Policies                                                    bool
	Restart                                                     []string
	// Registry is the transmitter registry now in force: the new one, plus any
	// removed transmitter that still has an open alarm (its room stays known
	// until the alarm ends; dropped at the next reload or start after that).
	Registry []vakt.Transmitter
}

// Summary is the change as one line, ids only: the subject of the audit entry.
func (c ConfigChange) Summary() string {
	var parts []string
	add := func(name string, ids []string) {
		if len(ids) > 0 {
			parts = append(parts, name+"="+strings.Join(ids, ","))
		}
	}
	add("staff+", toStrings(c.StaffAdded))
	add("staff~", toStrings(c.StaffChanged))
	add("staff-unlisted", toStrings(c.StaffUnlisted))
	add("transmitters+", toStrings(c.TransmittersAdded))
	add("transmitters~", toStrings(c.TransmittersChanged))
	add("transmitters-", toStrings(c.TransmittersRemoved))
	if c.Policies {
		parts = append(parts, "policies")
	}
	add("restart", c.Restart)
	if len(parts) == 0 {
		return "unchanged"
	}
	return strings.Join(parts, " ")
}

func toStrings[T ~string](ids []T) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = string(id)
	}
	return out
}

// Audit actions of a configuration reload.
const (
	AuditConfigReloaded = "config.reloaded"
	AuditConfigRestart  = "config.needs-restart"
	AuditConfigRefused  = "config.reload_refused"
)

// ApplyConfig applies a reloaded configuration as one engine operation and one
// commit, with actor actor: the changed directory entries are written (a person
// whose secret changed is logged out, as when the cloud changes it), people new
// to the file get the demo's starting state, the registry and supervision are
// swapped (a transmitter newly supervised, or with a new period, gets a full
// period from now, as at a start), the router is replaced. Open alarms, visits
// and phone sessions are untouched. The reload is audited "config.reloaded" with
// the summary as subject, and each key that needs a restart "config.needs-restart".
//
// The rules of the directory stay those of a start: the file's entries win over
// the cloud's feed (configStaff reads the new list from now on); a person no
// longer in the file keeps the stored entry; nobody erased comes back unless the
// file lists them again.
func (e *Engine) ApplyConfig(ctx context.Context, actor string, c LiveConfig) (ConfigChange, error) {
	for i, d := range c.Directory {
		if d.ID == "" {
			return ConfigChange{}, fmt.Errorf("apply config: staff %d has no id", i)
		}
	}
	for i, t := range c.Transmitters {
		if t.ID == "" {
			return ConfigChange{}, fmt.Errorf("apply config: transmitter %d has no id", i)
		}
	}
	return do(ctx, e, func(e *Engine, b *vakt.Batch, now time.Time) (ConfigChange, error) {
		var ch ConfigChange
		e.reloadStaff(b, &ch, c, now)
		e.reloadTransmitters(&ch, c.Transmitters)
		if c.Router != nil {
			e.opt.Router = c.Router
			ch.Policies = c.Policies
		}
		ch.Restart = slices.Clone(c.Restart)
		subject := "config:" + ch.Summary()
		if c.Digest != "" {
			subject = "config:" + c.Digest + " " + ch.Summary()
		}
		b.Audit = append(b.Audit, vakt.AuditRecord{At: now, Actor: actor, Action: AuditConfigReloaded, Subject: subject})
		for _, k := range ch.Restart {
			b.Audit = append(b.Audit, vakt.AuditRecord{At: now, Actor: actor, Action: AuditConfigRestart, Subject: "config:" + k})
		}
		e.view.built, e.view.order = time.Time{}, nil // the next view shows the new registry and people
		return ch, nil
	})
}

// RefuseConfig audits a reload refused because the new file has errors; nothing
// else changes. reason is written in the audit subject: keys and lines only.
func (e *Engine) RefuseConfig(ctx context.Context, actor, reason string) error {
	if reason == "" {
		return errors.New("refuse config: empty reason")
	}
	_, err := do(ctx, e, func(e *Engine, b *vakt.Batch, now time.Time) (struct{}, error) {
		b.Audit = append(b.Audit, vakt.AuditRecord{At: now, Actor: actor, Action: AuditConfigRefused, Subject: "config:" + reason})
		return struct{}{}, nil
	})
	return err
}

func (e *Engine) reloadStaff(b *vakt.Batch, ch *ConfigChange, c LiveConfig, now time.Time) {
	s := e.st
	listed := make(map[vakt.StaffID]bool, len(c.Directory))
	for _, d := range c.Directory {
		listed[d.ID] = true
		old, had := s.directory[d.ID]
		if had && sameStaff(old, d) {
			continue
		}
		if had {
			ch.StaffChanged = append(ch.StaffChanged, d.ID)
		} else {
			ch.StaffAdded = append(ch.StaffAdded, d.ID)
		}
		if had && old.SecretHash != d.SecretHash {
			// A new secret: whoever logged in with the old one is logged out, as
			// when the cloud changes it.
			id := d.ID
			b.SessionsEnded = append(b.SessionsEnded, id)
			e.pending = append(e.pending, func(err error) {
				if err == nil {
					e.opt.Notifier.Notify(id, vakt.Notice{Type: vakt.NoticeRevoked})
				}
			})
		}
		d.Roles = slices.Clone(d.Roles)
		s.directory[d.ID] = d
		b.Directory = append(b.Directory, d)
		s.peopleDirty = true
	}
	for _, d := range e.opt.Directory {
		if !listed[d.ID] {
			ch.StaffUnlisted = append(ch.StaffUnlisted, d.ID)
		}
	}
	for _, init := range c.InitialStaff {
		if _, ok := s.staff[init.Staff]; ok || !listed[init.Staff] {
			continue
		}
		e.startInitial(b, init, now)
		s.peopleDirty = true
	}
	e.opt.Directory = slices.Clone(c.Directory)
	e.opt.InitialStaff = slices.Clone(c.InitialStaff)
	e.opt.PinnedPositions = maps.Clone(c.PinnedPositions)
	s.opt.PinnedPositions = e.opt.PinnedPositions
	s.peopleDirty = true // the pins are indexed by the routing view's people
	slices.Sort(ch.StaffAdded)
	slices.Sort(ch.StaffChanged)
	slices.Sort(ch.StaffUnlisted)
}

func (e *Engine) reloadTransmitters(ch *ConfigChange, list []vakt.Transmitter) {
	s := e.st
	now := e.opt.Clock.Now()
	next := make(map[vakt.TransmitterID]vakt.Transmitter, len(list))
	for _, t := range list {
		t.PrimaryContacts = slices.Clone(t.PrimaryContacts)
		next[t.ID] = t
		old, had := s.transmitters[t.ID]
		switch {
		case !had:
			ch.TransmittersAdded = append(ch.TransmittersAdded, t.ID)
		case !sameTransmitter(old, t):
			ch.TransmittersChanged = append(ch.TransmittersChanged, t.ID)
		}
		switch {
		case t.Supervision <= 0:
			delete(s.heard, t.ID)
		case !had || old.Supervision != t.Supervision:
			s.heard[t.ID] = now // a full period, as at a start
		}
	}
	withAlarm := map[vakt.TransmitterID]bool{}
	for _, a := range s.alarms {
		withAlarm[a.Transmitter] = true
	}
	registry := slices.Clone(list)
	for id, old := range s.transmitters {
		if _, ok := next[id]; ok {
			continue
		}
		ch.TransmittersRemoved = append(ch.TransmittersRemoved, id)
		delete(s.heard, id) // a removed device is no longer supervised
		if withAlarm[id] {
			old.Supervision = 0
			next[id] = old
			registry = append(registry, old)
		}
	}
	s.transmitters = next
	e.opt.Transmitters = registry
	ch.Registry = slices.Clone(registry)
	slices.Sort(ch.TransmittersAdded)
	slices.Sort(ch.TransmittersChanged)
	slices.Sort(ch.TransmittersRemoved)
}

func sameTransmitter(a, b vakt.Transmitter) bool {
	return a.ID == b.ID && a.Kind == b.Kind && a.Driver == b.Driver && a.Address == b.Address &&
		a.Location == b.Location && a.Resident == b.Resident && a.Supervision == b.Supervision &&
		slices.Equal(a.PrimaryContacts, b.PrimaryContacts)
}

package sync

import (
	"encoding/json"

	"github.com/vakt/vakt/sync/wire"
)

// BacklogPolicy bounds the outbox while the cloud is away (R3). The outbox never
// drops nor refuses alarms, audit entries, visits or EPR records: those are the
// record of care. Transmitter health is a sample, and only the latest per
// transmitter matters, so it is what gives way.
type BacklogPolicy struct {
	// MaxEntries and MaxBytes are the configured cap (0 = no cap of that kind).
	MaxEntries int64
	MaxBytes   int64
	// Warn is the fraction of the cap at which a technical alarm is raised [0.8].
	Warn float64
}

// Backlog is what the outbox holds now.
type Backlog struct {
	Entries, Bytes int64
	// HealthEntries, HealthBytes are the health entries among them;
	// HealthTransmitters is how many distinct transmitters they are for.
	HealthEntries, HealthBytes int64
	HealthTransmitters         int64
}

// BacklogAction is what the store and the gateway should do about a backlog.
type BacklogAction struct {
	// CompactHealth: keep only the newest health entry per transmitter.
	CompactHealth bool
	// Warn: raise (or keep) the technical alarm "cloud backlog high".
	Warn bool
	// OverCap: even compacted the backlog exceeds the cap. Nothing is dropped; the
	// technical alarm says so ("cloud backlog over its cap; nothing lost yet").
	OverCap bool
}

// Decide applies the policy. It is pure: the store counts, Decide decides.
func (p BacklogPolicy) Decide(b Backlog) BacklogAction {
	warn := p.Warn
	if warn <= 0 || warn > 1 {
		warn = 0.8
	}
	over := func(n, limit int64, frac float64) bool {
		return limit > 0 && float64(n) >= frac*float64(limit)
	}
	var a BacklogAction
	// Compact from the warning level on, so the cap is reached as late as possible.
	if (over(b.Entries, p.MaxEntries, warn) || over(b.Bytes, p.MaxBytes, warn)) &&
		b.HealthEntries > b.HealthTransmitters {
		a.CompactHealth = true
	}
	entries, bytes := b.Entries, b.Bytes
	if a.CompactHealth {
		entries -= b.HealthEntries - b.HealthTransmitters
		if b.HealthEntries > 0 {
			bytes -= b.HealthBytes * (b.HealthEntries - b.HealthTransmitters) / b.HealthEntries
		}
	}
	a.Warn = over(entries, p.MaxEntries, warn) || over(bytes, p.MaxBytes, warn)
	a.OverCap = over(entries, p.MaxEntries, 1) || over(bytes, p.MaxBytes, 1)
	return a
}

// CompactHealth returns entries without the health entries that a newer health
// entry of the same transmitter supersedes; everything else stays, in order. It is
// the reference for the store's SQL version, and for in-memory outboxes.
func CompactHealth(entries []Entry) []Entry {
	newest := map[string]int64{}
	for _, e := range entries {
		if t, ok := healthTransmitter(e); ok {
			newest[t] = max(newest[t], e.Seq)
		}
	}
	out := entries[:0:0]
	for _, e := range entries {
		if t, ok := healthTransmitter(e); ok && newest[t] != e.Seq {
			continue
		}
		out = append(out, e)
	}
	return out
}

func healthTransmitter(e Entry) (string, bool) {
	if e.Kind != wire.KindHealth {
		return "", false
	}
	var h wire.Health
	if json.Unmarshal(e.Body, &h) != nil || h.Transmitter == "" {
		return "", false // unreadable: keep it, never guess
	}
	return h.Transmitter, true
}

// Package payload holds the JSON readers the MQTT dialects share: bounded parsing,
// lenient field readers and the low-battery hysteresis.
package payload

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"

	vakt "github.com/vakt/vakt"
	"github.com/vakt/vakt/drivers"
)

const (
	// MaxDepth bounds JSON nesting (S6). Device payloads nest at most 3 levels.
	MaxDepth = 8
	// DefaultLowBattery is the low-battery threshold in percent.
	DefaultLowBattery = 15
	// batteryHysteresis: a low-battery alarm re-arms only once the battery is reported
	// this many points above the threshold, so 14/15/14 readings raise it once.
	batteryHysteresis = 5
)

// Object parses a JSON object after bounding its depth.
func Object(p []byte) (map[string]json.RawMessage, error) {
	if !depthOK(p, MaxDepth) {
		return nil, fmt.Errorf("%w: unbalanced or nested deeper than %d", drivers.ErrMalformed, MaxDepth)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(p, &obj); err != nil || obj == nil {
		// The decoder's error may quote payload bytes: say only what was wrong.
		return nil, fmt.Errorf("%w: not a JSON object", drivers.ErrMalformed)
	}
	return obj, nil
}

// depthOK reports whether p nests arrays and objects at most limit deep and never
// closes more than it opened. It scans the bytes without parsing, so a hostile payload
// costs one pass before the JSON decoder sees it.
func depthOK(p []byte, limit int) bool {
	depth, inString, escaped := 0, false, false
	for _, c := range p {
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '{', '[':
			depth++
			if depth > limit {
				return false
			}
		case '}', ']':
			depth--
			if depth < 0 {
				return false
			}
		}
	}
	return true
}

// Lookup follows a dotted path through nested objects.
func Lookup(obj map[string]json.RawMessage, path string) json.RawMessage {
	if v, ok := obj[path]; ok {
		return v
	}
	for {
		head, tail, more := strings.Cut(path, ".")
		v, ok := obj[head]
		if !ok || !more {
			return v
		}
		var next map[string]json.RawMessage
		if json.Unmarshal(v, &next) != nil {
			return nil
		}
		obj, path = next, tail
	}
}

// Field readers: a member of the wrong type counts as absent, never as an error, so
// one odd field does not cost the supervision check-in.

// Str reads a JSON string.
func Str(v json.RawMessage) (string, bool) {
	var s string
	if len(v) == 0 || v[0] != '"' || json.Unmarshal(v, &s) != nil {
		return "", false
	}
	return s, true
}

// Bool reads a JSON boolean.
func Bool(v json.RawMessage) (value, ok bool) {
	switch string(v) {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	return false, false
}

// Scalar spells a string, number or boolean as a mapping's key.
func Scalar(v json.RawMessage) (string, bool) {
	if s, ok := Str(v); ok {
		return s, true
	}
	if _, ok := Bool(v); ok {
		return string(v), true
	}
	var f float64
	if len(v) > 0 && (v[0] == '-' || (v[0] >= '0' && v[0] <= '9')) && json.Unmarshal(v, &f) == nil {
		return string(v), true
	}
	return "", false
}

// Number reads a number within lo..hi, rounded.
func Number(v json.RawMessage, lo, hi float64) *int {
	var f float64
	if len(v) == 0 || json.Unmarshal(v, &f) != nil || math.IsNaN(f) || f < lo || f > hi {
		return nil
	}
	n := int(math.Round(f))
	return &n
}

// Percent reads a number within 0..100.
func Percent(v json.RawMessage) *int { return Number(v, 0, 100) }

// Battery tracks one device's low-battery alarm.
type Battery struct {
	// Threshold is the percentage below which the battery is low.
	Threshold int
	raised    bool // raised and not re-armed
}

// Report tracks the low-battery episode: raise once when the device reports low
// (its flag, or a level under the threshold); over (ok) whenever it reports a level
// at least batteryHysteresis above the threshold (or its flag false without a level),
// which also re-arms it. Retained messages neither raise nor end it: after a restart
// the first live report raises it again, which folds into the open technical alarm.
func (b *Battery) Report(level *int, low, lowReported, retained bool) (raise, ok bool) {
	if retained {
		return false, false
	}
	isLow := low || (level != nil && *level < b.Threshold)
	if isLow {
		raise := !b.raised
		b.raised = true
		return raise, false
	}
	if (lowReported || level != nil) && (level == nil || *level >= b.Threshold+batteryHysteresis) {
		b.raised = false
		return false, true
	}
	return false, false
}

// WithClears marks every event of a message with the conditions it reports over.
// Devices repeat tamper:false and the battery level in every message, so a healthy
// device says so each time: the engine closes an open alarm (even one raised before
// a restart, which the decoder no longer remembers) on the first.
func WithClears(evs []vakt.Event, clears []vakt.EventKind) []vakt.Event {
	if len(clears) == 0 {
		return evs
	}
	for i := range evs {
		evs[i].Clears = clears
	}
	return evs
}

// Threshold returns a configured low-battery percentage, or the default for 0.
func Threshold(configured int) (int, error) {
	if configured == 0 {
		return DefaultLowBattery, nil
	}
	if configured < 0 || configured > 100 {
		return 0, fmt.Errorf("low battery %d: must be a percentage", configured)
	}
	return configured, nil
}

// Events builds one event per distinct kind, or a single check-in when there is none.
// Every event carries the health the message reported.
func Events(kinds []vakt.EventKind, battery, link *int) []vakt.Event {
	if len(kinds) == 0 {
		kinds = []vakt.EventKind{vakt.EventCheckIn}
	}
	out := make([]vakt.Event, 0, len(kinds))
	seen := make(map[vakt.EventKind]bool, len(kinds))
	for _, k := range kinds {
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, vakt.Event{Kind: k, Battery: battery, LinkQuality: link})
	}
	return out
}

// Finish sets the transmitter and one shared copy of the payload on every event.
func Finish(id vakt.TransmitterID, payload []byte, events []vakt.Event) drivers.Result {
	raw := append([]byte(nil), payload...)
	for i := range events {
		events[i].Transmitter = id
		events[i].Raw = raw
	}
	return drivers.Result{Transmitter: id, Events: events}
}

// Oversize returns ErrOversize when payload exceeds max (0 = the default).
func Oversize(payload []byte, max int) error {
	if max == 0 {
		max = drivers.DefaultMaxPayload
	}
	if len(payload) > max {
		return fmt.Errorf("%w: %d bytes, limit %d", drivers.ErrOversize, len(payload), max)
	}
	return nil
}

// Package z2m decodes MQTT messages from Zigbee2MQTT, and from other MQTT devices through
// a small JSON mapping, into vakt events. It does no I/O: drivers/mqtt feeds it one
// message at a time, in the order the broker delivered them, and acknowledges what it
// returns once the events are committed.
//
// The decoder remembers each configured device's last reported state, because Z2M
// repeats a device's whole state in every message ({"sos":false,...} after a press,
// periodic reports with "action":""): only a transition (sos, occupancy, water_leak,
// tamper false→true; contact true→false) or a mapped action is an alarm. Every message
// from a known device is at least a check-in, for supervision. Retained messages are
// state delivered at (re)subscribe, never presses: they teach the decoder the current
// state and yield a check-in only.
package z2m

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"

	vakt "github.com/vakt/vakt"
)

// Defaults applied when the corresponding setting is zero.
const (
	DefaultBaseTopic  = "zigbee2mqtt"
	DefaultMaxPayload = 4096 // Z2M state payloads are a few hundred bytes
	DefaultLowBattery = 15   // percent
	// MaxDepth bounds JSON nesting (S6). Z2M payloads nest at most 3 levels.
	MaxDepth = 8
	// batteryHysteresis: a low-battery alarm re-arms only once the battery is reported
	// this many points above the threshold, so 14/15/14 readings raise it once.
	batteryHysteresis = 5
)

// Rejections. Each is returned wrapped with a short reason that never quotes the payload.
var (
	ErrMalformed = errors.New("z2m: malformed payload")
	ErrUnknown   = errors.New("z2m: unknown device")
	ErrOversize  = errors.New("z2m: payload too large")
)

// Device is one configured transmitter reachable over MQTT.
type Device struct {
	ID vakt.TransmitterID
	// Topic is the full state topic: "<base>/<friendly name>" for Zigbee2MQTT (the
	// friendly name may contain '/'), or any topic (no wildcards) for a generic device.
	Topic string
	// Generic, when set, decodes the device through a JSON mapping instead of as a
	// Zigbee2MQTT device.
	Generic *Mapping
	// Actions maps a Z2M "action" value to an event kind, overriding the defaults
	// (see DefaultActions). Mapping an action to vakt.EventCheckIn silences it.
	Actions map[string]vakt.EventKind
	// LowBattery is the percentage below which a low-battery technical alarm is
	// raised (0 = DefaultLowBattery).
	LowBattery int
}

// Mapping says what a generic device's JSON means.
type Mapping struct {
	// Field is the member holding the event, a dotted path for nested objects
	// ("input.event"). Empty means the whole payload is the value (plain-text devices).
	Field string
	// Values maps the field's value (strings as they are, numbers and booleans in their
	// JSON spelling) to an event kind. Unlisted values are check-ins.
	Values map[string]vakt.EventKind
	// BatteryField is the member (dotted path) holding the battery percentage, if any;
	// JSON payloads only.
	BatteryField string
}

// DefaultActions is how a Z2M "action" value is read unless a device's Actions say
// otherwise. Any other non-empty action is a check-in: a button we do not understand
// must be configured, not guessed.
var DefaultActions = map[string]vakt.EventKind{
	"emergency": vakt.EventEmergency,
	"sos":       vakt.EventEmergency,
	"hold":      vakt.EventEmergency,
	"long":      vakt.EventEmergency,
	"single":    vakt.EventCall,
	"press":     vakt.EventCall,
	"click":     vakt.EventCall,
	"on":        vakt.EventCall,
	"double":    vakt.EventAssist,
	"off":       vakt.EventCheckIn,
	"release":   vakt.EventCheckIn,
	"":          vakt.EventCheckIn,
}

// Result is what one message meant.
type Result struct {
	// Ignored is set for topics the gateway deliberately does not read: the Z2M
	// bridge's other topics (bridge/state is read: see BridgeTransmitter), and
	// commands sent to a known device (<friendly>/set, /get, /action).
	Ignored bool
	// Transmitter is the device the message came from (empty when Ignored).
	Transmitter vakt.TransmitterID
	// Events has at least one event unless Ignored. Transmitter, Kind, Raw (one copy
	// of the payload, shared by the message's events) and the health fields are set;
	// the driver fills in Source, SourceID and times.
	Events []vakt.Event
}

// Decoder turns messages into events. It is safe for concurrent use, but transitions
// are only meaningful when messages are decoded in the order they were delivered.
type Decoder struct {
	base       string
	maxPayload int

	mu      sync.Mutex
	devices map[string]*device // by full topic
}

type device struct {
	Device
	lowBattery int

	// Last reported state, learnt from live and retained messages alike. The zero
	// value is "inactive": a first live sos:true is a press.
	active    map[string]bool // trigger field → active
	lowRaised bool            // a low-battery alarm was raised and has not re-armed
}

// NewDecoder validates the device table. base is the Z2M base topic ("" =
// DefaultBaseTopic); maxPayload bounds a payload in bytes (0 = DefaultMaxPayload).
func NewDecoder(base string, devices []Device, maxPayload int) (*Decoder, error) {
	if base == "" {
		base = DefaultBaseTopic
	}
	if strings.ContainsAny(base, "+#\x00") || strings.HasSuffix(base, "/") {
		return nil, fmt.Errorf("base topic %q: no wildcards and no trailing '/'", base)
	}
	if maxPayload == 0 {
		maxPayload = DefaultMaxPayload
	}
	if maxPayload < 0 {
		return nil, fmt.Errorf("max payload %d: must be positive", maxPayload)
	}
	d := &Decoder{base: base, maxPayload: maxPayload, devices: make(map[string]*device, len(devices))}
	for i, dev := range devices {
		if err := d.add(dev); err != nil {
			return nil, fmt.Errorf("devices[%d] (%s): %w", i, dev.ID, err)
		}
	}
	return d, nil
}

func (d *Decoder) add(dev Device) error {
	if dev.ID == "" {
		return errors.New("empty id")
	}
	if dev.Topic == "" || strings.ContainsAny(dev.Topic, "+#\x00") {
		return fmt.Errorf("topic %q: must be set, without wildcards", dev.Topic)
	}
	if _, dup := d.devices[dev.Topic]; dup {
		return fmt.Errorf("topic %q: used by another device", dev.Topic)
	}
	if dev.Generic == nil {
		friendly, ok := strings.CutPrefix(dev.Topic, d.base+"/")
		if !ok || friendly == "" {
			return fmt.Errorf("topic %q: a Zigbee2MQTT device's topic is %s/<friendly name>", dev.Topic, d.base)
		}
		if friendly == "bridge" || strings.HasPrefix(friendly, "bridge/") {
			return fmt.Errorf("topic %q: the bridge is not a device", dev.Topic)
		}
		last := friendly[strings.LastIndexByte(friendly, '/')+1:]
		switch last {
		case "availability", "set", "get", "action":
			return fmt.Errorf("topic %q: friendly name may not end in /%s (Z2M uses it)", dev.Topic, last)
		}
	} else {
		if len(dev.Generic.Values) == 0 {
			return errors.New("mapping: no values")
		}
		for v, k := range dev.Generic.Values {
			if !validKind(k) {
				return fmt.Errorf("mapping: value %q: unknown event kind %q", v, k)
			}
		}
	}
	for a, k := range dev.Actions {
		if !validKind(k) {
			return fmt.Errorf("actions: %q: unknown event kind %q", a, k)
		}
	}
	low := dev.LowBattery
	if low == 0 {
		low = DefaultLowBattery
	}
	if low < 0 || low > 100 {
		return fmt.Errorf("low battery %d: must be a percentage", dev.LowBattery)
	}
	d.devices[dev.Topic] = &device{Device: dev, lowBattery: low, active: map[string]bool{}}
	return nil
}

func validKind(k vakt.EventKind) bool {
	switch k {
	case vakt.EventCall, vakt.EventAssist, vakt.EventEmergency, vakt.EventFall,
		vakt.EventSensor, vakt.EventDoor, vakt.EventCancel, vakt.EventPresence,
		vakt.EventCheckIn, vakt.EventLowBattery, vakt.EventTamper, vakt.EventOffline:
		return true
	}
	return false
}

// Topics returns the subscriptions the decoder needs: "<base>/#" and every generic
// device topic outside it.
func (d *Decoder) Topics() []string {
	topics := []string{d.base + "/#"}
	for t, dev := range d.devices {
		if dev.Generic != nil && !strings.HasPrefix(t, d.base+"/") {
			topics = append(topics, t)
		}
	}
	return topics
}

// Decode decides what one message means. retained is the MQTT retain flag as
// delivered (set only for messages replayed at subscribe). A rejection wraps
// ErrMalformed, ErrUnknown or ErrOversize.
func (d *Decoder) Decode(topic string, payload []byte, retained bool) (Result, error) {
	d.mu.Lock()
	defer d.mu.Unlock()

	dev, kind := d.route(topic)
	if kind == routeIgnore {
		return Result{Ignored: true}, nil
	}
	if kind == routeBridge {
		if len(payload) > d.maxPayload {
			return Result{}, fmt.Errorf("%w: %d bytes, limit %d", ErrOversize, len(payload), d.maxPayload)
		}
		events, err := bridgeState(payload)
		if err != nil {
			return Result{}, err
		}
		id, raw := BridgeTransmitter(d.base), bytes.Clone(payload)
		for i := range events {
			events[i].Transmitter, events[i].Raw = id, raw
		}
		return Result{Transmitter: id, Events: events}, nil
	}
	if len(payload) > d.maxPayload {
		return Result{}, fmt.Errorf("%w: %d bytes, limit %d", ErrOversize, len(payload), d.maxPayload)
	}
	if dev == nil {
		return Result{}, ErrUnknown
	}
	var (
		events []vakt.Event
		err    error
	)
	switch kind {
	case routeAvailability:
		events, err = availability(payload)
	case routeGeneric:
		events, err = dev.generic(payload, retained)
	default:
		events, err = dev.state(payload, retained)
	}
	if err != nil {
		return Result{}, err
	}
	raw := bytes.Clone(payload)
	for i := range events {
		events[i].Transmitter = dev.ID
		events[i].Raw = raw
	}
	return Result{Transmitter: dev.ID, Events: events}, nil
}

type route int

const (
	routeState route = iota
	routeGeneric
	routeAvailability
	routeBridge
	routeIgnore
)

func (d *Decoder) route(topic string) (*device, route) {
	if dev, ok := d.devices[topic]; ok {
		if dev.Generic != nil {
			return dev, routeGeneric
		}
		return dev, routeState
	}
	rest, ok := strings.CutPrefix(topic, d.base+"/")
	if !ok {
		return nil, routeState // unknown
	}
	if rest == "bridge/state" {
		return nil, routeBridge
	}
	if rest == "bridge" || strings.HasPrefix(rest, "bridge/") {
		return nil, routeIgnore
	}
	if friendly, ok := strings.CutSuffix(rest, "/availability"); ok {
		if dev, ok := d.devices[d.base+"/"+friendly]; ok && dev.Generic == nil {
			return dev, routeAvailability
		}
	}
	// Commands to a known device (<friendly>/set[/attr], /get[/attr]) and Z2M's
	// optional <friendly>/action topic, which repeats the state message's action.
	for i := len(topic) - 1; i > len(d.base); i-- {
		if topic[i] != '/' {
			continue
		}
		if _, ok := d.devices[topic[:i]]; !ok {
			continue
		}
		switch sub := topic[i+1:]; {
		case sub == "set", sub == "get", sub == "action",
			strings.HasPrefix(sub, "set/"), strings.HasPrefix(sub, "get/"):
			return nil, routeIgnore
		}
	}
	return nil, routeState
}

// availability reads <base>/<friendly>/availability: {"state":"online"} since Z2M
// 2.0, the bare string before. Offline is raised every time it is reported (Z2M
// reports changes only; repeats fold into the open technical alarm); it is never a
// check-in, which would hide the silence from supervision.
func availability(payload []byte) ([]vakt.Event, error) {
	p := bytes.TrimSpace(payload)
	state := string(p)
	if len(p) > 0 && p[0] == '{' {
		obj, err := object(p)
		if err != nil {
			return nil, err
		}
		s, ok := str(obj["state"])
		if !ok {
			return nil, fmt.Errorf("%w: availability without state", ErrMalformed)
		}
		state = s
	}
	switch {
	case strings.EqualFold(state, "online"):
		return []vakt.Event{{Kind: vakt.EventCheckIn}}, nil
	case strings.EqualFold(state, "offline"):
		return []vakt.Event{{Kind: vakt.EventOffline}}, nil
	}
	return nil, fmt.Errorf("%w: availability neither online nor offline", ErrMalformed)
}

// triggers are the Z2M state fields whose transition into the active value raises.
var triggers = []struct {
	field  string
	active bool
	kind   vakt.EventKind
}{
	{"sos", true, vakt.EventEmergency},
	{"occupancy", true, vakt.EventSensor},
	{"water_leak", true, vakt.EventSensor},
	{"contact", false, vakt.EventDoor}, // false = opened
	{"tamper", true, vakt.EventTamper},
}

func (dev *device) state(payload []byte, retained bool) ([]vakt.Event, error) {
	obj, err := object(payload)
	if err != nil {
		return nil, err
	}
	var kinds []vakt.EventKind
	if a, ok := str(obj["action"]); ok {
		k, ok := dev.Actions[a]
		if !ok {
			k, ok = DefaultActions[a]
		}
		if ok && k != vakt.EventCheckIn {
			kinds = append(kinds, k)
		}
	}
	var clears []vakt.EventKind
	for _, tr := range triggers {
		v, ok := boolean(obj[tr.field])
		if !ok {
			continue
		}
		now := v == tr.active
		if now && !dev.active[tr.field] {
			kinds = append(kinds, tr.kind)
		}
		dev.active[tr.field] = now
		if !now && tr.kind.Technical() && !retained {
			clears = append(clears, tr.kind) // tamper closed again
		}
	}
	battery := percent(obj["battery"])
	low, lowReported := boolean(obj["battery_low"])
	raise, ok := dev.battery(battery, low, lowReported, retained)
	if raise {
		kinds = append(kinds, vakt.EventLowBattery)
	}
	if ok {
		clears = append(clears, vakt.EventLowBattery)
	}
	if retained {
		kinds = nil
	}
	return withClears(events(kinds, battery, number(obj["linkquality"], 0, 255)), clears), nil
}

// withClears marks every event of a message with the conditions it reports over.
// Z2M repeats tamper:false and the battery level in every state message, so a
// healthy device says so each time: the engine closes an open alarm (even one
// raised before a restart, which the decoder no longer remembers) on the first.
func withClears(evs []vakt.Event, clears []vakt.EventKind) []vakt.Event {
	if len(clears) == 0 {
		return evs
	}
	for i := range evs {
		evs[i].Clears = clears
	}
	return evs
}

// bridgeState reads <base>/bridge/state: the Zigbee2MQTT bridge itself going offline
// (its last will) silences every Zigbee device at once, so it is a technical alarm
// of its own on the pseudo-transmitter BridgeTransmitter(base); "online" closes it.
func bridgeState(payload []byte) ([]vakt.Event, error) {
	return availability(payload)
}

// BridgeTransmitter is the pseudo-transmitter the bridge state of base is reported on.
func BridgeTransmitter(base string) vakt.TransmitterID {
	return vakt.TransmitterID(base + "-bridge")
}

// battery tracks the low-battery episode: raised once when the device reports
// battery_low or a level under the threshold; over (ok) whenever it reports a level
// at least batteryHysteresis above the threshold (or battery_low:false without a
// level), which also re-arms it. Retained messages neither raise nor end it: after a
// restart the first live report raises it again, which folds into the open
// technical alarm.
func (dev *device) battery(level *int, low, lowReported, retained bool) (raise, ok bool) {
	if retained {
		return false, false
	}
	isLow := low || (level != nil && *level < dev.lowBattery)
	if isLow {
		raise := !dev.lowRaised
		dev.lowRaised = true
		return raise, false
	}
	if (lowReported || level != nil) && (level == nil || *level >= dev.lowBattery+batteryHysteresis) {
		dev.lowRaised = false
		return false, true
	}
	return false, false
}

func (dev *device) generic(payload []byte, retained bool) ([]vakt.Event, error) {
	m := dev.Generic
	var (
		value   string
		valueOK bool
		battery *int
	)
	if m.Field == "" {
		// Plain-text device: the payload (or the JSON string it holds) is the value.
		p := bytes.TrimSpace(payload)
		if value, valueOK = str(p); !valueOK {
			value, valueOK = string(p), true
		}
	} else {
		obj, err := object(payload)
		if err != nil {
			return nil, err
		}
		value, valueOK = scalar(lookup(obj, m.Field))
		if m.BatteryField != "" {
			battery = percent(lookup(obj, m.BatteryField))
		}
	}
	var kinds []vakt.EventKind
	if k, ok := m.Values[value]; ok && valueOK && k != vakt.EventCheckIn {
		kinds = append(kinds, k)
	}
	raise, ok := dev.battery(battery, false, false, retained)
	if raise {
		kinds = append(kinds, vakt.EventLowBattery)
	}
	if retained {
		kinds = nil
	}
	var clears []vakt.EventKind
	if ok {
		clears = []vakt.EventKind{vakt.EventLowBattery}
	}
	return withClears(events(kinds, battery, nil), clears), nil
}

// events builds one event per distinct kind, or a single check-in when there is none.
// Every event carries the health the message reported.
func events(kinds []vakt.EventKind, battery, link *int) []vakt.Event {
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

// object parses a JSON object after bounding its depth.
func object(p []byte) (map[string]json.RawMessage, error) {
	if !depthOK(p, MaxDepth) {
		return nil, fmt.Errorf("%w: unbalanced or nested deeper than %d", ErrMalformed, MaxDepth)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(p, &obj); err != nil || obj == nil {
		// The decoder's error may quote payload bytes: say only what was wrong.
		return nil, fmt.Errorf("%w: not a JSON object", ErrMalformed)
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

// lookup follows a dotted path through nested objects.
func lookup(obj map[string]json.RawMessage, path string) json.RawMessage {
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

func str(v json.RawMessage) (string, bool) {
	var s string
	if len(v) == 0 || v[0] != '"' || json.Unmarshal(v, &s) != nil {
		return "", false
	}
	return s, true
}

func boolean(v json.RawMessage) (value, ok bool) {
	switch string(v) {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	return false, false
}

// scalar spells a string, number or boolean as the mapping's Values key.
func scalar(v json.RawMessage) (string, bool) {
	if s, ok := str(v); ok {
		return s, true
	}
	if _, ok := boolean(v); ok {
		return string(v), true
	}
	var f float64
	if len(v) > 0 && (v[0] == '-' || (v[0] >= '0' && v[0] <= '9')) && json.Unmarshal(v, &f) == nil {
		return string(v), true
	}
	return "", false
}

func number(v json.RawMessage, lo, hi float64) *int {
	var f float64
	if len(v) == 0 || json.Unmarshal(v, &f) != nil || math.IsNaN(f) || f < lo || f > hi {
		return nil
	}
	n := int(math.Round(f))
	return &n
}

func percent(v json.RawMessage) *int { return number(v, 0, 100) }

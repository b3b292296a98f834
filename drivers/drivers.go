// Package drivers is the registry of transmitter protocols. A protocol is one folder
// (drivers/<name>) that registers itself in init() with Register; the gateway and the
// configuration look drivers up by the name a transmitter's "driver:" key gives, so a
// new device family is that folder plus one line in drivers/all.
//
// Two kinds of driver exist. Every driver describes its transmitters (Driver: its own
// per-transmitter options, their defaults and their validation, reported by key path).
// A Dialect is, in addition, a payload dialect carried over MQTT: drivers/mqtt owns the
// broker connection and hands each message to the dialects, and imports none of them.
//
// The registry is the package's only state; a driver instance holds its own, so
// several gateways (tests) can run in one process.
package drivers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	vakt "github.com/vakt/vakt"
)

// Rejections of a dialect. Each is returned wrapped with a short reason that never
// quotes the payload.
var (
	ErrMalformed = errors.New("drivers: malformed payload")
	ErrUnknown   = errors.New("drivers: unknown device")
	ErrOversize  = errors.New("drivers: payload too large")
)

// DefaultMaxPayload bounds an MQTT payload unless the configuration says otherwise.
const DefaultMaxPayload = 4096

// EventKinds are what a device's action or value may be configured to mean.
var EventKinds = []vakt.EventKind{
	vakt.EventCall, vakt.EventAssist, vakt.EventEmergency, vakt.EventFall,
	vakt.EventSensor, vakt.EventDoor, vakt.EventCancel, vakt.EventPresence, vakt.EventCheckIn,
}

// ValidKind reports whether a decoder may produce k: a configurable kind or a
// technical one.
func ValidKind(k vakt.EventKind) bool {
	switch k {
	case vakt.EventLowBattery, vakt.EventTamper, vakt.EventOffline:
		return true
	}
	return slices.Contains(EventKinds, k)
}

// UnknownKind reports the first value of m (sorted by key, so the message is
// stable) that is no event kind: the decoders' own check when a device is added
// (CheckKinds is the configuration's, with key paths).
func UnknownKind(key string, m map[string]vakt.EventKind) error {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		if !ValidKind(m[n]) {
			return fmt.Errorf("%s: %q: unknown event kind %q", key, n, m[n])
		}
	}
	return nil
}

// Settings are the MQTT connection's settings that dialects may need.
type Settings struct {
	// BaseTopic is Zigbee2MQTT's base topic (drivers.mqtt.base_topic).
	BaseTopic string
	// MaxPayload bounds a payload in bytes (0 = DefaultMaxPayload).
	MaxPayload int
}

// Device is one configured transmitter, as its driver sees it.
type Device struct {
	ID      vakt.TransmitterID
	Address string
	// LowBattery is the percentage below which a low-battery alarm is raised (0 = the
	// driver's default).
	LowBattery int
	// Options is the value the driver's Options returned, filled from the
	// transmitter's own keys (nil for a driver without options).
	Options any
}

// Report records one configuration problem at a key path relative to the transmitter
// ("address", "actions.hold", `mapping.values["x y"]`; see Key and Index).
type Report func(path, format string, args ...any)

// Driver describes one transmitter protocol.
type Driver interface {
	// Options returns a new pointer to the driver's per-transmitter options struct
	// (fields with yaml tags, written beside id, kind and address in the
	// transmitter), or nil when the driver has none.
	Options() any
	// AddressHint says what the address key holds, for "required" messages.
	AddressHint() string
	// Check validates one transmitter: its address and options. It opens nothing.
	Check(dev Device, report Report)
}

// Dialect is a driver whose devices publish over MQTT. An instance serves every
// transmitter configured with its name; drivers/mqtt asks each dialect in turn.
type Dialect interface {
	Driver
	// Topic is the MQTT topic a transmitter publishes to, for duplicate checks.
	Topic(dev Device) string
	// Add configures one transmitter (Check has passed). It opens nothing.
	Add(dev Device) error
	// Topics returns the subscriptions the dialect needs.
	Topics() []string
	// Decode decides what one message means. retained is the MQTT retain flag. A
	// topic the dialect does not serve is ErrUnknown; other rejections wrap
	// ErrMalformed or ErrOversize. Messages are decoded in delivery order; Decode
	// must be safe for concurrent use.
	Decode(topic string, payload []byte, retained bool) (Result, error)
}

// Source is a transport the gateway runs: the MQTT connection, a serial port. New
// (the package's constructor) validates and opens nothing, so sources are built before
// the engine; Start receives the Ingester and owns the connections from then on.
type Source interface {
	// Name identifies the source in logs and errors ("mqtt", "serial nurse-call").
	Name() string
	// Start connects and starts handing events to in. It returns once the source runs
	// or ctx ends: ctx bounds the wait, not the source's life. A source that cannot
	// reach its device yet returns ctx's error and keeps trying in the background.
	Start(ctx context.Context, in vakt.Ingester) error
	// Stop ends the source and waits for it. Safe to call on a source never started.
	Stop() error
}

// Result is what one message meant.
type Result struct {
	// Ignored is set for topics the dialect deliberately does not read (a bridge's
	// own topics, commands to a device).
	Ignored bool
	// Transmitter is the device the message came from (empty when Ignored).
	Transmitter vakt.TransmitterID
	// Events has at least one event unless Ignored. Transmitter, Kind, Raw and the
	// health fields are set; the transport fills in Source, SourceID and times.
	Events []vakt.Event
}

// Factory builds a new, unconfigured driver instance.
type Factory func(Settings) Driver

var registry struct {
	mu sync.RWMutex
	m  map[string]Factory
}

// Register makes a driver available under name, the value of a transmitter's
// "driver:" key. It is called from init(); a name registered twice panics.
func Register(name string, f Factory) {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	if name == "" || f == nil {
		panic("drivers: Register needs a name and a factory")
	}
	if registry.m == nil {
		registry.m = map[string]Factory{}
	}
	if _, dup := registry.m[name]; dup {
		panic(fmt.Sprintf("drivers: %q registered twice", name))
	}
	registry.m[name] = f
}

// Lookup returns the factory registered under name.
func Lookup(name string) (Factory, bool) {
	registry.mu.RLock()
	defer registry.mu.RUnlock()
	f, ok := registry.m[name]
	return f, ok
}

// Names returns the registered names, sorted.
func Names() []string {
	registry.mu.RLock()
	defer registry.mu.RUnlock()
	names := make([]string, 0, len(registry.m))
	for n := range registry.m {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Key appends a mapping key to a key path; keys that are not plain names are
// quoted: Key("actions", "hold") = "actions.hold", Key("actions", "") = `actions[""]`.
func Key(path, key string) string {
	plain := key != ""
	for _, r := range key {
		if !(r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			plain = false
			break
		}
	}
	switch {
	case !plain:
		return path + "[" + strconv.Quote(key) + "]"
	case path == "":
		return key
	default:
		return path + "." + key
	}
}

// Index appends a list index to a key path.
func Index(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

// Quote quotes s for an error message, shortened so one line stays one line.
func Quote(s string) string {
	const max = 60
	if r := []rune(s); len(r) > max {
		s = string(r[:max]) + "…"
	}
	return strconv.Quote(s)
}

// CheckKinds validates a configured value → event kind table at path.
func CheckKinds(path string, m map[string]string, report Report) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	names := make([]string, len(EventKinds))
	for i, k := range EventKinds {
		names[i] = string(k)
	}
	list := strings.Join(names, ", ")
	for _, k := range keys {
		p, kind := Key(path, k), m[k]
		switch {
		case k == "":
			report(p, "an empty value cannot be mapped")
		case kind == "":
			report(p, "required: the event kind, one of %s", list)
		case !slices.Contains(EventKinds, vakt.EventKind(kind)):
			report(p, "unknown event kind %s; use one of %s", Quote(kind), list)
		}
	}
}

// Kinds converts a checked value → event kind table.
func Kinds(m map[string]string) map[string]vakt.EventKind {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]vakt.EventKind, len(m))
	for k, v := range m {
		out[k] = vakt.EventKind(v)
	}
	return out
}

// TopicProblem describes what is wrong with an MQTT topic (or, with filter, a topic
// filter that may hold + and #), or returns "".
func TopicProblem(topic string, filter bool) string {
	switch {
	case topic == "":
		return "an empty topic"
	case strings.ContainsRune(topic, 0):
		return "a topic cannot contain a NUL character"
	case strings.HasPrefix(topic, "/") || strings.HasSuffix(topic, "/"):
		return fmt.Sprintf("%s: a topic does not start or end with /", Quote(topic))
	case strings.Contains(topic, "//"):
		return fmt.Sprintf("%s: empty topic level (//)", Quote(topic))
	case strings.HasPrefix(topic, "$"):
		return fmt.Sprintf("%s: topics starting with $ belong to the broker", Quote(topic))
	}
	levels := strings.Split(topic, "/")
	for i, l := range levels {
		if !strings.ContainsAny(l, "+#") {
			continue
		}
		if !filter {
			return fmt.Sprintf("%s: + and # are wildcards; give the exact topic", Quote(topic))
		}
		if !(l == "+" || l == "#" && i == len(levels)-1) {
			return fmt.Sprintf("%s: + and # must fill a whole level, and # must be last", Quote(topic))
		}
	}
	return ""
}

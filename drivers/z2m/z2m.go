// Package z2m is the Zigbee2MQTT dialect (driver name "zigbee2mqtt"): it decodes the
// state messages Zigbee2MQTT publishes for each device into vakt events. It does no
// I/O: drivers/mqtt feeds it one message at a time, in the order the broker delivered
// them, and acknowledges what it returns once the events are committed.
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
	"errors"
	"fmt"
	"strings"
	"sync"

	vakt "github.com/vakt/vakt"
	"github.com/vakt/vakt/drivers"
	"github.com/vakt/vakt/drivers/internal/payload"
)

// Name is the driver name transmitters give in "driver:".
const Name = "zigbee2mqtt"

func init() {
	drivers.Register(Name, func(s drivers.Settings) drivers.Driver { return newDecoder(s) })
}

// Defaults applied when the corresponding setting is zero.
const (
	DefaultBaseTopic  = "zigbee2mqtt"
	DefaultMaxPayload = drivers.DefaultMaxPayload // Z2M state payloads are a few hundred bytes
	DefaultLowBattery = payload.DefaultLowBattery // percent
	// MaxDepth bounds JSON nesting (S6). Z2M payloads nest at most 3 levels.
	MaxDepth = payload.MaxDepth
)

// Rejections, shared by every dialect.
var (
	ErrMalformed = drivers.ErrMalformed
	ErrUnknown   = drivers.ErrUnknown
	ErrOversize  = drivers.ErrOversize
)

// Options are a Zigbee2MQTT transmitter's own keys.
type Options struct {
	// Actions maps a Zigbee2MQTT "action" value to an event kind (call, emergency,
	// cancel, ...), overriding the defaults.
	Actions map[string]string `yaml:"actions"`
}

// Device is one configured Zigbee2MQTT transmitter.
type Device struct {
	ID vakt.TransmitterID
	// Topic is the full state topic: "<base>/<friendly name>" (the friendly name may
	// contain '/').
	Topic string
	// Actions maps a Z2M "action" value to an event kind, overriding the defaults
	// (see DefaultActions). Mapping an action to vakt.EventCheckIn silences it.
	Actions map[string]vakt.EventKind
	// LowBattery is the percentage below which a low-battery technical alarm is
	// raised (0 = DefaultLowBattery).
	LowBattery int
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
type Result = drivers.Result

// Decoder turns messages into events; it is the Zigbee2MQTT drivers.Dialect. It is
// safe for concurrent use, but transitions are only meaningful when messages are
// decoded in the order they were delivered.
type Decoder struct {
	base       string
	maxPayload int

	mu      sync.Mutex
	devices map[string]*device // by full topic
}

type device struct {
	Device
	battery payload.Battery

	// Last reported state, learnt from live and retained messages alike. The zero
	// value is "inactive": a first live sos:true is a press.
	active map[string]bool // trigger field → active
}

func newDecoder(s drivers.Settings) *Decoder {
	if s.BaseTopic == "" {
		s.BaseTopic = DefaultBaseTopic
	}
	if s.MaxPayload == 0 {
		s.MaxPayload = DefaultMaxPayload
	}
	return &Decoder{base: s.BaseTopic, maxPayload: s.MaxPayload, devices: map[string]*device{}}
}

// NewDecoder validates the device table. base is the Z2M base topic ("" =
// DefaultBaseTopic); maxPayload bounds a payload in bytes (0 = DefaultMaxPayload).
func NewDecoder(base string, devices []Device, maxPayload int) (*Decoder, error) {
	if strings.ContainsAny(base, "+#\x00") || strings.HasSuffix(base, "/") {
		return nil, fmt.Errorf("base topic %q: no wildcards and no trailing '/'", base)
	}
	if maxPayload < 0 {
		return nil, fmt.Errorf("max payload %d: must be positive", maxPayload)
	}
	d := newDecoder(drivers.Settings{BaseTopic: base, MaxPayload: maxPayload})
	for i, dev := range devices {
		if err := d.add(dev); err != nil {
			return nil, fmt.Errorf("devices[%d] (%s): %w", i, dev.ID, err)
		}
	}
	return d, nil
}

// Options returns a new *Options.
func (d *Decoder) Options() any { return new(Options) }

// AddressHint describes the address key.
func (d *Decoder) AddressHint() string {
	return "the device's Zigbee2MQTT friendly name, e.g. \"room101/sos\""
}

// Check validates a transmitter's friendly name and actions.
func (d *Decoder) Check(dev drivers.Device, report drivers.Report) {
	switch a := dev.Address; {
	case a == "bridge" || strings.HasPrefix(a, "bridge/"):
		report("address", "%s is Zigbee2MQTT's own bridge topic, not a device", drivers.Quote(a))
	default:
		if msg := drivers.TopicProblem(a, false); msg != "" {
			report("address", "%s", msg)
		}
	}
	if o, ok := dev.Options.(*Options); ok && o != nil {
		drivers.CheckKinds("actions", o.Actions, report)
	}
}

// Topic is <base>/<friendly name>.
func (d *Decoder) Topic(dev drivers.Device) string { return d.base + "/" + dev.Address }

// Add configures one transmitter.
func (d *Decoder) Add(dev drivers.Device) error {
	zd := Device{ID: dev.ID, Topic: d.Topic(dev), LowBattery: dev.LowBattery}
	if o, ok := dev.Options.(*Options); ok && o != nil {
		zd.Actions = drivers.Kinds(o.Actions)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.add(zd)
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
	if err := drivers.UnknownKind("actions", dev.Actions); err != nil {
		return err
	}
	low, err := payload.Threshold(dev.LowBattery)
	if err != nil {
		return err
	}
	d.devices[dev.Topic] = &device{Device: dev, battery: payload.Battery{Threshold: low}, active: map[string]bool{}}
	return nil
}

// Topics returns the one subscription the dialect needs: "<base>/#".
func (d *Decoder) Topics() []string { return []string{d.base + "/#"} }

// Decode decides what one message means. retained is the MQTT retain flag as
// delivered (set only for messages replayed at subscribe). A rejection wraps
// ErrMalformed, ErrUnknown or ErrOversize.
func (d *Decoder) Decode(topic string, p []byte, retained bool) (Result, error) {
	d.mu.Lock()
	defer d.mu.Unlock()

	dev, kind := d.route(topic)
	if kind == routeIgnore {
		return Result{Ignored: true}, nil
	}
	if kind == routeOutside {
		return Result{}, ErrUnknown
	}
	if kind == routeBridge {
		if err := payload.Oversize(p, d.maxPayload); err != nil {
			return Result{}, err
		}
		events, err := availability(p)
		if err != nil {
			return Result{}, err
		}
		return payload.Finish(BridgeTransmitter(d.base), p, events), nil
	}
	if err := payload.Oversize(p, d.maxPayload); err != nil {
		return Result{}, err
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
		events, err = availability(p)
	default:
		events, err = dev.state(p, retained)
	}
	if err != nil {
		return Result{}, err
	}
	return payload.Finish(dev.ID, p, events), nil
}

type route int

const (
	routeState route = iota
	routeAvailability
	routeBridge
	routeIgnore
	routeOutside // not under the base topic
)

func (d *Decoder) route(topic string) (*device, route) {
	if dev, ok := d.devices[topic]; ok {
		return dev, routeState
	}
	rest, ok := strings.CutPrefix(topic, d.base+"/")
	if !ok {
		return nil, routeOutside
	}
	if rest == "bridge/state" {
		return nil, routeBridge
	}
	if rest == "bridge" || strings.HasPrefix(rest, "bridge/") {
		return nil, routeIgnore
	}
	if friendly, ok := strings.CutSuffix(rest, "/availability"); ok {
		if dev, ok := d.devices[d.base+"/"+friendly]; ok {
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
func availability(msg []byte) ([]vakt.Event, error) {
	p := bytes.TrimSpace(msg)
	state := string(p)
	if len(p) > 0 && p[0] == '{' {
		obj, err := payload.Object(p)
		if err != nil {
			return nil, err
		}
		s, ok := payload.Str(obj["state"])
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

func (dev *device) state(p []byte, retained bool) ([]vakt.Event, error) {
	obj, err := payload.Object(p)
	if err != nil {
		return nil, err
	}
	var kinds []vakt.EventKind
	if a, ok := payload.Str(obj["action"]); ok {
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
		v, ok := payload.Bool(obj[tr.field])
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
	battery := payload.Percent(obj["battery"])
	low, lowReported := payload.Bool(obj["battery_low"])
	raise, ok := dev.battery.Report(battery, low, lowReported, retained)
	if raise {
		kinds = append(kinds, vakt.EventLowBattery)
	}
	if ok {
		clears = append(clears, vakt.EventLowBattery)
	}
	if retained {
		kinds = nil
	}
	return payload.WithClears(payload.Events(kinds, battery, payload.Number(obj["linkquality"], 0, 255)), clears), nil
}

// BridgeTransmitter is the pseudo-transmitter the bridge state of base is reported
// on: <base>/bridge/state going offline (the bridge's last will) silences every
// Zigbee device at once, so it is a technical alarm of its own; "online" closes it.
func BridgeTransmitter(base string) vakt.TransmitterID {
	return vakt.TransmitterID(base + "-bridge")
}

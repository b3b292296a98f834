// Package shelly is the dialect of Shelly buttons' own MQTT messages (driver name
// "shelly"), with no mapping to write: Gen1 devices (Shelly Button1, i3) publish
// shellies/<id>/input_event/<n> {"event":"S","event_cnt":7}, shellies/<id>/sensor/battery
// and shellies/<id>/online; Gen2+ devices (Plus i4, BLU gateways' buttons) publish
// JSON-RPC notifications on <prefix>/events/rpc, a NotifyEvent with
// params.events[].event single_push, double_push, triple_push or long_push.
//
// A transmitter's address is the device's topic prefix: "shellies/<id>" for Gen1,
// the configured prefix (by default the device id) for Gen2. Every input of the device
// raises for that transmitter. Presses are events, not state: each one is an alarm,
// except a Gen1 event whose event_cnt repeats the last one seen (the device
// republishes its last event when it reconnects). Retained messages are check-ins.
package shelly

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"

	vakt "github.com/vakt/vakt"
	"github.com/vakt/vakt/drivers"
	"github.com/vakt/vakt/drivers/internal/payload"
)

// Name is the driver name transmitters give in "driver:".
const Name = "shelly"

func init() {
	drivers.Register(Name, func(s drivers.Settings) drivers.Driver { return New(s) })
}

// DefaultEvents is how a press is read unless a transmitter's events say otherwise;
// Gen1 letters and Gen2 names alike. Unlisted events (btn_down, btn_up, triple
// presses) are check-ins: a gesture nobody configured is not guessed.
var DefaultEvents = map[string]vakt.EventKind{
	"S": vakt.EventCall, "single_push": vakt.EventCall,
	"SS": vakt.EventAssist, "double_push": vakt.EventAssist,
	"L": vakt.EventEmergency, "long_push": vakt.EventEmergency,
}

// Options are a Shelly transmitter's own keys.
type Options struct {
	// Events maps a press (S, SS, SSS, L, single_push, double_push, triple_push,
	// long_push, ...) to an event kind, overriding DefaultEvents; check-in silences one.
	Events map[string]string `yaml:"events"`
}

// Dialect decodes Shelly messages; it is safe for concurrent use.
type Dialect struct {
	maxPayload int

	mu      sync.Mutex
	devices map[string]*device // by topic prefix
}

type device struct {
	id      vakt.TransmitterID
	events  map[string]vakt.EventKind
	battery payload.Battery
	lastCnt map[string]int64 // Gen1 input → last event_cnt seen live
}

// New returns a dialect with no devices.
func New(s drivers.Settings) *Dialect {
	return &Dialect{maxPayload: s.MaxPayload, devices: map[string]*device{}}
}

// Options returns a new *Options.
func (d *Dialect) Options() any { return new(Options) }

// AddressHint describes the address key.
func (d *Dialect) AddressHint() string {
	return "the device's topic prefix, e.g. \"shellies/shellybutton1-A4CF12F45ABC\" (Gen1) or \"shellyplusi4-a8032ab12345\" (Gen2)"
}

// Check validates the prefix and the events table.
func (d *Dialect) Check(dev drivers.Device, report drivers.Report) {
	if msg := drivers.TopicProblem(dev.Address, false); msg != "" {
		report("address", "%s", msg)
	} else if suffix(dev.Address) != "" {
		report("address", "%s names one of the device's topics; give its prefix (without /input_event/..., /events/rpc, ...)", drivers.Quote(dev.Address))
	}
	if o, ok := dev.Options.(*Options); ok && o != nil {
		drivers.CheckKinds("events", o.Events, report)
	}
}

// Topic is the prefix: one transmitter per device.
func (d *Dialect) Topic(dev drivers.Device) string { return dev.Address }

// Add configures one device.
func (d *Dialect) Add(dev drivers.Device) error {
	if dev.ID == "" {
		return errors.New("empty id")
	}
	if dev.Address == "" || strings.ContainsAny(dev.Address, "+#\x00") || strings.HasSuffix(dev.Address, "/") {
		return fmt.Errorf("prefix %q: must be set, without wildcards or a trailing /", dev.Address)
	}
	events := maps.Clone(DefaultEvents)
	if o, ok := dev.Options.(*Options); ok && o != nil {
		maps.Copy(events, drivers.Kinds(o.Events))
	}
	if err := drivers.UnknownKind("events", events); err != nil {
		return err
	}
	low, err := payload.Threshold(dev.LowBattery)
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, dup := d.devices[dev.Address]; dup {
		return fmt.Errorf("prefix %q: used by another device", dev.Address)
	}
	d.devices[dev.Address] = &device{id: dev.ID, events: events, battery: payload.Battery{Threshold: low}, lastCnt: map[string]int64{}}
	return nil
}

// Topics returns each device's four topics.
func (d *Dialect) Topics() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var topics []string
	for p := range d.devices {
		topics = append(topics, p+"/input_event/+", p+"/events/rpc", p+"/sensor/battery", p+"/online")
	}
	return topics
}

// suffix returns the kind of device topic, or "".
func suffix(topic string) string {
	switch {
	case strings.HasSuffix(topic, "/events/rpc"):
		return "rpc"
	case strings.HasSuffix(topic, "/sensor/battery"):
		return "battery"
	case strings.HasSuffix(topic, "/online"):
		return "online"
	}
	if i := strings.LastIndex(topic, "/input_event/"); i >= 0 && !strings.Contains(topic[i+len("/input_event/"):], "/") {
		return "input"
	}
	return ""
}

// Decode decides what one message means.
func (d *Dialect) Decode(topic string, p []byte, retained bool) (drivers.Result, error) {
	kind := suffix(topic)
	var prefix, input string
	switch kind {
	case "rpc":
		prefix = strings.TrimSuffix(topic, "/events/rpc")
	case "battery":
		prefix = strings.TrimSuffix(topic, "/sensor/battery")
	case "online":
		prefix = strings.TrimSuffix(topic, "/online")
	case "input":
		i := strings.LastIndex(topic, "/input_event/")
		prefix, input = topic[:i], topic[i+len("/input_event/"):]
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	dev, ok := d.devices[prefix]
	if kind == "" || !ok {
		return drivers.Result{}, drivers.ErrUnknown
	}
	if err := payload.Oversize(p, d.maxPayload); err != nil {
		return drivers.Result{}, err
	}
	var (
		kinds   []vakt.EventKind
		battery *int
		err     error
	)
	switch kind {
	case "input":
		kinds, err = dev.gen1(input, p, retained)
	case "rpc":
		kinds, battery, err = dev.gen2(p)
	case "battery":
		if battery = payload.Percent(bytes.TrimSpace(p)); battery == nil {
			err = fmt.Errorf("%w: battery is not a percentage", drivers.ErrMalformed)
		}
	case "online":
		switch string(bytes.TrimSpace(p)) {
		case "true":
		case "false":
			kinds = []vakt.EventKind{vakt.EventOffline}
		default:
			err = fmt.Errorf("%w: online is neither true nor false", drivers.ErrMalformed)
		}
	}
	if err != nil {
		return drivers.Result{}, err
	}
	raise, ok := dev.battery.Report(battery, false, false, retained)
	if raise {
		kinds = append(kinds, vakt.EventLowBattery)
	}
	if retained {
		kinds = slicesOffline(kinds)
	}
	var clears []vakt.EventKind
	if ok {
		clears = []vakt.EventKind{vakt.EventLowBattery}
	}
	return payload.Finish(dev.id, p, payload.WithClears(payload.Events(kinds, battery, nil), clears)), nil
}

// slicesOffline keeps only an offline report: a retained "online: false" (the
// device's last will) is still true when the gateway subscribes.
func slicesOffline(kinds []vakt.EventKind) []vakt.EventKind {
	for _, k := range kinds {
		if k == vakt.EventOffline {
			return []vakt.EventKind{vakt.EventOffline}
		}
	}
	return nil
}

// gen1 reads {"event":"S","event_cnt":7}.
func (dev *device) gen1(input string, p []byte, retained bool) ([]vakt.EventKind, error) {
	obj, err := payload.Object(p)
	if err != nil {
		return nil, err
	}
	ev, ok := payload.Str(obj["event"])
	if !ok {
		return nil, fmt.Errorf("%w: input_event without event", drivers.ErrMalformed)
	}
	var cnt int64
	if c := obj["event_cnt"]; len(c) > 0 {
		if json.Unmarshal(c, &cnt) != nil {
			return nil, fmt.Errorf("%w: event_cnt is not a whole number", drivers.ErrMalformed)
		}
		last, seen := dev.lastCnt[input]
		if !retained {
			dev.lastCnt[input] = cnt
		}
		if seen && last == cnt {
			return nil, nil // the device repeating its last event
		}
	}
	if k, ok := dev.events[ev]; ok && k != vakt.EventCheckIn {
		return []vakt.EventKind{k}, nil
	}
	return nil, nil
}

// gen2 reads a JSON-RPC notification: NotifyEvent's params.events[].event, and the
// battery a NotifyStatus or NotifyFullStatus carries in devicepower:0.
func (dev *device) gen2(p []byte) ([]vakt.EventKind, *int, error) {
	obj, err := payload.Object(p)
	if err != nil {
		return nil, nil, err
	}
	method, _ := payload.Str(obj["method"])
	params, err := payload.Object(obj["params"])
	if err != nil {
		return nil, nil, fmt.Errorf("%w: notification without params", drivers.ErrMalformed)
	}
	var battery *int
	if power, ok := params["devicepower:0"]; ok {
		if pw, err := payload.Object(power); err == nil {
			if b, err := payload.Object(pw["battery"]); err == nil {
				battery = payload.Percent(b["percent"])
			}
		}
	}
	if method != "NotifyEvent" {
		return nil, battery, nil // NotifyStatus, NotifyFullStatus: health only
	}
	var events []struct {
		Event string `json:"event"`
	}
	if err := json.Unmarshal(params["events"], &events); err != nil {
		return nil, nil, fmt.Errorf("%w: NotifyEvent without an events list", drivers.ErrMalformed)
	}
	var kinds []vakt.EventKind
	for _, e := range events {
		if k, ok := dev.events[e.Event]; ok && k != vakt.EventCheckIn {
			kinds = append(kinds, k)
		}
	}
	return kinds, battery, nil
}

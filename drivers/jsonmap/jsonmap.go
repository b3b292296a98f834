// Package jsonmap is the generic JSON dialect (driver name "mqtt"): a device that
// publishes JSON (or plain text) to a topic of its own, read through a small mapping
// of which field and values mean what. It does no I/O; drivers/mqtt feeds it.
//
// A mapped value is an alarm every time it arrives (such devices report events, not
// state); every other message from a known device is a check-in, for supervision.
// Retained messages yield a check-in only.
package jsonmap

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
const Name = "mqtt"

func init() {
	drivers.Register(Name, func(s drivers.Settings) drivers.Driver { return New(s) })
}

// Options are a generic transmitter's own keys.
type Options struct {
	Mapping *Mapping `yaml:"mapping"`
}

// Mapping says what a generic device's JSON means.
type Mapping struct {
	// Field is the member holding the event, a dotted path for nested objects
	// ("input.event"). Empty means the whole payload is the value (plain-text devices).
	Field string `yaml:"field"`
	// Values maps the field's value (strings as they are, numbers and booleans in their
	// JSON spelling) to an event kind. Unlisted values are check-ins.
	Values map[string]string `yaml:"values"`
	// BatteryField is the member (dotted path) holding the battery percentage, if any;
	// JSON payloads only.
	BatteryField string `yaml:"battery_field"`
}

// Dialect decodes generic devices; it is safe for concurrent use.
type Dialect struct {
	maxPayload int

	mu      sync.Mutex
	devices map[string]*device // by topic
}

type device struct {
	id      vakt.TransmitterID
	m       Mapping
	values  map[string]vakt.EventKind
	battery payload.Battery
}

// New returns a dialect with no devices.
func New(s drivers.Settings) *Dialect {
	return &Dialect{maxPayload: s.MaxPayload, devices: map[string]*device{}}
}

// Options returns a new *Options.
func (d *Dialect) Options() any { return new(Options) }

// AddressHint describes the address key.
func (d *Dialect) AddressHint() string { return "the MQTT topic the device publishes to" }

// Check validates the topic and the mapping.
func (d *Dialect) Check(dev drivers.Device, report drivers.Report) {
	if msg := drivers.TopicProblem(dev.Address, false); msg != "" {
		report("address", "%s", msg)
	}
	o, _ := dev.Options.(*Options)
	if o == nil || o.Mapping == nil {
		report("mapping", "required for driver mqtt: which JSON field and values mean what, e.g. field: event, values: {S: call}")
		return
	}
	if o.Mapping.Field == "" {
		report("mapping.field", "required: the JSON field that carries the event, e.g. %q", "event")
	}
	drivers.CheckKinds("mapping.values", o.Mapping.Values, report)
}

// Topic is the address itself.
func (d *Dialect) Topic(dev drivers.Device) string { return dev.Address }

// Add configures one device.
func (d *Dialect) Add(dev drivers.Device) error {
	o, _ := dev.Options.(*Options)
	switch {
	case dev.ID == "":
		return errors.New("empty id")
	case dev.Address == "" || strings.ContainsAny(dev.Address, "+#\x00"):
		return fmt.Errorf("topic %q: must be set, without wildcards", dev.Address)
	case o == nil || o.Mapping == nil || len(o.Mapping.Values) == 0:
		return errors.New("mapping: no values")
	}
	values := drivers.Kinds(o.Mapping.Values)
	if err := drivers.UnknownKind("mapping.values", values); err != nil {
		return err
	}
	low, err := payload.Threshold(dev.LowBattery)
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, dup := d.devices[dev.Address]; dup {
		return fmt.Errorf("topic %q: used by another device", dev.Address)
	}
	d.devices[dev.Address] = &device{id: dev.ID, m: *o.Mapping, values: values, battery: payload.Battery{Threshold: low}}
	return nil
}

// Topics returns every device's topic.
func (d *Dialect) Topics() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	topics := make([]string, 0, len(d.devices))
	for t := range d.devices {
		topics = append(topics, t)
	}
	return topics
}

// Decode decides what one message means.
func (d *Dialect) Decode(topic string, p []byte, retained bool) (drivers.Result, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	dev, ok := d.devices[topic]
	if !ok {
		return drivers.Result{}, drivers.ErrUnknown
	}
	if err := payload.Oversize(p, d.maxPayload); err != nil {
		return drivers.Result{}, err
	}
	var (
		value   string
		valueOK bool
		battery *int
	)
	if dev.m.Field == "" {
		// Plain-text device: the payload (or the JSON string it holds) is the value.
		t := bytes.TrimSpace(p)
		if value, valueOK = payload.Str(t); !valueOK {
			value, valueOK = string(t), true
		}
	} else {
		obj, err := payload.Object(p)
		if err != nil {
			return drivers.Result{}, err
		}
		value, valueOK = payload.Scalar(payload.Lookup(obj, dev.m.Field))
		if dev.m.BatteryField != "" {
			battery = payload.Percent(payload.Lookup(obj, dev.m.BatteryField))
		}
	}
	var kinds []vakt.EventKind
	if k, ok := dev.values[value]; ok && valueOK && k != vakt.EventCheckIn {
		kinds = append(kinds, k)
	}
	raise, ok := dev.battery.Report(battery, false, false, retained)
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
	return payload.Finish(dev.id, p, payload.WithClears(payload.Events(kinds, battery, nil), clears)), nil
}

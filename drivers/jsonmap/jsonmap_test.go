package jsonmap_test

import (
	"errors"
	"slices"
	"testing"

	vakt "github.com/vakt/vakt"
	"github.com/vakt/vakt/drivers"
	"github.com/vakt/vakt/drivers/jsonmap"
)

type msg struct {
	topic    string
	payload  string
	retained bool
	want     []vakt.EventKind
	err      error
}

var (
	alarm = func(k vakt.EventKind) []vakt.EventKind { return []vakt.EventKind{k} }
	check = []vakt.EventKind{vakt.EventCheckIn}
)

func dialect(t *testing.T, devs ...drivers.Device) *jsonmap.Dialect {
	t.Helper()
	d := jsonmap.New(drivers.Settings{})
	for _, dev := range devs {
		if err := d.Add(dev); err != nil {
			t.Fatalf("%s: %v", dev.ID, err)
		}
	}
	return d
}

func mapping(field, battery string, values map[string]string) *jsonmap.Options {
	return &jsonmap.Options{Mapping: &jsonmap.Mapping{Field: field, BatteryField: battery, Values: values}}
}

func run(t *testing.T, d *jsonmap.Dialect, msgs []msg) {
	t.Helper()
	for i, m := range msgs {
		res, err := d.Decode(m.topic, []byte(m.payload), m.retained)
		if m.err != nil || err != nil {
			if !errors.Is(err, m.err) {
				t.Errorf("step %d %s %s: err %v, want %v", i, m.topic, m.payload, err, m.err)
			}
			continue
		}
		var got []vakt.EventKind
		for _, ev := range res.Events {
			got = append(got, ev.Kind)
		}
		if !slices.Equal(got, m.want) {
			t.Errorf("step %d %s %s retained=%v: %v, want %v", i, m.topic, m.payload, m.retained, got, m.want)
		}
	}
}

func TestMapping(t *testing.T) {
	d := dialect(t,
		drivers.Device{ID: "nested", Address: "vendor/dev1", LowBattery: 30, Options: mapping("input.state", "power.battery",
			map[string]string{"1": "call", "true": "fall", "reset": "cancel"})},
		drivers.Device{ID: "plain", Address: "tasmota/button/POWER", Options: mapping("", "", map[string]string{"ON": "call", "OFF": "cancel"})},
		drivers.Device{ID: "under-base", Address: "zigbee2mqtt/vendor/thing", Options: mapping("alarm", "", map[string]string{"panic": "emergency"})},
	)
	run(t, d, []msg{
		{topic: "vendor/dev1", payload: `{"input":{"state":1},"power":{"battery":80}}`, want: alarm(vakt.EventCall)},
		{topic: "vendor/dev1", payload: `{"input":{"state":true}}`, want: alarm(vakt.EventFall)},
		{topic: "vendor/dev1", payload: `{"input":{"state":"reset"}}`, want: alarm(vakt.EventCancel)},
		{topic: "vendor/dev1", payload: `{"input":{"state":0}}`, want: check},
		{topic: "vendor/dev1", payload: `{"input":"flat"}`, want: check},
		{topic: "vendor/dev1", payload: `{"power":{"battery":29}}`, want: alarm(vakt.EventLowBattery)},
		{topic: "vendor/dev1", payload: `{"power":{"battery":28}}`, want: check},
		{topic: "vendor/dev1", payload: `{"input":{"state":1},"power":{"battery":27}}`, want: alarm(vakt.EventCall)},
		{topic: "vendor/dev1", payload: `{"input":`, err: drivers.ErrMalformed},
		{topic: "tasmota/button/POWER", payload: `ON`, want: alarm(vakt.EventCall)},
		{topic: "tasmota/button/POWER", payload: `"OFF"`, want: alarm(vakt.EventCancel)},
		{topic: "tasmota/button/POWER", payload: `TOGGLE`, want: check},
		{topic: "tasmota/button/POWER", payload: `ON`, retained: true, want: check},
		{topic: "zigbee2mqtt/vendor/thing", payload: `{"alarm":"panic"}`, want: alarm(vakt.EventEmergency)},
		{topic: "elsewhere", payload: `{}`, err: drivers.ErrUnknown},
	})
	topics := d.Topics()
	slices.Sort(topics)
	if want := []string{"tasmota/button/POWER", "vendor/dev1", "zigbee2mqtt/vendor/thing"}; !slices.Equal(topics, want) {
		t.Errorf("topics %v, want %v", topics, want)
	}
}

func TestAddValidates(t *testing.T) {
	good := mapping("f", "", map[string]string{"1": "call"})
	for name, dev := range map[string]drivers.Device{
		"empty id":       {Address: "x/a", Options: good},
		"wildcard":       {ID: "a", Address: "x/+", Options: good},
		"no mapping":     {ID: "a", Address: "x/a"},
		"no values":      {ID: "a", Address: "x/a", Options: mapping("f", "", nil)},
		"bad value kind": {ID: "a", Address: "x/a", Options: mapping("f", "", map[string]string{"1": "nope"})},
		"battery range":  {ID: "a", Address: "x/a", LowBattery: 101, Options: good},
	} {
		if err := jsonmap.New(drivers.Settings{}).Add(dev); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	d := jsonmap.New(drivers.Settings{})
	if err := d.Add(drivers.Device{ID: "a", Address: "x/a", Options: good}); err != nil {
		t.Fatal(err)
	}
	if err := d.Add(drivers.Device{ID: "b", Address: "x/a", Options: good}); err == nil {
		t.Error("duplicate topic accepted")
	}
}

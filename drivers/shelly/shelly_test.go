package shelly_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	vakt "github.com/vakt/vakt"
	"github.com/vakt/vakt/config"
	"github.com/vakt/vakt/drivers"
	"github.com/vakt/vakt/drivers/shelly"
)

const gen1 = "shellies/shellybutton1-A4CF12F45ABC"

func kinds(t *testing.T, d *shelly.Dialect, topic, payload string, retained bool) []vakt.EventKind {
	t.Helper()
	res, err := d.Decode(topic, []byte(payload), retained)
	if err != nil {
		t.Fatalf("%s %s: %v", topic, payload, err)
	}
	var ks []vakt.EventKind
	for _, ev := range res.Events {
		ks = append(ks, ev.Kind)
	}
	return ks
}

func TestRepeatsAndRetained(t *testing.T) {
	d := shelly.New(drivers.Settings{})
	if err := d.Add(drivers.Device{ID: "b", Address: gen1}); err != nil {
		t.Fatal(err)
	}
	check := []vakt.EventKind{vakt.EventCheckIn}
	call := []vakt.EventKind{vakt.EventCall}
	steps := []struct {
		topic, payload string
		retained       bool
		want           []vakt.EventKind
	}{
		// Retained state at subscribe is no press, and does not teach the count.
		{gen1 + "/input_event/0", `{"event":"S","event_cnt":5}`, true, check},
		{gen1 + "/input_event/0", `{"event":"S","event_cnt":6}`, false, call},
		{gen1 + "/input_event/0", `{"event":"S","event_cnt":6}`, false, check}, // republished
		{gen1 + "/input_event/1", `{"event":"S","event_cnt":6}`, false, call},  // another input counts apart
		{gen1 + "/input_event/0", `{"event":"S","event_cnt":7}`, false, call},
		{gen1 + "/input_event/0", `{"event":"S"}`, false, call}, // firmware without a count
		// A retained last will still means the device is gone.
		{gen1 + "/online", `false`, true, []vakt.EventKind{vakt.EventOffline}},
	}
	for i, s := range steps {
		if got := kinds(t, d, s.topic, s.payload, s.retained); !slices.Equal(got, s.want) {
			t.Errorf("step %d %s %s: %v, want %v", i, s.topic, s.payload, got, s.want)
		}
	}
	for _, topic := range []string{gen1 + "/input/0", gen1 + "/command", "shellies/other/online"} {
		if _, err := d.Decode(topic, []byte(`1`), false); !errors.Is(err, drivers.ErrUnknown) {
			t.Errorf("%s: %v, want unknown", topic, err)
		}
	}
}

// TestConfig: the real loader reads a Shelly transmitter's events and reports its
// mistakes by key path and line.
func TestConfig(t *testing.T) {
	const yaml = `site: {id: s, demo: true}
zones: [{id: east}]
transmitters:
  - id: a
    kind: button
    driver: shelly
    address: shellies/shellybutton1-A4CF12F45ABC/input_event/0
    zone: east
    events: {L: panic}
  - id: b
    kind: button
    driver: shelly
    address: shellyplusi4-a8032ab12345
    zone: east
    mapping: {field: event}
drivers:
  mqtt: {enabled: true, url: "tcp://127.0.0.1:1883"}
`
	_, err := config.Parse([]byte(yaml), "")
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{
		`transmitters[0].address: "shellies/shellybutton1-A4CF12F45ABC/input_event/0" names one of the device's topics; give its prefix`,
		`transmitters[0].events.L: unknown event kind "panic"`,
		`transmitters[1].mapping: mapping is for driver mqtt; driver shelly does not use it (line 15)`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
}

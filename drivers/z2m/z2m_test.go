package z2m_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	vakt "github.com/vakt/vakt"
	"github.com/vakt/vakt/drivers/z2m"
	"github.com/vakt/vakt/internal/shared"
)

// devices is the table the golden file's expectations assume.
func devices() []z2m.Device {
	return []z2m.Device{
		{ID: "room101-sos", Topic: "zigbee2mqtt/room101/sos"},
		{ID: "room102-sos", Topic: "zigbee2mqtt/room102/sos"},
		{ID: "room103-button", Topic: "zigbee2mqtt/room103/button",
			Actions: map[string]vakt.EventKind{"single": vakt.EventCall, "hold": vakt.EventEmergency}},
		{ID: "room104-bed", Topic: "zigbee2mqtt/room104/bed"},
		{ID: "exit-door", Topic: "zigbee2mqtt/exit/door"},
	}
}

func newDecoder(t testing.TB) *z2m.Decoder {
	t.Helper()
	d, err := z2m.NewDecoder("zigbee2mqtt", devices(), 0)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

type goldenLine struct {
	Topic   string `json:"topic"`
	Payload string `json:"payload"`
	Expect  string `json:"expect"`
	Device  string `json:"device"`
}

// goldenMessages reads testdata/messages.jsonl, the Zigbee2MQTT lines of
// ../shared/testdata/zigbee2mqtt/messages.jsonl (TestGoldenMatchesShared keeps them equal).
func goldenMessages(t testing.TB) []goldenLine {
	t.Helper()
	var lines []goldenLine
	for n, raw := range readLines(t, filepath.Join("testdata", "messages.jsonl")) {
		var l goldenLine
		if err := json.Unmarshal(raw, &l); err != nil {
			t.Fatalf("testdata/messages.jsonl:%d: %v", n+1, err)
		}
		lines = append(lines, l)
	}
	if len(lines) == 0 {
		t.Fatal("testdata/messages.jsonl: no messages")
	}
	return lines
}

// superseded updates a shared vector whose expectation changed here before the
// shared file did: since issue 10 the bridge's own state is the availability of the
// pseudo-transmitter zigbee2mqtt-bridge, so "online" is a check-in, not ignored.
// Once ../shared says "checkin" this is a no-op.
func superseded(l []byte) []byte {
	const old = `{"topic":"zigbee2mqtt/bridge/state","payload":"{\"state\":\"online\"}","expect":"ignore","device":"bridge"}`
	if string(l) == old {
		return bytes.Replace(l, []byte(`"expect":"ignore"`), []byte(`"expect":"checkin"`), 1)
	}
	return l
}

func readLines(t testing.TB, path string) [][]byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for l := range bytes.Lines(data) {
		if l = bytes.TrimSpace(l); len(l) > 0 {
			out = append(out, l)
		}
	}
	return out
}

// TestGoldenMatchesShared: every vector here is still one of the shared folder's,
// and every Zigbee2MQTT one there is here. Silent without the shared folder.
func TestGoldenMatchesShared(t *testing.T) {
	dir, ok := shared.Lookup("testdata", "zigbee2mqtt")
	if !ok {
		return
	}
	theirs := map[string]bool{}
	for _, l := range readLines(t, filepath.Join(dir, "messages.jsonl")) {
		if bytes.Contains(l, []byte(`"topic":"zigbee2mqtt/`)) {
			theirs[string(superseded(l))] = true
		}
	}
	ours := map[string]bool{}
	for _, l := range readLines(t, filepath.Join("testdata", "messages.jsonl")) {
		ours[string(l)] = true
		if !theirs[string(l)] {
			t.Errorf("testdata/messages.jsonl has a line the shared folder does not: %s", l)
		}
	}
	for l := range theirs {
		if !ours[l] {
			t.Errorf("shared messages.jsonl has a line missing here (copy it to testdata/): %s", l)
		}
	}
}

// expectation turns "alarm:emergency", "technical:low_battery", "checkin", "ignore",
// "reject:malformed" into what Decode must return.
func expectation(t *testing.T, s string) (kinds []vakt.EventKind, ignore bool, reject error) {
	t.Helper()
	head, tail, _ := strings.Cut(s, ":")
	switch head {
	case "alarm":
		return []vakt.EventKind{vakt.EventKind(tail)}, false, nil
	case "technical":
		return []vakt.EventKind{vakt.EventKind(strings.ReplaceAll(tail, "_", "-"))}, false, nil
	case "checkin":
		return []vakt.EventKind{vakt.EventCheckIn}, false, nil
	case "ignore":
		return nil, true, nil
	case "reject":
		switch tail {
		case "malformed":
			return nil, false, z2m.ErrMalformed
		case "unknown":
			return nil, false, z2m.ErrUnknown
		case "oversize":
			return nil, false, z2m.ErrOversize
		}
	}
	t.Fatalf("unknown expectation %q", s)
	return nil, false, nil
}

func TestGolden(t *testing.T) {
	d := newDecoder(t)
	for i, l := range goldenMessages(t) {
		kinds, ignore, reject := expectation(t, l.Expect)
		if l.Topic == "zigbee2mqtt/bridge/state" && ignore {
			// The shared vectors predate issue 10: the bridge's own state is now read
			// as the availability of the pseudo-transmitter zigbee2mqtt-bridge, so
			// "online" is a check-in there (see TestDecode). The vector file should
			// say "checkin"; until it does, this line is read that way.
			kinds, ignore = []vakt.EventKind{vakt.EventCheckIn}, false
		}
		res, err := d.Decode(l.Topic, []byte(l.Payload), false)
		where := func() string { return l.Topic + " " + l.Payload + " (" + l.Device + ")" }
		switch {
		case reject != nil:
			if !errors.Is(err, reject) {
				t.Errorf("line %d %s: err %v, want %v", i+1, where(), err, reject)
			}
			continue
		case err != nil:
			t.Errorf("line %d %s: %v", i+1, where(), err)
			continue
		case ignore:
			if !res.Ignored || len(res.Events) != 0 {
				t.Errorf("line %d %s: %+v, want ignored", i+1, where(), res)
			}
			continue
		}
		if got := eventKinds(res); !slices.Equal(got, kinds) {
			t.Errorf("line %d %s: kinds %v, want %v", i+1, where(), got, kinds)
		}
		for _, ev := range res.Events {
			if ev.Transmitter == "" || ev.Transmitter != res.Transmitter {
				t.Errorf("line %d: transmitter %q (result %q)", i+1, ev.Transmitter, res.Transmitter)
			}
			if string(ev.Raw) != l.Payload {
				t.Errorf("line %d: raw %q", i+1, ev.Raw)
			}
			if strings.Contains(l.Payload, `"battery":`) && ev.Battery == nil {
				t.Errorf("line %d: battery not carried", i+1)
			}
			if strings.Contains(l.Payload, `"linkquality":`) && ev.LinkQuality == nil {
				t.Errorf("line %d: link quality not carried", i+1)
			}
		}
	}
}

func eventKinds(r z2m.Result) []vakt.EventKind {
	var ks []vakt.EventKind
	for _, ev := range r.Events {
		ks = append(ks, ev.Kind)
	}
	return ks
}

type msg struct {
	topic    string
	payload  string
	retained bool
	want     []vakt.EventKind // nil with err == nil and !ignored: check the error
	err      error
	ignored  bool
	clears   []vakt.EventKind // checked when set: what every event reports over
	tx       vakt.TransmitterID
}

func run(t *testing.T, d *z2m.Decoder, msgs []msg) {
	t.Helper()
	for i, m := range msgs {
		res, err := d.Decode(m.topic, []byte(m.payload), m.retained)
		if m.err != nil || err != nil {
			if !errors.Is(err, m.err) {
				t.Errorf("step %d %s %s: err %v, want %v", i, m.topic, m.payload, err, m.err)
			}
			continue
		}
		if res.Ignored != m.ignored {
			t.Errorf("step %d %s %s: ignored %v", i, m.topic, m.payload, res.Ignored)
			continue
		}
		if got := eventKinds(res); !slices.Equal(got, m.want) {
			t.Errorf("step %d %s %s retained=%v: %v, want %v", i, m.topic, m.payload, m.retained, got, m.want)
		}
		if m.clears != nil {
			for _, ev := range res.Events {
				if !slices.Equal(ev.Clears, m.clears) && !(len(m.clears) == 0 && len(ev.Clears) == 0) {
					t.Errorf("step %d %s %s: clears %v, want %v", i, m.topic, m.payload, ev.Clears, m.clears)
				}
			}
		}
		if m.tx != "" && res.Transmitter != m.tx {
			t.Errorf("step %d %s: transmitter %q, want %q", i, m.topic, res.Transmitter, m.tx)
		}
	}
}

var (
	alarm = func(k vakt.EventKind) []vakt.EventKind { return []vakt.EventKind{k} }
	check = []vakt.EventKind{vakt.EventCheckIn}
)

func TestDecode(t *testing.T) {
	const (
		sos    = "zigbee2mqtt/room102/sos"
		button = "zigbee2mqtt/room103/button"
		bed    = "zigbee2mqtt/room104/bed"
		door   = "zigbee2mqtt/exit/door"
	)
	tests := []struct {
		name string
		msgs []msg
	}{
		{"sos transitions", []msg{
			{topic: sos, payload: `{"sos":true}`, want: alarm(vakt.EventEmergency)},
			{topic: sos, payload: `{"sos":true}`, want: check}, // state repeated
			{topic: sos, payload: `{"sos":false}`, want: check},
			{topic: sos, payload: `{"sos":true}`, want: alarm(vakt.EventEmergency)},
		}},
		{"occupancy and water leak", []msg{
			{topic: bed, payload: `{"occupancy":false}`, want: check},
			{topic: bed, payload: `{"occupancy":true}`, want: alarm(vakt.EventSensor)},
			{topic: bed, payload: `{"occupancy":true,"illuminance":3}`, want: check},
			{topic: bed, payload: `{"water_leak":true}`, want: alarm(vakt.EventSensor)},
			{topic: bed, payload: `{"water_leak":true}`, want: check},
		}},
		{"door opens on contact false", []msg{
			{topic: door, payload: `{"contact":true}`, want: check},
			{topic: door, payload: `{"contact":false}`, want: alarm(vakt.EventDoor)},
			{topic: door, payload: `{"contact":false,"voltage":3000}`, want: check},
			{topic: door, payload: `{"contact":true}`, want: check},
			{topic: door, payload: `{"contact":false}`, want: alarm(vakt.EventDoor)},
		}},
		{"tamper once", []msg{
			{topic: sos, payload: `{"tamper":true}`, want: alarm(vakt.EventTamper)},
			{topic: sos, payload: `{"tamper":true}`, want: check},
			{topic: sos, payload: `{"tamper":false}`, want: check},
			{topic: sos, payload: `{"tamper":true}`, want: alarm(vakt.EventTamper)},
		}},
		{"actions", []msg{
			{topic: button, payload: `{"action":"single"}`, want: alarm(vakt.EventCall)},
			{topic: button, payload: `{"action":"single"}`, want: alarm(vakt.EventCall)}, // every press
			{topic: button, payload: `{"action":"double"}`, want: alarm(vakt.EventAssist)},
			{topic: button, payload: `{"action":"hold"}`, want: alarm(vakt.EventEmergency)},
			{topic: button, payload: `{"action":"release"}`, want: check},
			{topic: button, payload: `{"action":"off"}`, want: check},
			{topic: button, payload: `{"action":""}`, want: check},
			{topic: button, payload: `{"action":null}`, want: check},
			{topic: button, payload: `{"action":"triple"}`, want: check}, // unknown: configure it
			{topic: button, payload: `{"action":7}`, want: check},        // wrong type: absent
			{topic: button, payload: `{}`, want: check},
		}},
		{"action and transition in one message", []msg{
			{topic: sos, payload: `{"action":"emergency","sos":true,"tamper":true}`,
				want: []vakt.EventKind{vakt.EventEmergency, vakt.EventTamper}},
		}},
		{"retained is state, never a press", []msg{
			{topic: sos, payload: `{"sos":true,"tamper":true}`, retained: true, want: check},
			{topic: sos, payload: `{"sos":true,"tamper":true}`, want: check}, // already active
			{topic: sos, payload: `{"sos":false}`, want: check},
			{topic: sos, payload: `{"sos":true}`, want: alarm(vakt.EventEmergency)},
			{topic: button, payload: `{"action":"hold"}`, retained: true, want: check},
			{topic: sos, payload: `{"battery_low":true}`, retained: true, want: check},
			{topic: "zigbee2mqtt/room102/sos/availability", payload: `online`, retained: true, want: check},
		}},
		{"low battery once", []msg{
			{topic: sos, payload: `{"battery":90}`, want: check},
			{topic: sos, payload: `{"battery":14}`, want: alarm(vakt.EventLowBattery)},
			{topic: sos, payload: `{"battery":13}`, want: check},
			{topic: sos, payload: `{"battery":15}`, want: check},
			{topic: sos, payload: `{"battery":14}`, want: check}, // hysteresis: not re-armed at 15
			{topic: sos, payload: `{"battery":20}`, want: check}, // re-armed
			{topic: sos, payload: `{"battery":12}`, want: alarm(vakt.EventLowBattery)},
			{topic: sos, payload: `{"battery":100,"battery_low":false}`, want: check},
			{topic: sos, payload: `{"battery_low":true}`, want: alarm(vakt.EventLowBattery)},
			{topic: sos, payload: `{"battery_low":true,"battery":40}`, want: check},
			{topic: sos, payload: `{"action":"single"}`, want: alarm(vakt.EventCall)}, // no health: no re-arm
			{topic: sos, payload: `{"battery_low":false}`, want: check},
			{topic: sos, payload: `{"battery_low":true}`, want: alarm(vakt.EventLowBattery)},
		}},
		{"availability forms", []msg{
			{topic: sos + "/availability", payload: `{"state":"offline"}`, want: alarm(vakt.EventOffline)},
			{topic: sos + "/availability", payload: `offline`, want: alarm(vakt.EventOffline)},
			{topic: sos + "/availability", payload: ` OFFLINE `, want: alarm(vakt.EventOffline)},
			{topic: sos + "/availability", payload: `{"state":"offline"}`, retained: true, want: alarm(vakt.EventOffline)},
			{topic: sos + "/availability", payload: `{"state":"online"}`, want: check},
			{topic: sos + "/availability", payload: `online`, want: check},
			{topic: sos + "/availability", payload: `{"state":"maybe"}`, err: z2m.ErrMalformed},
			{topic: sos + "/availability", payload: `{"state":1}`, err: z2m.ErrMalformed},
			{topic: sos + "/availability", payload: `{"state":`, err: z2m.ErrMalformed},
			{topic: sos + "/availability", payload: ``, err: z2m.ErrMalformed},
			{topic: "zigbee2mqtt/nobody/availability", payload: `online`, err: z2m.ErrUnknown},
		}},
		{"bridge state is the bridge's own availability", []msg{
			{topic: "zigbee2mqtt/bridge/state", payload: `{"state":"offline"}`, want: alarm(vakt.EventOffline), tx: "zigbee2mqtt-bridge"},
			{topic: "zigbee2mqtt/bridge/state", payload: `offline`, want: alarm(vakt.EventOffline), tx: "zigbee2mqtt-bridge"},
			{topic: "zigbee2mqtt/bridge/state", payload: `{"state":"online"}`, retained: true, want: check, tx: "zigbee2mqtt-bridge"},
			{topic: "zigbee2mqtt/bridge/state", payload: `online`, want: check, tx: "zigbee2mqtt-bridge"},
			{topic: "zigbee2mqtt/bridge/state", payload: `{"state":"starting"}`, err: z2m.ErrMalformed},
		}},
		{"tamper and battery episodes report their end", []msg{
			{topic: sos, payload: `{"tamper":false,"battery":80}`, want: check, clears: []vakt.EventKind{vakt.EventTamper, vakt.EventLowBattery}},
			{topic: sos, payload: `{"tamper":true}`, want: alarm(vakt.EventTamper), clears: []vakt.EventKind{}},
			{topic: sos, payload: `{"tamper":true}`, want: check, clears: []vakt.EventKind{}},
			{topic: sos, payload: `{"tamper":false}`, want: check, clears: []vakt.EventKind{vakt.EventTamper}},
			{topic: sos, payload: `{"battery":14}`, want: alarm(vakt.EventLowBattery), clears: []vakt.EventKind{}},
			{topic: sos, payload: `{"battery":15}`, want: check, clears: []vakt.EventKind{}}, // at the threshold: not over
			{topic: sos, payload: `{"battery":19}`, want: check, clears: []vakt.EventKind{}}, // within the margin
			{topic: sos, payload: `{"battery":14}`, want: check, clears: []vakt.EventKind{}}, // same episode
			{topic: sos, payload: `{"battery":20}`, want: check, clears: []vakt.EventKind{vakt.EventLowBattery}},
			{topic: sos, payload: `{"battery":90}`, retained: true, want: check, clears: []vakt.EventKind{}},
			{topic: sos, payload: `{"battery_low":true}`, want: alarm(vakt.EventLowBattery), clears: []vakt.EventKind{}},
			{topic: sos, payload: `{"battery_low":false}`, want: check, clears: []vakt.EventKind{vakt.EventLowBattery}},
		}},
		{"bridge and commands are ignored", []msg{
			{topic: "zigbee2mqtt/bridge/event", payload: `{"type":"device_joined"}`, ignored: true},
			{topic: "zigbee2mqtt/bridge/devices", payload: strings.Repeat("x", 100000), ignored: true}, // big, retained, not ours
			{topic: "zigbee2mqtt/bridge", payload: ``, ignored: true},
			{topic: sos + "/set", payload: `{"state":"ON"}`, ignored: true},
			{topic: sos + "/set/state", payload: `ON`, ignored: true},
			{topic: sos + "/get", payload: `{"state":""}`, ignored: true},
			{topic: sos + "/action", payload: `single`, ignored: true},
		}},
		{"rejections", []msg{
			{topic: sos, payload: `{"sos":tru`, err: z2m.ErrMalformed},
			{topic: sos, payload: `[1,2]`, err: z2m.ErrMalformed},
			{topic: sos, payload: `"text"`, err: z2m.ErrMalformed},
			{topic: sos, payload: `null`, err: z2m.ErrMalformed},
			{topic: sos, payload: ``, err: z2m.ErrMalformed},
			{topic: sos, payload: `{"a":1} {"b":2}`, err: z2m.ErrMalformed},
			{topic: sos, payload: `{"a":"` + "\xff" + `"}`, want: check}, // invalid UTF-8 is replaced, not fatal
			{topic: sos, payload: strings.Repeat(`{"a":`, 9) + `1` + strings.Repeat(`}`, 9), err: z2m.ErrMalformed},
			{topic: sos, payload: strings.Repeat(`{"a":`, 8) + `1` + strings.Repeat(`}`, 8), want: check},
			{topic: sos, payload: `{"a":"` + strings.Repeat(`[{`, 50) + `"}`, want: check}, // brackets inside a string
			{topic: sos, payload: `{"a":"\"[[[[[[[[[[\\"}`, want: check},
			{topic: sos, payload: `]]]]]]]]]]` + strings.Repeat(`[`, 12) + strings.Repeat(`]`, 12), err: z2m.ErrMalformed},
			{topic: sos, payload: `{"a":[` + strings.Repeat(`[`, 20000), err: z2m.ErrOversize},
			{topic: sos, payload: `{"a":"` + strings.Repeat("x", 4096) + `"}`, err: z2m.ErrOversize},
			{topic: "zigbee2mqtt/room999", payload: `{"action":"single"}`, err: z2m.ErrUnknown},
			{topic: "zigbee2mqtt/room102", payload: `{"action":"single"}`, err: z2m.ErrUnknown},
			{topic: "zigbee2mqtt/room102/sos/extra", payload: `{}`, err: z2m.ErrUnknown},
			{topic: "other/room102/sos", payload: `{}`, err: z2m.ErrUnknown},
			{topic: "zigbee2mqtt", payload: `{}`, err: z2m.ErrUnknown},
			{topic: "", payload: `{}`, err: z2m.ErrUnknown},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			run(t, newDecoder(t), tt.msgs)
		})
	}
}

func TestFriendlyNameWithSlashes(t *testing.T) {
	d, err := z2m.NewDecoder("z2m", []z2m.Device{
		{ID: "b", Topic: "z2m/floor1/room101/button"},
		{ID: "c", Topic: "z2m/floor1/room101/button/left"},
	}, 0)
	if err != nil {
		t.Fatal(err)
	}
	run(t, d, []msg{
		{topic: "z2m/floor1/room101/button", payload: `{"action":"single"}`, want: alarm(vakt.EventCall)},
		{topic: "z2m/floor1/room101/button/left", payload: `{"action":"double"}`, want: alarm(vakt.EventAssist)},
		{topic: "z2m/floor1/room101/button/availability", payload: `offline`, want: alarm(vakt.EventOffline)},
		{topic: "z2m/floor1/room101/button/left/availability", payload: `online`, want: check},
		{topic: "z2m/floor1/room101/button/left/set", payload: `{}`, ignored: true},
		{topic: "z2m/floor1/room101", payload: `{}`, err: z2m.ErrUnknown},
		{topic: "zigbee2mqtt/floor1/room101/button", payload: `{}`, err: z2m.ErrUnknown},
	})
}

func TestHealthCarried(t *testing.T) {
	d := newDecoder(t)
	res, err := d.Decode("zigbee2mqtt/room101/sos", []byte(`{"action":"emergency","battery":99.6,"linkquality":120}`), false)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Events) != 1 {
		t.Fatalf("events %+v", res.Events)
	}
	ev := res.Events[0]
	if ev.Kind != vakt.EventEmergency || ev.Battery == nil || *ev.Battery != 100 || ev.LinkQuality == nil || *ev.LinkQuality != 120 {
		t.Errorf("event %+v", ev)
	}
	for _, p := range []string{`{"battery":101}`, `{"battery":-1}`, `{"battery":"80"}`, `{"battery":1e400}`, `{"linkquality":256}`} {
		res, err := d.Decode("zigbee2mqtt/room101/sos", []byte(p), false)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if ev := res.Events[0]; ev.Kind != vakt.EventCheckIn || ev.Battery != nil || ev.LinkQuality != nil {
			t.Errorf("%s: %+v", p, ev)
		}
	}
	// Raw is a copy: the caller may reuse its buffer.
	buf := []byte(`{"action":"single"}`)
	res, _ = d.Decode("zigbee2mqtt/room103/button", buf, false)
	buf[2] = 'X'
	if string(res.Events[0].Raw) != `{"action":"single"}` {
		t.Errorf("raw aliases the input: %q", res.Events[0].Raw)
	}
}

func TestMaxPayload(t *testing.T) {
	d, err := z2m.NewDecoder("", devices(), 16)
	if err != nil {
		t.Fatal(err)
	}
	run(t, d, []msg{
		{topic: "zigbee2mqtt/room101/sos", payload: `{"sos":true}`, want: alarm(vakt.EventEmergency)},
		{topic: "zigbee2mqtt/room101/sos", payload: `{"action":"single"}`, err: z2m.ErrOversize},
		{topic: "zigbee2mqtt/unknown/x", payload: `{"action":"single"}`, err: z2m.ErrOversize},
	})
}

func TestNewDecoderValidates(t *testing.T) {
	ok := z2m.Device{ID: "a", Topic: "zigbee2mqtt/a"}
	tests := []struct {
		name    string
		base    string
		devices []z2m.Device
		max     int
	}{
		{"empty id", "", []z2m.Device{{Topic: "zigbee2mqtt/a"}}, 0},
		{"empty topic", "", []z2m.Device{{ID: "a"}}, 0},
		{"wildcard", "", []z2m.Device{{ID: "a", Topic: "zigbee2mqtt/+"}}, 0},
		{"duplicate topic", "", []z2m.Device{ok, {ID: "b", Topic: "zigbee2mqtt/a"}}, 0},
		{"outside base", "", []z2m.Device{{ID: "a", Topic: "other/a"}}, 0},
		{"bare base", "", []z2m.Device{{ID: "a", Topic: "zigbee2mqtt/"}}, 0},
		{"bridge", "", []z2m.Device{{ID: "a", Topic: "zigbee2mqtt/bridge/x"}}, 0},
		{"reserved suffix", "", []z2m.Device{{ID: "a", Topic: "zigbee2mqtt/a/availability"}}, 0},
		{"bad action kind", "", []z2m.Device{{ID: "a", Topic: "zigbee2mqtt/a", Actions: map[string]vakt.EventKind{"x": "boom"}}}, 0},
		{"battery range", "", []z2m.Device{{ID: "a", Topic: "zigbee2mqtt/a", LowBattery: 101}}, 0},
		{"base wildcard", "z2m/#", []z2m.Device{ok}, 0},
		{"base slash", "z2m/", nil, 0},
		{"negative max", "", []z2m.Device{ok}, -1},
	}
	for _, tt := range tests {
		if _, err := z2m.NewDecoder(tt.base, tt.devices, tt.max); err == nil {
			t.Errorf("%s: accepted", tt.name)
		}
	}
	if _, err := z2m.NewDecoder("", []z2m.Device{ok}, 0); err != nil {
		t.Errorf("valid: %v", err)
	}
}

func BenchmarkDecode(b *testing.B) {
	d := newDecoder(b)
	p := []byte(`{"sos":false,"tamper":false,"battery_low":false,"battery":90,"linkquality":87}`)
	for b.Loop() {
		if _, err := d.Decode("zigbee2mqtt/room102/sos", p, false); err != nil {
			b.Fatal(err)
		}
	}
}

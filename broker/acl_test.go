package broker

import "testing"

func TestCovers(t *testing.T) {
	tests := []struct {
		allow, filter string
		want          bool
	}{
		{"zigbee2mqtt/room101/sos", "zigbee2mqtt/room101/sos", true},
		{"zigbee2mqtt/room101/sos", "zigbee2mqtt/room102/sos", false},
		{"zigbee2mqtt/room101/sos", "zigbee2mqtt/room101/sos/x", false},
		{"zigbee2mqtt/room101/sos", "zigbee2mqtt/room101", false},
		{"zigbee2mqtt/room101/sos", "zigbee2mqtt/+/sos", false},
		{"zigbee2mqtt/room101/sos", "zigbee2mqtt/#", false},
		{"zigbee2mqtt/#", "zigbee2mqtt", true},
		{"zigbee2mqtt/#", "zigbee2mqtt/a/b/c", true},
		{"zigbee2mqtt/#", "zigbee2mqtt/+/set", true},
		{"zigbee2mqtt/#", "zigbee2mqtt/#", true},
		{"zigbee2mqtt/#", "zigbee2mqttx/a", false},
		{"zigbee2mqtt/#", "#", false},
		{"zigbee2mqtt/+/set", "zigbee2mqtt/a/set", true},
		{"zigbee2mqtt/+/set", "zigbee2mqtt/+/set", true},
		{"zigbee2mqtt/+/set", "zigbee2mqtt/a/b/set", false},
		{"zigbee2mqtt/+/set", "zigbee2mqtt/#", false},
		{"zigbee2mqtt/+", "zigbee2mqtt", false},
		{"#", "a/b", true},
		{"#", "#", true},
		{"#", "$SYS/broker/load", false},
		{"+/broker/load", "$SYS/broker/load", false},
		{"$SYS/#", "$SYS/broker/load", true},
		{"/a", "/a", true},
		{"/a", "a", false},
	}
	for _, tt := range tests {
		if got := covers(tt.allow, tt.filter); got != tt.want {
			t.Errorf("covers(%q, %q) = %v, want %v", tt.allow, tt.filter, got, tt.want)
		}
	}
}

package mqttwire

import (
	"bytes"
	"testing"
)

// TestPacketRemainingLength: the remaining length is MQTT's variable-length integer
// (spec 2.2.3 examples: 127 in one byte, 128 in two, 16,384 in three).
func TestPacketRemainingLength(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want []byte
	}{{0, []byte{0x00}}, {127, []byte{0x7f}}, {128, []byte{0x80, 0x01}}, {16383, []byte{0xff, 0x7f}}, {16384, []byte{0x80, 0x80, 0x01}}} {
		p := Packet(0x30, make([]byte, tc.n))
		if p[0] != 0x30 || !bytes.Equal(p[1:1+len(tc.want)], tc.want) || len(p) != 1+len(tc.want)+tc.n {
			t.Errorf("length %d: header %x, want 30 %x", tc.n, p[:min(len(p), 4)], tc.want)
		}
	}
	if got := AppendString(nil, "ab"); !bytes.Equal(got, []byte{0, 2, 'a', 'b'}) {
		t.Errorf("AppendString = %x", got)
	}
}

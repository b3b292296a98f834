// Package mqttwire encodes MQTT 3.1.1 control packets by hand, for the tools and
// tests that must write the wire exactly (a publisher that times each PUBACK, a
// flooder that sends what no client library would) rather than go through paho.
package mqttwire

import "encoding/binary"

// Packet is a control packet: the fixed header's first byte, the remaining length
// as MQTT's variable-length integer, then body.
func Packet(header byte, body []byte) []byte {
	out := []byte{header}
	n := len(body)
	for {
		d := byte(n % 128)
		n /= 128
		if n > 0 {
			d |= 0x80
		}
		out = append(out, d)
		if n == 0 {
			break
		}
	}
	return append(out, body...)
}

// AppendString appends s as an MQTT UTF-8 string: two bytes of length, then s.
func AppendString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

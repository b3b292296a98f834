package espa

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
)

func TestWatch(t *testing.T) {
	var lines []string
	w := &Watch{Mapper: Mapper{Rules: []Rule{{CallAddress: "550", Text: regexp.MustCompile(`CALL ME (\d+)`), Transmitter: "room-$1"}},
		Fallback: "fb"}, EightBit: true, Emit: func(l string) { lines = append(lines, l) }}
	bad := bytes.Clone(zenitel)
	bad[len(bad)-1] = 0x07
	w.Feed([]byte{EOT, '2', ENQ})
	w.Feed(zenitel)
	w.Feed(call("777", "KITCHEN"))
	w.Feed([]byte{0xB1, 0x85})
	w.Feed(bad)
	w.Feed(call("777", "KITCHEN")[:8])
	if !w.Pending() {
		t.Fatal("half frame not pending")
	}
	w.Quiet()
	want := []string{
		"← EOT", "← ENQ addr=2",
		`← BLOCK hdr=1 call="550" msg="CALL ME 101" beep=3 type=3 tx=3 prio=3 → room-101 call`,
		`← BLOCK hdr=1 call="777" msg="KITCHEN" type=3 prio=3 → fb (fallback) call`,
		"← NOISE 2 bytes: B1 85",
		"hint: bytes with the top bit set: the line may use 7 data bits with parity (try -data-bits 7 -parity even)",
		"← BCC ERROR want=03 got=07", // one hint only
		"← HALF FRAME 8 bytes",
	}
	if len(lines) != len(want) {
		t.Fatalf("lines\n%q\nwant\n%q", lines, want)
	}
	for i := range want {
		if !strings.HasPrefix(lines[i], want[i]) {
			t.Errorf("line %d: %q, want %q", i, lines[i], want[i])
		}
	}
}

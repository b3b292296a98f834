package espa

import (
	"regexp"
	"testing"

	"github.com/vakt/vakt"
)

func TestMapper(t *testing.T) {
	m := Mapper{
		Rules: []Rule{
			{CallAddress: "550", Text: regexp.MustCompile(`ROOM (\d+)`), Transmitter: "room-$1"},
			{CallAddress: "551", Transmitter: "corridor-west"},
			{Text: regexp.MustCompile(`BAD (?P<bed>\d+)`), Transmitter: "bed-${bed}"},
			{Text: regexp.MustCompile(`ROM (\S+)`), Transmitter: "rom-$1"},
			{CallAddress: "9", Transmitter: "line-${call}"},
			{Text: regexp.MustCompile(`GHOST (\d+)`), Transmitter: "room-$1"},
			{Text: regexp.MustCompile(`EMPTY( \d+)?`), Transmitter: "$1"},
		},
		Fallback: "nurse-call-line",
		Known:    func(id vakt.TransmitterID) bool { return id != "room-999" },
	}
	tests := []struct {
		call     Call
		want     vakt.TransmitterID
		fallback bool
	}{
		{Call{CallAddress: "550", Message: "CALL ROOM 101"}, "room-101", false},
		{Call{CallAddress: "550", Message: "CALL ME"}, "nurse-call-line", true},
		{Call{CallAddress: "551", Message: "anything"}, "corridor-west", false},
		{Call{CallAddress: "1", Message: "BAD 12"}, "bed-12", false},
		{Call{CallAddress: "1", Message: "ROM \xe6\xf8"}, "rom-æø", false},
		{Call{CallAddress: "9"}, "line-9", false},
		{Call{CallAddress: "550", Message: "ROOM 999"}, "nurse-call-line", true}, // unknown → fallback
		{Call{CallAddress: "2", Message: "EMPTY"}, "nurse-call-line", true},      // empty result → next rule
		{Call{CallAddress: "01", Message: "x"}, "nurse-call-line", true},
	}
	for _, tt := range tests {
		got, fb := m.Map(tt.call)
		if got != tt.want || fb != tt.fallback {
			t.Errorf("%+v: got %q,%v want %q,%v", tt.call, got, fb, tt.want, tt.fallback)
		}
	}
}

func TestNewRule(t *testing.T) {
	if _, err := NewRule("", "(", "x"); err == nil {
		t.Error("bad regexp accepted")
	}
	if _, err := NewRule("1", "", " "); err == nil {
		t.Error("empty transmitter accepted")
	}
	r, err := NewRule("550", `ROOM (\d+)`, "room-$1")
	if err != nil || r.Text == nil {
		t.Fatal(err)
	}
}

func TestEventFor(t *testing.T) {
	raw := []byte{1, 2, 3}
	tests := []struct {
		call Call
		kind vakt.EventKind
		prio vakt.Priority
	}{
		{Call{CallType: CallReset, Priority: 1}, vakt.EventCancel, 0},
		{Call{Priority: 1}, vakt.EventEmergency, vakt.PriorityEmergency},
		{Call{Priority: 2}, vakt.EventCall, vakt.PriorityHigh},
		{Call{Priority: 3}, vakt.EventCall, vakt.PriorityNormal},
		{Call{}, vakt.EventCall, 0},
		{Call{CallType: CallSpeech}, vakt.EventCall, 0},
	}
	for _, tt := range tests {
		tt.call.Message = "ROM \xe6"
		ev := EventFor(tt.call, "room-1", raw)
		if ev.Kind != tt.kind || ev.Priority != tt.prio || ev.Transmitter != "room-1" || ev.Text != "ROM æ" {
			t.Errorf("%+v: got %+v", tt.call, ev)
		}
		raw[0] = 9
		if ev.Raw[0] != 1 {
			t.Error("Raw aliases the frame")
		}
		raw[0] = 1
	}
}

package config

import (
	"testing"
	"time"
)

func TestWindowSpan(t *testing.T) {
	for _, tt := range []struct {
		from, to string
		want     [2]time.Duration
		bad      bool
	}{
		{"22:00", "07:00", [2]time.Duration{22 * time.Hour, 7 * time.Hour}, false},
		{"7:30", "24:00", [2]time.Duration{7*time.Hour + 30*time.Minute, 24 * time.Hour}, false},
		{"00:00", "00:00", [2]time.Duration{0, 24 * time.Hour}, false}, // the whole day
		{"24:00", "07:00", [2]time.Duration{}, true},                   // 24:00 only ends a window
		{"12:60", "13:00", [2]time.Duration{}, true},
		{"-1:00", "13:00", [2]time.Duration{}, true},
		{"1200", "13:00", [2]time.Duration{}, true},
		{"", "13:00", [2]time.Duration{}, true},
	} {
		from, to, err := Window{From: tt.from, To: tt.to}.Span()
		if (err != nil) != tt.bad || !tt.bad && (from != tt.want[0] || to != tt.want[1]) {
			t.Errorf("%s-%s: %v %v %v", tt.from, tt.to, from, to, err)
		}
	}
}

// TestWeekOverlap: windows overlap across midnight and across the end of the week,
// and windows that only meet do not.
func TestWeekOverlap(t *testing.T) {
	set := func(ws ...Window) *week {
		w := new(week)
		for _, x := range ws {
			w.addWindow(x)
		}
		return w
	}
	for _, tt := range []struct {
		a, b Window
		want string // first shared minute, "" none
	}{
		{Window{Days: []string{"sat"}, From: "22:00", To: "07:00"}, Window{Days: []string{"sun"}, From: "06:00", To: "08:00"}, "sun 06:00"},
		{Window{Days: []string{"sun"}, From: "23:00", To: "01:00"}, Window{Days: []string{"mon"}, From: "00:30", To: "02:00"}, "mon 00:30"},
		{Window{Days: []string{"sat"}, From: "23:00", To: "01:00"}, Window{Days: []string{"sun"}, From: "00:00", To: "00:30"}, "sun 00:00"}, // Saturday's night runs into Sunday, week index 0
		{Window{From: "22:00", To: "07:00"}, Window{From: "07:00", To: "22:00"}, ""},
		{Window{Days: []string{"weekdays"}, From: "00:00", To: "24:00"}, Window{Days: []string{"weekend"}, From: "00:00", To: "24:00"}, ""},
		{Window{Days: []string{"fri"}, From: "22:00", To: "07:00"}, Window{Days: []string{"weekend"}, From: "06:59", To: "07:00"}, "sat 06:59"},
	} {
		got := ""
		if m := set(tt.a).overlap(set(tt.b)); m >= 0 {
			got = minuteName(m)
		}
		if got != tt.want {
			t.Errorf("%+v vs %+v: overlap %q, want %q", tt.a, tt.b, got, tt.want)
		}
	}
}

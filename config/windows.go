package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // site.timezone must load on a system without zone files
)

// dayNames are the values of policies[].windows[].days.
var dayNames = map[string][]time.Weekday{
	"mon": {time.Monday}, "tue": {time.Tuesday}, "wed": {time.Wednesday}, "thu": {time.Thursday},
	"fri": {time.Friday}, "sat": {time.Saturday}, "sun": {time.Sunday},
	"weekdays": {time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday},
	"weekend":  {time.Saturday, time.Sunday},
}

const dayList = "mon, tue, wed, thu, fri, sat, sun, weekdays, weekend"

// Location is the site's time zone: site.timezone, or the system's local zone.
func (s Site) Location() (*time.Location, error) {
	if s.Timezone == "" {
		return time.Local, nil
	}
	return time.LoadLocation(s.Timezone)
}

// Weekdays returns the window's days, nil for every day. Unknown names are left
// out (validation reports them).
func (w Window) Weekdays() []time.Weekday {
	var out []time.Weekday
	for _, d := range w.Days {
		for _, wd := range dayNames[strings.ToLower(d)] {
			if !containsDay(out, wd) {
				out = append(out, wd)
			}
		}
	}
	return out
}

func containsDay(ds []time.Weekday, d time.Weekday) bool {
	for _, x := range ds {
		if x == d {
			return true
		}
	}
	return false
}

// Span returns From and To as times since midnight; a To of "00:00" is 24h, the
// midnight that ends the day.
func (w Window) Span() (from, to time.Duration, err error) {
	from, err = clock(w.From, false)
	if err != nil {
		return 0, 0, fmt.Errorf("from: %w", err)
	}
	to, err = clock(w.To, true)
	if err != nil {
		return 0, 0, fmt.Errorf("to: %w", err)
	}
	if to == 0 {
		to = 24 * time.Hour
	}
	return from, to, nil
}

// clock parses "HH:MM" or "H:MM" (24:00 only when end).
func clock(s string, end bool) (time.Duration, error) {
	h, m, ok := strings.Cut(s, ":")
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	switch {
	case s == "":
		return 0, fmt.Errorf("required: a local time as HH:MM, e.g. %q", "22:00")
	case !ok || len(h) < 1 || len(h) > 2 || len(m) != 2 || err1 != nil || err2 != nil || mm < 0 || mm > 59 || hh < 0:
		return 0, fmt.Errorf("%s is not a time of day; write HH:MM, e.g. %q", quoteShort(s), "07:30")
	case hh == 24 && mm == 0 && end:
		return 24 * time.Hour, nil
	case hh > 23:
		return 0, fmt.Errorf("%s is not a time of day: hours are 00..23 (24:00 only as to)", quoteShort(s))
	}
	return time.Duration(hh)*time.Hour + time.Duration(mm)*time.Minute, nil
}

// week is a set of the minutes of a week (Sunday 00:00 first), for finding windows
// that overlap.
type week [(7*24*60 + 63) / 64]uint64

func (w *week) addWindow(win Window) {
	from, to, err := win.Span()
	if err != nil {
		return
	}
	days := win.Weekdays()
	if len(win.Days) == 0 {
		days = []time.Weekday{0, 1, 2, 3, 4, 5, 6}
	}
	f, t := int(from/time.Minute), int(to/time.Minute)
	n := t - f
	if t <= f {
		n = 24*60 - f + t
	}
	for _, d := range days {
		start := int(d)*24*60 + f
		for m := start; m < start+n; m++ {
			i := m % (7 * 24 * 60)
			w[i/64] |= 1 << (i % 64)
		}
	}
}

// overlap returns the first minute in both (-1: none).
func (w *week) overlap(o *week) int {
	for i := range w {
		if both := w[i] & o[i]; both != 0 {
			for b := range 64 {
				if both&(1<<b) != 0 {
					return i*64 + b
				}
			}
		}
	}
	return -1
}

// minuteName writes a minute of the week as "sat 06:00".
func minuteName(m int) string {
	names := [...]string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}
	return fmt.Sprintf("%s %02d:%02d", names[m/(24*60)], m%(24*60)/60, m%60)
}

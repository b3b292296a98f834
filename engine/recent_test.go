package engine

import (
	"runtime"
	"strconv"
	"testing"
	"time"

	vakt "github.com/vakt/vakt"
)

var recentT0 = time.Date(2026, 11, 28, 22, 0, 0, 0, time.UTC)

// After a restart with a backlog the broker redelivers its queue at thousands of
// messages a second, so far more than 65,536 ids arrive within the redelivery
// window. The work to recognise a redelivery must stay constant per event: it once
// scanned every remembered id for every event past 65,536 (280 presses/s).
func TestRedeliveryCheckStaysConstantUnderBacklog(t *testing.T) {
	r := newRecentSources(recentCapacity, 0)
	const n = 70_000 // past the old 65,536 threshold, all within ten minutes
	at := func(i int) time.Time { return recentT0.Add(time.Duration(i) * time.Millisecond) }
	for i := range n {
		key := "mqtt\x00" + strconv.Itoa(i)
		if _, ok := r.lookup(key, at(i)); ok {
			t.Fatalf("id %d recognised before it arrived", i)
		}
		r.remember(key, vakt.AlarmID("a-"+strconv.Itoa(i)), at(i))
	}
	if per := float64(r.scanned) / n; per > 2 {
		t.Errorf("%.1f remembered ids examined per event; want at most 2 (constant)", per)
	}
	// Every one of them is still recognised as a redelivery.
	for _, i := range []int{0, 65_535, 65_536, n - 1} {
		if a, ok := r.lookup("mqtt\x00"+strconv.Itoa(i), at(n)); !ok || a != vakt.AlarmID("a-"+strconv.Itoa(i)) {
			t.Errorf("id %d not recognised as a redelivery: %q, %v", i, a, ok)
		}
	}
}

// An id is recognised for the redelivery window only, then forgotten (ids such as
// MQTT packet ids come back for new presses); a new arrival of the same id renews
// it; memory stays bounded by the capacity, oldest forgotten first.
func TestRecentSourcesWindowAndCapacity(t *testing.T) {
	r := newRecentSources(8, 0)
	r.remember("a", "a-1", recentT0)
	r.remember("b", "", recentT0.Add(time.Minute))
	if _, ok := r.lookup("a", recentT0.Add(redeliveryWindow)); !ok {
		t.Error("a forgotten within the window")
	}
	late := recentT0.Add(redeliveryWindow + time.Second)
	if _, ok := r.lookup("a", late); ok {
		t.Error("a recognised after the window")
	}
	r.remember("a", "a-2", late) // the id came back for a new press
	r.expire(recentT0.Add(redeliveryWindow + 2*time.Minute))
	if a, ok := r.lookup("a", late.Add(time.Minute)); !ok || a != "a-2" {
		t.Errorf("renewed a = %q, %v; want a-2", a, ok)
	}
	if _, ok := r.lookup("b", late.Add(time.Minute)); ok || r.len() != 1 {
		t.Errorf("b still remembered after its window (%d ids held)", r.len())
	}

	for i := range 20 {
		r.remember(strconv.Itoa(i), "", late.Add(2*time.Minute))
	}
	if r.len() != 8 {
		t.Errorf("%d ids held, capacity 8", r.len())
	}
	if _, ok := r.lookup("11", late.Add(2*time.Minute)); ok {
		t.Error("an old id survived a full ring")
	}
	if _, ok := r.lookup("19", late.Add(2*time.Minute)); !ok {
		t.Error("the newest id was dropped")
	}
}

// A drained storm gives its memory back.
func TestRecentSourcesShrinkAfterStorm(t *testing.T) {
	r := newRecentSources(recentCapacity, 0)
	for i := range 50_000 {
		r.remember(strconv.Itoa(i), "", recentT0)
	}
	r.remember("after", "", recentT0.Add(redeliveryWindow+time.Second))
	if r.len() != 1 || len(r.ring) > 1024 {
		t.Errorf("after the window: %d ids, ring of %d slots", r.len(), len(r.ring))
	}
	if _, ok := r.lookup("after", recentT0.Add(redeliveryWindow+time.Second)); !ok {
		t.Error("the id after the storm was lost")
	}
}

// Alarm ids are remembered by number; one the engine did not make (an old database,
// a hand-edited one) still comes back as it was.
func TestRecentSourcesKeepOddAlarmIDs(t *testing.T) {
	r := newRecentSources(4, 0)
	for _, id := range []vakt.AlarmID{"a-17", "", "legacy-9", "a-0"} {
		r.remember("k"+string(id), id, recentT0)
	}
	for _, id := range []vakt.AlarmID{"a-17", "", "legacy-9", "a-0"} {
		if got, ok := r.lookup("k"+string(id), recentT0); !ok || got != id {
			t.Errorf("lookup of the id that opened %q: %q, %v", id, got, ok)
		}
	}
	r.remember("klegacy-9", "a-3", recentT0) // the same source id, a new press
	if got, _ := r.lookup("klegacy-9", recentT0); got != "a-3" {
		t.Errorf("renewed: %q, want a-3", got)
	}
	for i := range 8 { // push everything out
		r.remember(strconv.Itoa(i), "", recentT0)
	}
	if len(r.odd) != 0 {
		t.Errorf("%d odd ids left after their keys were forgotten", len(r.odd))
	}
}

// BenchmarkRecentSourcesFull reports the heap a full set of recentCapacity MQTT ids
// holds (the steady state of a long storm): 23 MB with strings and time.Time.
func BenchmarkRecentSourcesFull(b *testing.B) {
	var before, after runtime.MemStats
	for b.Loop() {
		runtime.GC()
		runtime.ReadMemStats(&before)
		r := newRecentSources(recentCapacity, 0)
		for i := range recentCapacity {
			r.remember("mqtt\x00mqtt:"+strconv.Itoa(i%65536)+":"+strconv.FormatUint(uint64(i)*0x9e3779b97f4a7c15, 16),
				vakt.FormatAlarmID(int64(i+1)), recentT0.Add(time.Duration(i)*time.Millisecond))
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/1e6, "MB-held")
		runtime.KeepAlive(r)
	}
}

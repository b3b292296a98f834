package engine

import (
	"fmt"
	"testing"
	"time"

	vakt "github.com/vakt/vakt"
)

// BenchmarkBuildView: one rebuild of the status page's snapshot for a large site
// (500 transmitters with health, 100 staff, 50 open alarms). The loop rebuilds at
// most every viewEvery (250 ms) during a burst, so this bounds its cost per second.
func BenchmarkBuildView(b *testing.B) {
	opt := Options{Clock: vakt.SystemClock{}}
	for i := range 500 {
		opt.Transmitters = append(opt.Transmitters, vakt.Transmitter{ID: vakt.TransmitterID(fmt.Sprintf("tx-%03d", i)), Supervision: time.Hour})
	}
	e := &Engine{opt: opt}
	e.st = newState(opt, &vakt.Snapshot{})
	bat := 80
	for _, t := range opt.Transmitters {
		e.st.health[t.ID] = vakt.TransmitterHealth{Transmitter: t.ID, LastSeen: time.Now(), Battery: &bat}
	}
	for i := range 100 {
		id := vakt.StaffID(fmt.Sprintf("s-%03d", i))
		e.st.directory[id] = vakt.Staff{ID: id, Name: "x", Roles: []string{"nurse"}}
		e.st.staff[id] = &vakt.StaffState{Staff: id, OnDuty: true, Position: &vakt.Position{Lat: 59.9, Lon: 10.7}}
	}
	for i := range 50 {
		a := &vakt.Alarm{ID: vakt.AlarmID(fmt.Sprintf("a-%d", i)), Transmitter: opt.Transmitters[i].ID, Kind: vakt.EventLowBattery,
			RaisedAt: time.Now(), Offers: []vakt.Offer{{Staff: "s-001"}}}
		e.st.alarms[a.ID] = a
	}
	for b.Loop() {
		e.buildView(&e.view)
	}
	perBuild := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	b.ReportMetric(perBuild/1e6, "ms/build")
	// At most 4 rebuilds a second: the share of one core spent on the view.
	b.ReportMetric(4*perBuild/1e9*100, "%core-at-max-rate")
}

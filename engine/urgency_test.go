package engine_test

import (
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	vakt "github.com/vakt/vakt"
	"github.com/vakt/vakt/engine"
	"github.com/vakt/vakt/internal/fakeclock"
)

// In a storm of ordinary calls, an emergency pressed after them is offered first:
// within the batch and when it waits in the queue behind more than a batch of calls
// (P2: "overloaded, emergencies first").
func TestStormEmergencyOfferedFirst(t *testing.T) {
	for _, calls := range []int{100, 1500} { // one batch; three batches' worth
		t.Run(fmt.Sprint(calls, " calls"), func(t *testing.T) {
			r := &rig{t: t, path: filepath.Join(t.TempDir(), "vakt.db"), clock: fakeclock.New(t0), phones: newPhones()}
			for i := range calls + 1 {
				tx := room
				tx.ID = vakt.TransmitterID(fmt.Sprintf("btn-%d", i))
				r.transmitters = append(r.transmitters, tx)
			}
			r.start(false)
			t.Cleanup(func() { r.stop() })

			release := engine.Hold(r.eng) // the loop is busy: everything below queues
			var wg sync.WaitGroup
			wg.Add(calls + 1)
			press := func(i int, kind vakt.EventKind) {
				ev := vakt.Event{Transmitter: r.transmitters[i].ID, Kind: kind, Source: "test"}
				if err := r.eng.Ingest(ev, func(err error) {
					if err != nil {
						t.Error(err)
					}
					wg.Done()
				}); err != nil {
					t.Fatal(err)
				}
			}
			for i := range calls {
				press(i, vakt.EventCall)
			}
			press(calls, vakt.EventEmergency)
			release()
			wg.Wait()
			r.idle()

			r.phones.mu.Lock()
			defer r.phones.mu.Unlock()
			var offers []vakt.Notice
			for _, n := range r.phones.all {
				if n.Type == vakt.NoticeOffer {
					offers = append(offers, n)
				}
			}
			if len(offers) < calls+1 {
				t.Fatalf("%d offers for %d alarms", len(offers), calls+1)
			}
			if first := offers[0].Alarm; first.Kind != vakt.EventEmergency {
				t.Fatalf("first offer is for a %s alarm from %s; want the emergency from %s first",
					first.Kind, first.Transmitter, r.transmitters[calls].ID)
			}
		})
	}
}

// TestDueTimersEmergencyFirst: when one tick finds several alarms' deadlines passed
// (a storm's offers timing out together), the emergency escalates first.
func TestDueTimersEmergencyFirst(t *testing.T) {
	r := &rig{t: t, path: filepath.Join(t.TempDir(), "vakt.db"), clock: fakeclock.New(t0), phones: newPhones()}
	const calls = 20
	for i := range calls + 1 {
		tx := room
		tx.ID = vakt.TransmitterID(fmt.Sprintf("btn-%d", i))
		r.transmitters = append(r.transmitters, tx)
	}
	r.start(false)
	t.Cleanup(func() { r.stop() })
	// The emergency first, so that arrival order does not hide the ordering.
	r.ingest(vakt.Event{Transmitter: r.transmitters[calls].ID, Kind: vakt.EventEmergency, Source: "test"})
	for i := range calls {
		r.ingest(vakt.Event{Transmitter: r.transmitters[i].ID, Kind: vakt.EventCall, Source: "test"})
	}
	r.phones.mu.Lock()
	before := len(r.phones.all)
	r.phones.mu.Unlock()
	r.clock.Advance(31 * time.Second) // every first tier's wait is over at once
	r.phones.wait(t, "the escalations", func() bool {
		r.phones.mu.Lock()
		defer r.phones.mu.Unlock()
		n := 0
		for _, x := range r.phones.all[before:] {
			if x.Type == vakt.NoticeOffer {
				n++
			}
		}
		return n >= calls+1
	})
	r.phones.mu.Lock()
	defer r.phones.mu.Unlock()
	for _, n := range r.phones.all[before:] {
		if n.Type == vakt.NoticeOffer {
			if n.Alarm.Kind != vakt.EventEmergency {
				t.Fatalf("first escalated offer is for a %s alarm from %s; want the emergency first", n.Alarm.Kind, n.Alarm.Transmitter)
			}
			return
		}
	}
}

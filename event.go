package vakt

import "time"

// EventKind is what a driver saw a transmitter do.
type EventKind string

const (
	EventCall       EventKind = "call"        // normal call (press, pull cord)
	EventAssist     EventKind = "assist"      // staff asks for assistance in the room
	EventEmergency  EventKind = "emergency"   // SOS, emergency button, hold
	EventFall       EventKind = "fall"        // fall detector
	EventSensor     EventKind = "sensor"      // bed exit, motion, water leak
	EventDoor       EventKind = "door"        // door/window contact opened
	EventCancel     EventKind = "cancel"      // reset at the transmitter
	EventPresence   EventKind = "presence"    // staff presence button in the room
	EventCheckIn    EventKind = "check-in"    // supervision only: alive, battery, link
	EventLowBattery EventKind = "low-battery" // technical
	EventTamper     EventKind = "tamper"      // technical
	EventOffline    EventKind = "offline"     // technical: the radio side says it is gone
)

// Raises reports whether the kind opens (or repeats) a care alarm.
func (k EventKind) Raises() bool {
	switch k {
	case EventCall, EventAssist, EventEmergency, EventFall, EventSensor, EventDoor:
		return true
	}
	return false
}

// Technical reports whether the kind opens a technical alarm for technicians.
func (k EventKind) Technical() bool {
	switch k {
	case EventLowBattery, EventTamper, EventOffline:
		return true
	}
	return false
}

// DefaultPriority is the priority an alarm of this kind gets unless policy or the
// source (ESPA record 6) says otherwise.
func (k EventKind) DefaultPriority() Priority {
	switch k {
	case EventEmergency, EventFall:
		return PriorityEmergency
	case EventAssist, EventDoor:
		return PriorityHigh
	case EventLowBattery, EventTamper, EventOffline:
		return PriorityTechnical
	}
	return PriorityNormal
}

// Event is one thing a driver decoded from its source, before anything was decided.
type Event struct {
	Transmitter TransmitterID
	Kind        EventKind
	// Priority overrides the kind's default when the source states one (0 = none).
	Priority Priority
	// Source names the driver instance ("mqtt", "espa:/dev/ttyUSB0").
	Source string
	// SourceID identifies the message at its source so a redelivery is recognised
	// (MQTT packet id is not stable across sessions; drivers build what is).
	SourceID string
	// Raw is the message as received (payload or frame), kept for the technician.
	Raw []byte
	// Text is a human hint from the source (ESPA display message), may be empty.
	Text string
	// Health carried by the message; nil when the source did not say.
	Battery     *int // percent
	LinkQuality *int
	// Clears lists technical conditions the message reports as over (tamper closed
	// again, battery back above its threshold plus a margin): an open technical alarm
	// of that kind on the transmitter closes. Drivers decide, since only they know a
	// device's thresholds.
	Clears []EventKind
	// ReceivedAt is the wall clock when read. Mono is the monotonic reading.
	ReceivedAt time.Time
	Mono       time.Duration
}

// Ingester accepts events for a durable commit. Drivers call it.
type Ingester interface {
	// Ingest queues ev and returns at once; done is called exactly once, after the
	// transaction holding the event committed (nil) or failed. It returns ErrBusy
	// when the queue is full (done is then not called). Only after done(nil) may the
	// driver acknowledge the event to its source.
	Ingest(ev Event, done func(error)) error
}

// IngestFunc adapts a function to Ingester.
type IngestFunc func(ev Event, done func(error)) error

func (f IngestFunc) Ingest(ev Event, done func(error)) error { return f(ev, done) }

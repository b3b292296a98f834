package vakt

import "time"

// TransmitterKind is what sort of device raises alarms.
type TransmitterKind string

const (
	KindButton    TransmitterKind = "button"
	KindPullCord  TransmitterKind = "pull-cord"
	KindPendant   TransmitterKind = "sos-pendant"
	KindFall      TransmitterKind = "fall"
	KindDoor      TransmitterKind = "door"
	KindBed       TransmitterKind = "bed"
	KindSmoke     TransmitterKind = "smoke"
	KindNurseCall TransmitterKind = "nurse-call-line"
	KindSensor    TransmitterKind = "sensor"
)

// Location is where a transmitter is.
type Location struct {
	Room  string
	Zone  string
	Floor int
	Lat   float64
	Lon   float64
}

// Transmitter is a thing that raises alarms.
type Transmitter struct {
	ID   TransmitterID
	Kind TransmitterKind
	// Driver names the driver ("zigbee2mqtt", "mqtt", "espa") and Address its address
	// there (friendly name, topic, ESPA call address).
	Driver   string
	Address  string
	Location Location
	// Resident is a pseudonymous reference, never a name.
	Resident string
	// Supervision is the longest silence before a technical alarm (0 = not supervised).
	Supervision time.Duration
	// PrimaryContacts are the resident's primary contact staff, whom a routing tier
	// with target primary offers.
	PrimaryContacts []StaffID
}

// TransmitterHealth is what the gateway last heard from a transmitter.
type TransmitterHealth struct {
	Transmitter TransmitterID
	LastSeen    time.Time
	Battery     *int
	LinkQuality *int
	Online      bool
}

package config

import "time"

// Config is one gateway's whole configuration: one YAML file.
type Config struct {
	Site         Site          `yaml:"site"`
	Zones        []Zone        `yaml:"zones"`
	Roles        []string      `yaml:"roles"`
	Transmitters []Transmitter `yaml:"transmitters"`
	Staff        []Staff       `yaml:"staff"`
	Policies     []Policy      `yaml:"policies"`
	Routing      Routing       `yaml:"routing"`
	Drivers      Drivers       `yaml:"drivers"`
	API          API           `yaml:"api"`
	Storage      Storage       `yaml:"storage"`
	Privacy      Privacy       `yaml:"privacy"`
	Retention    Retention     `yaml:"retention"`
	ARC          ARC           `yaml:"arc"`
	Cloud        Cloud         `yaml:"cloud"`
	Log          Log           `yaml:"log"`
}

// Log is the gateway's own log.
type Log struct {
	// Level is the lowest level written: debug, info, warn or error; empty: the
	// -log-level flag's. A reload (SIGHUP) applies it.
	Level string `yaml:"level"`
}

// Site identifies the installation.
type Site struct {
	ID   string `yaml:"id"`
	Name string `yaml:"name"`
	// Demo allows the sample secrets of config/examples and forces loopback listeners.
	Demo bool `yaml:"demo"`
	// WalkTest shows presses on the status page and alarms nobody (commissioning).
	WalkTest bool `yaml:"walk_test"`
	// Lat/Lon is the site's reference point (used when a transmitter has none).
	Lat float64 `yaml:"lat"`
	Lon float64 `yaml:"lon"`
	// Timezone is the IANA name of the site's time zone (Europe/Oslo), in which
	// policy windows are read; empty: the system's local zone.
	Timezone string `yaml:"timezone"`
}

// Zone is a wing or unit; zone-wide tiers and policies refer to it.
type Zone struct {
	ID    string `yaml:"id"`
	Name  string `yaml:"name"`
	Floor int    `yaml:"floor"`
}

// Transmitter is a device that raises alarms.
type Transmitter struct {
	ID       string  `yaml:"id"`
	Kind     string  `yaml:"kind"`   // button, pull-cord, sos-pendant, fall, door, bed, smoke, nurse-call-line, sensor
	Driver   string  `yaml:"driver"` // a registered driver: zigbee2mqtt, mqtt, espa, ... (drivers.Names)
	Address  string  `yaml:"address"`
	Room     string  `yaml:"room"`
	Zone     string  `yaml:"zone"`
	Floor    int     `yaml:"floor"`
	Lat      float64 `yaml:"lat"`
	Lon      float64 `yaml:"lon"`
	Resident string  `yaml:"resident"`
	// Supervision is the longest silence before a technical alarm; 0 = off.
	Supervision Duration `yaml:"supervision"`
	// LowBattery is the battery percentage below which a technical alarm is raised.
	LowBattery int `yaml:"low_battery"`
	// Options holds the driver's own keys, written beside these (Zigbee2MQTT's
	// actions, the generic mapping, ...): the value its drivers.Driver.Options
	// returned, filled from the file; nil for a driver without options.
	Options any `yaml:",driver"`
	// PrimaryContacts are the staff ids of the resident's primary contacts, whom a
	// tier with target primary offers.
	PrimaryContacts []string `yaml:"primary_contacts"`
}

// Staff is a local directory entry, used until the cloud directory arrives.
type Staff struct {
	ID    string   `yaml:"id"`
	Name  string   `yaml:"name"`
	Phone string   `yaml:"phone"`
	Email string   `yaml:"email"`
	Roles []string `yaml:"roles"`
	Zone  string   `yaml:"zone"`
	// Secret (plain, from ${ENV} or file:) or SecretHash (bcrypt) — one of them.
	Secret     Secret `yaml:"secret"`
	SecretHash string `yaml:"secret_hash"`
	// Demo only: initial duty, availability and position.
	OnDuty       bool      `yaml:"on_duty"`
	Availability string    `yaml:"availability"`
	Position     *Position `yaml:"position"`
}

// Position is a demo staff member's starting position.
type Position struct {
	Lat   float64 `yaml:"lat"`
	Lon   float64 `yaml:"lon"`
	Floor int     `yaml:"floor"`
}

// Policy routes alarms of some kinds (and optionally a zone or rooms) through tiers.
// The most specific matching policy wins: room, then zone, then site.
type Policy struct {
	Name  string   `yaml:"name"`
	Kinds []string `yaml:"kinds"` // event kinds; empty = every care alarm
	// Priority, when set, overrides the kind's default priority.
	Priority int      `yaml:"priority"`
	Zone     string   `yaml:"zone"`
	Rooms    []string `yaml:"rooms"`
	// ReAlarmAfter: accepted but no presence within this → offered again.
	ReAlarmAfter Duration `yaml:"realarm_after"`
	// Windows limit the policy to some times of the week (site.timezone); empty: always.
	Windows []Window `yaml:"windows"`
	// InterruptBusy sets interrupt_busy on every tier.
	InterruptBusy bool   `yaml:"interrupt_busy"`
	Tiers         []Tier `yaml:"tiers"`
}

// Window is a weekly time range: from From on each of Days until To ("22:00" to
// "07:00" ends the next morning).
type Window struct {
	Days []string `yaml:"days"` // mon..sun, weekdays, weekend; empty: every day
	From string   `yaml:"from"` // "HH:MM"
	To   string   `yaml:"to"`   // "HH:MM"; "00:00" and "24:00" are midnight at the end
}

// Tier is one step of escalation.
type Tier struct {
	// Target: nearest, zone, site, role, primary, arc, pager.
	Target string   `yaml:"target"`
	Count  int      `yaml:"count"` // for nearest: how many at once
	Roles  []string `yaml:"roles"`
	Zone   string   `yaml:"zone"` // for zone: which (default: the transmitter's)
	Wait   Duration `yaml:"wait"`
	// IncludeBusy offers to busy staff too (emergencies).
	IncludeBusy bool `yaml:"include_busy"`
	// InterruptBusy offers to busy staff whose only active alarm is less urgent.
	InterruptBusy bool `yaml:"interrupt_busy"`
	// Parallel (targets arc and pager) starts the tier together with the one before.
	Parallel bool `yaml:"parallel"`
	// Pager (target pager) names the drivers.serial port of an existing DECT/paging
	// system, and CallAddress the pager or group to call there.
	Pager       string `yaml:"pager"`
	CallAddress string `yaml:"call_address"`
}

// Routing holds site-wide routing knobs.
type Routing struct {
	// OfferConfirm: an offer not confirmed delivered within this counts as unreachable.
	OfferConfirm  Duration `yaml:"offer_confirm"`
	FloorPenaltyM float64  `yaml:"floor_penalty_m"`
}

// Drivers configures the alarm sources.
type Drivers struct {
	MQTT   MQTT     `yaml:"mqtt"`
	Broker Broker   `yaml:"broker"`
	Serial []Serial `yaml:"serial"`
}

// MQTT is the MQTT driver: a connection to an external broker (paho), or, when the
// embedded broker is enabled, the in-process reader of that broker (URL, CAFile,
// Username and Password must then be empty).
type MQTT struct {
	Enabled   bool   `yaml:"enabled"`
	URL       string `yaml:"url"` // tcp://host:1883, ssl://host:8883
	ClientID  string `yaml:"client_id"`
	Username  string `yaml:"username"`
	Password  Secret `yaml:"password"`
	BaseTopic string `yaml:"base_topic"` // zigbee2mqtt
	CAFile    string `yaml:"ca_file"`
	// MaxPayload bounds a message; larger ones are counted and dropped.
	MaxPayload int `yaml:"max_payload"`
}

// Broker is the embedded MQTT broker (mochi-mqtt) for sites without one.
type Broker struct {
	Enabled bool   `yaml:"enabled"`
	Listen  string `yaml:"listen"`
	// Clients: per-client credentials and the topics each may publish and subscribe to.
	// The gateway itself is no client: it reads the broker in-process.
	Clients []BrokerClient `yaml:"clients"`
	// TLSCert and TLSKey (PEM files) make the listener TLS only, TLS 1.2 or newer
	// (S5); both or neither.
	TLSCert string `yaml:"tls_cert"`
	TLSKey  string `yaml:"tls_key"`
	// RateLimit is the publishes a second one client (username) may send on average
	// over all its connections, and RateBurst how many at once; a connection over
	// it is disconnected and counted (vakt_broker_shed_total, S6).
	RateLimit float64 `yaml:"rate_limit"`
	RateBurst int     `yaml:"rate_burst"`
}

// BrokerClient is one MQTT client the embedded broker accepts.
type BrokerClient struct {
	Username  string   `yaml:"username"`
	Password  Secret   `yaml:"password"`
	Publish   []string `yaml:"publish"`   // topic filters it may publish to
	Subscribe []string `yaml:"subscribe"` // topic filters it may subscribe to (Zigbee2MQTT: its own base topic)
}

// Serial is one ESPA 4.4.4 port.
type Serial struct {
	Name     string `yaml:"name"`
	Device   string `yaml:"device"`
	Baud     int    `yaml:"baud"`
	DataBits int    `yaml:"data_bits"`
	Parity   string `yaml:"parity"` // none, even, odd
	StopBits int    `yaml:"stop_bits"`
	// Role: slave (the call system polls us) or control-station (we poll it).
	Role    string `yaml:"role"`
	Address string `yaml:"address"` // our station address '0'..'9'
	Peer    string `yaml:"peer"`    // the call system's address
	// StatusBlocks: send status-information blocks back as alarms progress.
	StatusBlocks bool `yaml:"status_blocks"`
	// GuardTime: the pause between our EOT and the poll or selection after it
	// (control-station role); some paging systems ignore a selection that arrives
	// in the same burst as the EOT. 0 sends them together.
	GuardTime Duration     `yaml:"guard_time"`
	Rules     []SerialRule `yaml:"rules"`
	// Fallback transmitter for calls no rule maps; calls are never dropped.
	Fallback string `yaml:"fallback"`
}

// SerialRule maps an ESPA call (address and/or display text) to a transmitter.
type SerialRule struct {
	CallAddress string `yaml:"call_address"` // exact, or empty for any
	Text        string `yaml:"text"`         // regexp on the display message, or empty
	Transmitter string `yaml:"transmitter"`  // may use $1.. from Text
}

// API is the phone API listener.
type API struct {
	Listen     string   `yaml:"listen"`
	TLSCert    string   `yaml:"tls_cert"`
	TLSKey     string   `yaml:"tls_key"`
	SessionTTL Duration `yaml:"session_ttl"`
	// SeeAllRoles may list every open alarm, not only those offered to them
	// (e.g. the nurse in charge of the shift).
	SeeAllRoles []string `yaml:"see_all_roles"`
}

// Storage is where the database lives.
type Storage struct {
	Path string `yaml:"path"`
	// CheckInLinger lets check-ins that change nothing but health wait this long for
	// company before they commit (SD-card wear); 0 commits each at once.
	CheckInLinger Duration `yaml:"checkin_linger"`
}

// Privacy holds the switches the privacy policy depends on.
type Privacy struct {
	// NearestRouting enables storing positions to route to the nearest staff.
	NearestRouting bool `yaml:"nearest_routing"`
	// PositionTTL: positions older than this are purged (and count as unknown).
	PositionTTL Duration `yaml:"position_ttl"`
	// VisitNotes is the vocabulary a visit record may carry (a completed alarm's
	// visit, an ended home-care visit): staff pick one, nobody types free text, so
	// no health data can end up in a note (the policy stores visits and that an
	// EPR note was sent, never its content). An empty list turns notes off.
	VisitNotes []string `yaml:"visit_notes"`
}

// Retention is how long history is kept on the gateway (G5) before it is deleted:
// only once the cloud acknowledged it when cloud sync is enabled, after the period
// alone when it is not. Every period is required to be at least MinRetention: the
// privacy policy keeps personal data only as long as the service needs it, so
// "keep forever" (0) is not a choice. See docs/privacy.md, "Retention (G5)".
type Retention struct {
	// Alarms: completed or cancelled alarms, with their events, after they closed.
	Alarms Duration `yaml:"alarms"`
	// Events: events that opened no alarm (check-ins, restores).
	Events Duration `yaml:"events"`
	// Visits: registered visits, after they ended.
	Visits Duration `yaml:"visits"`
	// EPRRecords: the records that a note went to the EPR system.
	EPRRecords Duration `yaml:"epr_records"`
	// Audit: audit entries (the chain keeps verifying from the deleted prefix's end).
	Audit Duration `yaml:"audit"`
}

// Cloud is the sync with the vendor's cloud (docs/sync-protocol.md): the outbox goes
// up, the staff directory and erasure requests come down. Without it the gateway
// works fully on its own (local first).
type Cloud struct {
	Enabled bool `yaml:"enabled"`
	// URL is the cloud's base URL; https, except in demo mode where plain http to
	// a loopback address is allowed (cloudsim beside the demo).
	URL string `yaml:"url"`
	// GatewayID is this gateway's id at the cloud [site.id].
	GatewayID string `yaml:"gateway_id"`
	// TokenFile holds the bearer token (mode 0600 or stricter, like every secret
	// file); Token is what it holds, read when the file is loaded.
	TokenFile string `yaml:"token_file"`
	Token     Secret
	// CAFile is a PEM bundle to trust instead of the system roots.
	CAFile string `yaml:"ca_file"`
	// BatchSize is entries per upload [1000, at most 5000].
	BatchSize int `yaml:"batch_size"`
	// UploadInterval is the poll while the outbox is empty [5s]; new entries
	// wake the uploader at once. DirectoryInterval is the directory poll [1m].
	UploadInterval    Duration `yaml:"upload_interval"`
	DirectoryInterval Duration `yaml:"directory_interval"`
	// BacklogMaxEntries and BacklogMaxBytes cap the outbox while the cloud is away
	// (0 = no cap of that kind): from 80 % on health samples are compacted and a
	// technical alarm is raised; alarms, audit, visits and EPR are never dropped.
	BacklogMaxEntries int `yaml:"backlog_max_entries"`
	BacklogMaxBytes   int `yaml:"backlog_max_bytes"`
}

// Duration is a time.Duration written as "30s", "2m", "25h" in YAML.
type Duration time.Duration

// D returns the standard library value.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Secret is a value that must not be printed. In YAML it is a literal, "${ENV}" (read
// from the environment) or "file:/path" (read from a file of mode 0600 or stricter).
type Secret struct {
	Value string
	// From says where it came from for error messages, never the value.
	From string
}

// String never reveals the value.
func (s Secret) String() string {
	if s.Value == "" {
		return "(empty)"
	}
	return "(secret)"
}

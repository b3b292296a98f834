package config

import (
	"slices"
	"time"

	"github.com/vakt/vakt/drivers"
	"github.com/vakt/vakt/drivers/serial"
	"github.com/vakt/vakt/drivers/z2m"
)

// The defaults, as docs/configuration.md lists them.
const (
	DefaultAPIListen     = "127.0.0.1:8080"
	DefaultSessionTTL    = 12 * time.Hour
	DefaultStoragePath   = "data/vakt.db"
	DefaultCheckInLinger = 10 * time.Second
	DefaultOfferConfirm  = 10 * time.Second
	DefaultFloorPenaltyM = 30.0
	DefaultPositionTTL   = 15 * time.Minute
	DefaultBrokerListen  = "127.0.0.1:1883"
	// DefaultBrokerRateLimit and DefaultBrokerRateBurst bound one MQTT connection:
	// far above what a Zigbee network carries (a few dozen messages a second) and
	// a bridge's start-up burst of retained states, far below a flood.
	DefaultBrokerRateLimit = 200.0
	DefaultBrokerRateBurst = 2000
	// The drivers' own defaults, under the names configuration.md uses.
	DefaultBaseTopic       = z2m.DefaultBaseTopic
	DefaultMaxPayload      = drivers.DefaultMaxPayload
	DefaultBaud            = serial.DefaultBaud
	DefaultDataBits        = serial.DefaultDataBits
	DefaultParity          = serial.DefaultParity
	DefaultStopBits        = serial.DefaultStopBits
	DefaultSerialRole      = serial.RoleSlave
	DefaultSerialAddress   = string(rune(serial.DefaultAddress))
	DefaultSerialPeer      = string(rune(serial.DefaultPeer))
	DefaultSerialGuardTime = serial.DefaultGuardTime
	DefaultNearestCount    = 1
	DefaultCloudBatchSize  = 1000
	// DemoCloudToken is the cloud token in demo mode without cloud.token_file.
	DemoCloudToken        = "demo"
	DefaultCloudUpload    = 5 * time.Second
	DefaultCloudDirectory = time.Minute
	// DefaultCloudBacklogEntries: about two weeks of a busy site's records.
	DefaultCloudBacklogEntries = 1_000_000
	// DefaultRetention is every retention period's default: the 90 days the privacy
	// policy names (for the cloud's backups; the gateway keeps no longer either).
	DefaultRetention = 90 * 24 * time.Hour
	// MinRetention is the shortest retention period allowed: shorter is a typo
	// ("90s" for "90d") that would delete yesterday's alarm history.
	MinRetention = 24 * time.Hour
)

// DefaultVisitNotes is privacy.visit_notes unless the file sets it: outcomes of a
// visit, none of them health data.
var DefaultVisitNotes = []string{"assisted", "false alarm", "no help needed", "round", "done"}

// MaxVisitNotes and MaxVisitNote bound privacy.visit_notes: a list a nurse can pick
// from on a phone, each a short outcome.
const (
	MaxVisitNotes = 30
	MaxVisitNote  = 40
)

// ApplyDefaults fills every field left at its zero value that has a default. Parse
// calls it already; it is for configurations built in code (tests).
func (c *Config) ApplyDefaults() { applyDefaults(c, nil) }

// applyDefaults fills the fields that have defaults. given reports whether a key path
// was written in the file: a key written as 0 or "" keeps that value, so validation
// reports it rather than a default silently replacing it. A nil given means "nothing
// was written" (a Config built in code), and zero values are filled.
func applyDefaults(c *Config, given func(path string) bool) {
	unset := func(path string) bool { return given == nil || !given(path) }
	setString := func(path string, v *string, def string) {
		if *v == "" && unset(path) {
			*v = def
		}
	}
	setInt := func(path string, v *int, def int) {
		if *v == 0 && unset(path) {
			*v = def
		}
	}
	setDuration := func(path string, v *Duration, def time.Duration) {
		if *v == 0 && unset(path) {
			*v = Duration(def)
		}
	}

	setDuration("routing.offer_confirm", &c.Routing.OfferConfirm, DefaultOfferConfirm)
	if c.Routing.FloorPenaltyM == 0 && unset("routing.floor_penalty_m") {
		c.Routing.FloorPenaltyM = DefaultFloorPenaltyM
	}
	setDuration("privacy.position_ttl", &c.Privacy.PositionTTL, DefaultPositionTTL)
	if c.Privacy.VisitNotes == nil && unset("privacy.visit_notes") {
		c.Privacy.VisitNotes = slices.Clone(DefaultVisitNotes)
	}
	rt := &c.Retention
	setDuration("retention.alarms", &rt.Alarms, DefaultRetention)
	setDuration("retention.events", &rt.Events, DefaultRetention)
	setDuration("retention.visits", &rt.Visits, DefaultRetention)
	setDuration("retention.epr_records", &rt.EPRRecords, DefaultRetention)
	setDuration("retention.audit", &rt.Audit, DefaultRetention)
	setString("api.listen", &c.API.Listen, DefaultAPIListen)
	setDuration("api.session_ttl", &c.API.SessionTTL, DefaultSessionTTL)
	setString("storage.path", &c.Storage.Path, DefaultStoragePath)
	setDuration("storage.checkin_linger", &c.Storage.CheckInLinger, DefaultCheckInLinger)

	cl := &c.Cloud
	setString("cloud.gateway_id", &cl.GatewayID, c.Site.ID)
	setInt("cloud.batch_size", &cl.BatchSize, DefaultCloudBatchSize)
	setDuration("cloud.upload_interval", &cl.UploadInterval, DefaultCloudUpload)
	setDuration("cloud.directory_interval", &cl.DirectoryInterval, DefaultCloudDirectory)
	setInt("cloud.backlog_max_entries", &cl.BacklogMaxEntries, DefaultCloudBacklogEntries)

	b := &c.Drivers.Broker
	setString("drivers.broker.listen", &b.Listen, DefaultBrokerListen)
	if b.RateLimit == 0 && unset("drivers.broker.rate_limit") {
		b.RateLimit = DefaultBrokerRateLimit
	}
	setInt("drivers.broker.rate_burst", &b.RateBurst, DefaultBrokerRateBurst)

	m := &c.Drivers.MQTT
	if c.Site.ID != "" {
		setString("drivers.mqtt.client_id", &m.ClientID, "vakt-"+c.Site.ID)
	}
	setString("drivers.mqtt.base_topic", &m.BaseTopic, DefaultBaseTopic)
	setInt("drivers.mqtt.max_payload", &m.MaxPayload, DefaultMaxPayload)

	for i := range c.Drivers.Serial {
		s := &c.Drivers.Serial[i]
		p := drivers.Index("drivers.serial", i)
		setString(p+".name", &s.Name, s.Device)
		setInt(p+".baud", &s.Baud, DefaultBaud)
		setInt(p+".data_bits", &s.DataBits, DefaultDataBits)
		setString(p+".parity", &s.Parity, DefaultParity)
		setInt(p+".stop_bits", &s.StopBits, DefaultStopBits)
		setString(p+".role", &s.Role, DefaultSerialRole)
		setString(p+".address", &s.Address, DefaultSerialAddress)
		setString(p+".peer", &s.Peer, DefaultSerialPeer)
		setDuration(p+".guard_time", &s.GuardTime, DefaultSerialGuardTime)
	}

	for i := range c.Policies {
		for j := range c.Policies[i].Tiers {
			t := &c.Policies[i].Tiers[j]
			if t.Target == "nearest" {
				setInt(drivers.Index(drivers.Index("policies", i)+".tiers", j)+".count", &t.Count, DefaultNearestCount)
			}
		}
	}
}

package status

// Drivers is a snapshot of the drivers' health, shared by the status page and
// /metrics. cmd/gateway fills it from the concrete drivers, so neither this package
// nor metrics imports them.
type Drivers struct {
	MQTT   *MQTTLink     `json:"mqtt,omitempty"`
	Serial []SerialPort  `json:"serial"`
	Broker *EmbeddedMQTT `json:"broker,omitempty"`
	// Sync is nil until the cloud sync is wired: the page says "not configured" and
	// /metrics has no sync series.
	Sync *Sync `json:"sync,omitempty"`
}

// MQTTLink is the gateway's MQTT driver (the broker link).
type MQTTLink struct {
	Connected  bool   `json:"connected"`
	Reconnects uint64 `json:"reconnects"`
	Received   uint64 `json:"received"`
	Acked      uint64 `json:"acked"`
	Ignored    uint64 `json:"ignored"`
	Malformed  uint64 `json:"malformed"`
	Unknown    uint64 `json:"unknown"`
	Oversize   uint64 `json:"oversize"`
	Busy       uint64 `json:"busy"`
	Retries    uint64 `json:"retries"`
}

// SerialPort is one ESPA 4.4.4 line.
type SerialPort struct {
	Name     string `json:"name"`
	Open     bool   `json:"open"`
	Online   bool   `json:"online"`
	Failing  bool   `json:"failing"`
	Reopens  uint64 `json:"reopens"`
	Blocks   uint64 `json:"blocks"` // call blocks committed and acknowledged
	StatusIn uint64 `json:"status_in"`
	Repeats  uint64 `json:"repeats"`
	BadBCC   uint64 `json:"bad_bcc"`
	NAKs     uint64 `json:"naks"` // every NAK we answered (BCC, invalid, busy)
	Noise    uint64 `json:"noise_bytes"`
	Sent     uint64 `json:"sent"`
	Failed   uint64 `json:"failed"`
	Dropped  uint64 `json:"dropped"`
	Queued   int    `json:"queued"`
}

// EmbeddedMQTT is the embedded broker.
type EmbeddedMQTT struct {
	Addr    string   `json:"addr"`
	Clients []string `json:"clients"`
	// Shed is connections disconnected for going over drivers.broker.rate_limit;
	// the Refused counts are logins, publishes and subscriptions the ACLs refused.
	Shed             uint64 `json:"shed"`
	RefusedLogin     uint64 `json:"refused_login"`
	RefusedPublish   uint64 `json:"refused_publish"`
	RefusedSubscribe uint64 `json:"refused_subscribe"`
}

// Sync is the cloud sync's backlog.
type Sync struct {
	Backlog int64 `json:"backlog"`
}

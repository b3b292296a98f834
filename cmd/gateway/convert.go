package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	vakt "github.com/vakt/vakt"
	"github.com/vakt/vakt/broker"
	"github.com/vakt/vakt/config"
	"github.com/vakt/vakt/drivers"
	_ "github.com/vakt/vakt/drivers/all" // every driver, registered
	"github.com/vakt/vakt/drivers/mqtt"
	"github.com/vakt/vakt/routing"
	"golang.org/x/crypto/bcrypt"
)

// This file translates the configuration into each package's own options, so that
// no package but config knows the YAML shape.

func transmittersFromConfig(cfg *config.Config) []vakt.Transmitter {
	out := make([]vakt.Transmitter, 0, len(cfg.Transmitters))
	for _, t := range cfg.Transmitters {
		lat, lon := t.Lat, t.Lon
		if lat == 0 && lon == 0 {
			lat, lon = cfg.Site.Lat, cfg.Site.Lon
		}
		out = append(out, vakt.Transmitter{
			ID: vakt.TransmitterID(t.ID), Kind: vakt.TransmitterKind(t.Kind), Driver: t.Driver, Address: t.Address,
			Location:        vakt.Location{Room: t.Room, Zone: t.Zone, Floor: t.Floor, Lat: lat, Lon: lon},
			Resident:        t.Resident,
			Supervision:     t.Supervision.D(),
			PrimaryContacts: staffIDList(t.PrimaryContacts),
		})
	}
	return out
}

// staffFromConfig builds the local directory. Plain secrets are hashed here; in demo
// mode with the cheapest bcrypt cost and once per distinct secret, since demo
// secrets protect nothing and a start must stay fast (R1: ready within 1 s; the
// load sites' 200 staff sharing the sample secret cost 0.3-0.5 s of hashing per
// start on a loaded Pi-class machine). Outside demo mode every secret gets its own
// salt: one hash per staff member, so equal secrets do not show as equal hashes.
func staffFromConfig(cfg *config.Config) (dir []vakt.Staff, initial []vakt.StaffState, pins map[vakt.StaffID]vakt.Position, err error) {
	cost := bcrypt.DefaultCost
	var memo map[string]string // demo: secret -> its hash
	if cfg.Site.Demo {
		cost, memo = bcrypt.MinCost, map[string]string{}
	}
	pins = map[vakt.StaffID]vakt.Position{}
	for i, s := range cfg.Staff {
		hash := s.SecretHash
		if hash == "" && s.Secret.Value != "" {
			hash = memo[s.Secret.Value]
		}
		if hash == "" && s.Secret.Value != "" {
			h, herr := bcrypt.GenerateFromPassword([]byte(s.Secret.Value), cost)
			if herr != nil {
				return nil, nil, nil, fmt.Errorf("staff[%d].secret: %w", i, herr)
			}
			hash = string(h)
			if memo != nil {
				memo[s.Secret.Value] = hash
			}
		}
		id := vakt.StaffID(s.ID)
		dir = append(dir, vakt.Staff{ID: id, Name: s.Name, Phone: s.Phone, Email: s.Email, Roles: s.Roles, Zone: s.Zone, SecretHash: hash})
		if !cfg.Site.Demo {
			continue // duty, availability and positions come from the phones
		}
		st := vakt.StaffState{Staff: id, OnDuty: s.OnDuty, Availability: vakt.Availability(s.Availability)}
		if st.Availability == "" {
			st.Availability = vakt.Available
		}
		if s.Position != nil {
			p := vakt.Position{Lat: s.Position.Lat, Lon: s.Position.Lon, Floor: s.Position.Floor}
			st.Position = &p
			pins[id] = p
		}
		initial = append(initial, st)
	}
	return dir, initial, pins, nil
}

func staffIDList(ids []string) []vakt.StaffID {
	if len(ids) == 0 {
		return nil
	}
	out := make([]vakt.StaffID, len(ids))
	for i, id := range ids {
		out[i] = vakt.StaffID(id)
	}
	return out
}

// routingConfig translates the policies. The configuration has been validated, so
// the time zone loads and every window parses; a window that did not would become
// an empty one, which routing.New refuses rather than route on a guess.
func routingConfig(cfg *config.Config) routing.Config {
	tz, err := cfg.Site.Location()
	if err != nil {
		tz = nil // cannot happen after validation; routing then uses time.Local
	}
	rc := routing.Config{
		OfferConfirm:   cfg.Routing.OfferConfirm.D(),
		FloorPenaltyM:  cfg.Routing.FloorPenaltyM,
		NearestEnabled: cfg.Privacy.NearestRouting,
		PositionTTL:    cfg.Privacy.PositionTTL.D(),
		Location:       tz,
	}
	for _, p := range cfg.Policies {
		rp := routing.Policy{
			Name: p.Name, Priority: vakt.Priority(p.Priority), Zone: p.Zone, Rooms: p.Rooms,
			ReAlarmAfter: p.ReAlarmAfter.D(), InterruptBusy: p.InterruptBusy,
		}
		for _, k := range p.Kinds {
			rp.Kinds = append(rp.Kinds, vakt.EventKind(k))
		}
		for _, w := range p.Windows {
			from, to, err := w.Span()
			if err != nil {
				from, to = 0, 0 // refused by routing.New: an empty window
			}
			rp.Windows = append(rp.Windows, routing.Window{Days: w.Weekdays(), From: from, To: to})
		}
		for _, t := range p.Tiers {
			rp.Tiers = append(rp.Tiers, routing.Tier{
				Target: routing.Target(t.Target), Count: t.Count, Roles: t.Roles, Zone: t.Zone,
				Wait: t.Wait.D(), IncludeBusy: t.IncludeBusy, InterruptBusy: t.InterruptBusy, Parallel: t.Parallel,
				Pager: t.Pager, CallAddress: t.CallAddress,
			})
		}
		rc.Policies = append(rc.Policies, rp)
	}
	return rc
}

// brokerOptions builds the embedded broker. Its Handover is the MQTT driver's
// DeliverAsync, always: the broker keeps sessions in memory only, so it may answer a
// publisher only after the press is committed (broker.New refuses to build without
// it), and it reads each publisher's next messages meanwhile, so one connection's
// messages share group commits. The gateway reads the broker in-process and is no
// client of it.
func brokerOptions(cfg *config.Config, mq *mqtt.Driver, log *slog.Logger) (broker.Options, error) {
	if mq == nil {
		return broker.Options{}, fmt.Errorf("embedded broker: drivers.broker.enabled needs drivers.mqtt.enabled: true (the broker acknowledges a publish only after the MQTT driver committed it)")
	}
	b := cfg.Drivers.Broker
	o := broker.Options{Listen: b.Listen, Logger: log, AllowAnonymous: cfg.Site.Demo, Handover: mq.DeliverAsync,
		RateLimit: broker.RateLimit{Rate: b.RateLimit, Burst: b.RateBurst}}
	if b.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(b.TLSCert, b.TLSKey)
		if err != nil {
			// The error names the files, never their contents.
			return broker.Options{}, fmt.Errorf("drivers.broker.tls_cert, tls_key: %w; give a PEM certificate and its key", err)
		}
		o.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	} else if !cfg.Site.Demo && !loopbackListen(b.Listen) {
		log.Warn("embedded broker listens beyond loopback without TLS: passwords and presses cross the network in clear; set drivers.broker.tls_cert and tls_key", "listen", b.Listen)
	}
	for _, c := range b.Clients {
		o.Clients = append(o.Clients, broker.Client{Username: c.Username, Password: c.Password.Value, Publish: c.Publish, Subscribe: c.Subscribe})
	}
	return o, nil
}

// direct reports whether the MQTT driver reads the embedded broker in-process: it
// does whenever the embedded broker is on, whatever its listen address (config
// refuses a drivers.mqtt.url beside it).
func direct(cfg *config.Config) bool {
	return cfg.Drivers.Broker.Enabled
}

// brokerTLS is the TLS setting for a TLS broker URL: the configured CA file, or
// the system's CAs when none is given; nil for a plain URL.
func brokerTLS(m config.MQTT) (*tls.Config, error) {
	u, err := url.Parse(m.URL)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(mqtt.TLSSchemes, u.Scheme) {
		return nil, nil
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if m.CAFile != "" {
		pem, err := os.ReadFile(m.CAFile)
		if err != nil {
			return nil, fmt.Errorf("drivers.mqtt.ca_file: %w", err)
		}
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("drivers.mqtt.ca_file %s: no PEM certificate in it", m.CAFile)
		}
	}
	return c, nil
}

// checkInLinger is storage.checkin_linger, with either broker. The embedded broker
// used to be excluded: it handed each publish over synchronously, so a lingering
// check-in held back the bridge's next message (maybe a press). Since it pipelines a
// connection's publishes (broker/pipeline.go) the next message is read at once, a
// press ends the linger, and without the linger every check-in was its own fsync'd
// commit: ~25 KB written each, 5 GB a day at a busy site (P6, scripts/wear.sh).
func checkInLinger(cfg *config.Config) time.Duration {
	return cfg.Storage.CheckInLinger.D()
}

func mqttOptions(cfg *config.Config, log *slog.Logger) (mqtt.Options, error) {
	m := cfg.Drivers.MQTT
	tlsc, err := brokerTLS(m)
	if err != nil {
		return mqtt.Options{}, err
	}
	o := mqtt.Options{
		TLS: tlsc,
		URL: m.URL, ClientID: m.ClientID, Username: m.Username, Password: m.Password.Value,
		MaxPayload: m.MaxPayload, Logger: log,
		Direct: direct(cfg),
	}
	o.Dialects, err = dialects(cfg)
	return o, err
}

// dialects builds every registered MQTT dialect and gives each its transmitters, in
// a loop over the registry: a new dialect needs nothing here.
func dialects(cfg *config.Config) ([]drivers.Dialect, error) {
	settings := cfg.Drivers.MQTT.Settings()
	byName := map[string]drivers.Dialect{}
	var out []drivers.Dialect
	for _, name := range drivers.Names() {
		f, _ := drivers.Lookup(name)
		if d, ok := f(settings).(drivers.Dialect); ok {
			byName[name] = d
			out = append(out, d)
		}
	}
	for i := range cfg.Transmitters {
		t := &cfg.Transmitters[i]
		d, ok := byName[t.Driver]
		if !ok {
			continue
		}
		if err := d.Add(t.Device()); err != nil {
			return nil, fmt.Errorf("transmitters[%d] (%s): %w", i, t.ID, err)
		}
	}
	return out, nil
}

// loopbackListen reports whether a listen address is reachable from this box only.
func loopbackListen(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

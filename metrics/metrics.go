// Package metrics serves /metrics in the Prometheus text format. It is the only
// package importing github.com/prometheus/client_golang. Everything is read at
// scrape time from what the other parts already publish (the engine's View and
// counters, the drivers' counters through status.Drivers, the database file's size);
// the only things measured here are commit latency and batch size (Store wraps the
// store) and the trigger → offer latency (the engine tells it as an Observer).
// Every metric is documented in docs/metrics.md, and a test holds the two together.
package metrics

import (
	"context"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	vakt "github.com/vakt/vakt"
	"github.com/vakt/vakt/engine"
	"github.com/vakt/vakt/status"
)

// Engine is what metrics reads from the engine.
type Engine interface {
	Stats() engine.Stats
	QueueDepth() int
	View() *engine.View
}

// Options configures the metrics.
type Options struct {
	Engine Engine
	// Drivers returns the drivers' health; nil: no driver series.
	Drivers func() status.Drivers
	// DBPath is the SQLite file; its size (with -wal) is reported.
	DBPath string
	Clock  vakt.Clock
}

// Metrics holds the registry and the measured histograms.
type Metrics struct {
	opt Options
	reg *prometheus.Registry

	commit  prometheus.Histogram
	batch   prometheus.Histogram
	offer   prometheus.Histogram
	commitE prometheus.Counter

	mu      sync.Mutex
	offered map[vakt.AlarmID]bool // open alarms whose first offer was measured
}

// New registers every metric.
func New(opt Options) *Metrics {
	if opt.Clock == nil {
		opt.Clock = vakt.SystemClock{}
	}
	m := &Metrics{opt: opt, reg: prometheus.NewRegistry(), offered: map[vakt.AlarmID]bool{}}
	m.commit = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "vakt_commit_seconds", Help: "Duration of one group commit (SQLite transaction with synchronous=FULL).",
		Buckets: []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .2, .5, 1, 2},
	})
	m.batch = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "vakt_commit_batch_events", Help: "Events committed per group commit.",
		Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512},
	})
	m.offer = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "vakt_trigger_offer_seconds", Help: "From the engine taking a press to its first offer being sent (after the commit).",
		Buckets: []float64{.001, .002, .005, .01, .02, .05, .1, .2, .5, 1, 2, 5},
	})
	m.commitE = prometheus.NewCounter(prometheus.CounterOpts{Name: "vakt_commit_failures_total", Help: "Group commits that failed (disk full, card worn out)."})
	m.reg.MustRegister(m.commit, m.batch, m.offer, m.commitE, &collector{m: m},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves /metrics.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// Store wraps s so every commit's duration and size is measured.
func (m *Metrics) Store(s vakt.Store) vakt.Store { return &timedStore{Store: s, m: m} }

type timedStore struct {
	vakt.Store
	m *Metrics
}

func (t *timedStore) Commit(ctx context.Context, b *vakt.Batch) error {
	start := time.Now()
	err := t.Store.Commit(ctx, b)
	t.m.commit.Observe(time.Since(start).Seconds())
	t.m.batch.Observe(float64(len(b.Events) + b.HealthOnly))
	if err != nil {
		t.m.commitE.Inc()
	}
	return err
}

// AlarmChanged implements vakt.Observer: the first committed "offered" state of an
// alarm measures trigger → offer.
func (m *Metrics) AlarmChanged(a vakt.Alarm) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !a.State.Open() {
		delete(m.offered, a.ID)
		return
	}
	if m.offered[a.ID] || len(a.Offers) == 0 {
		return
	}
	m.offered[a.ID] = true
	m.offer.Observe(max(m.opt.Clock.Now().Sub(a.RaisedAt), 0).Seconds())
}

var (
	openStates = []vakt.AlarmState{vakt.StateRaised, vakt.StateOffered, vakt.StateAccepted, vakt.StatePresent, vakt.StateForwarded}
	kinds      = []vakt.EventKind{vakt.EventCall, vakt.EventAssist, vakt.EventEmergency, vakt.EventFall, vakt.EventSensor,
		vakt.EventDoor, vakt.EventLowBattery, vakt.EventTamper, vakt.EventOffline}
)

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

var (
	dAlarms      = desc("vakt_alarms_open", "Open alarms by kind and state.", "kind", "state")
	dTransmitter = desc("vakt_transmitters", "Transmitters by supervision state (ok, late, missed, off).", "supervision")
	dFaults      = desc("vakt_transmitters_with_faults", "Transmitters with an open technical alarm.")
	dOnDuty      = desc("vakt_staff_on_duty", "Staff members on duty.")
	dWalkTest    = desc("vakt_walk_test", "1 while the gateway is in walk-test (commissioning) mode.")
	dDegraded    = desc("vakt_storage_degraded", "1 while the last commit failed and alarms are served from memory.")
	dQueue       = desc("vakt_queue_depth", "Events and commands waiting for the engine loop.")
	dEvents      = desc("vakt_events_total", "Events committed.")
	dCommits     = desc("vakt_commits_total", "Group commits that succeeded.")
	dDBSize      = desc("vakt_db_size_bytes", "Size of the SQLite database file plus its WAL.")
	dMQTTUp      = desc("vakt_mqtt_connected", "1 while the MQTT driver is connected to its broker.")
	dMQTTReconn  = desc("vakt_mqtt_reconnects_total", "Reconnects of the MQTT driver.")
	dMQTTMsgs    = desc("vakt_mqtt_messages_total", "MQTT messages by outcome.", "outcome")
	dSerialOpen  = desc("vakt_serial_open", "1 while the serial port is open.", "port")
	dSerialUp    = desc("vakt_serial_online", "1 while the serial line is open and not silent.", "port")
	dSerialReop  = desc("vakt_serial_reopens_total", "Reopens of the serial port.", "port")
	dSerialBlk   = desc("vakt_serial_blocks_total", "ESPA call blocks committed and acknowledged.", "port")
	dSerialBCC   = desc("vakt_serial_bcc_errors_total", "ESPA blocks with a bad BCC (answered NAK).", "port")
	dSerialNAK   = desc("vakt_serial_naks_total", "NAKs answered (bad BCC, invalid, busy).", "port")
	dSerialQ     = desc("vakt_serial_queued", "Our ESPA blocks waiting to be sent.", "port")
	dBrokerCl    = desc("vakt_broker_clients", "Clients connected to the embedded broker.")
	dBrokerShed  = desc("vakt_broker_shed_total", "Embedded-broker connections disconnected for going over drivers.broker.rate_limit.")
	dBrokerRef   = desc("vakt_broker_refused_total", "Embedded-broker logins, publishes and subscriptions refused by credentials or ACL.", "what")
	dSyncBacklog = desc("vakt_sync_backlog", "Outbox records not yet synced to the cloud (absent until sync is wired).")
)

type collector struct{ m *Metrics }

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{dAlarms, dTransmitter, dFaults, dOnDuty, dWalkTest, dDegraded, dQueue, dEvents,
		dCommits, dDBSize, dMQTTUp, dMQTTReconn, dMQTTMsgs, dSerialOpen, dSerialUp, dSerialReop, dSerialBlk, dSerialBCC,
		dSerialNAK, dSerialQ, dBrokerCl, dBrokerShed, dBrokerRef, dSyncBacklog} {
		ch <- d
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	e := c.m.opt.Engine
	if v := e.View(); v != nil {
		open := map[[2]string]int{}
		for _, a := range v.Alarms {
			open[[2]string{string(a.Kind), string(a.State)}]++
		}
		for _, k := range kinds {
			for _, s := range openStates {
				gauge(dAlarms, float64(open[[2]string{string(k), string(s)}]), string(k), string(s))
			}
		}
		sup := map[string]int{"ok": 0, "late": 0, "missed": 0, "off": 0}
		faults, onDuty := 0, 0
		for _, t := range v.Transmitters {
			state := "off"
			if t.Supervision > 0 {
				state = "ok"
				if t.SilentFor > t.Supervision/2 {
					state = "late"
				}
			}
			for _, a := range t.Technical {
				if a.Kind == vakt.EventOffline {
					state = "missed"
				}
			}
			sup[state]++
			if len(t.Technical) > 0 {
				faults++
			}
		}
		for s, n := range sup {
			gauge(dTransmitter, float64(n), s)
		}
		for _, s := range v.Staff {
			if s.State.OnDuty {
				onDuty++
			}
		}
		gauge(dFaults, float64(faults))
		gauge(dOnDuty, float64(onDuty))
		gauge(dWalkTest, b2f(v.WalkTest))
	}
	st := e.Stats()
	gauge(dDegraded, b2f(st.Degraded))
	gauge(dQueue, float64(e.QueueDepth()))
	counter(dEvents, float64(st.Events))
	counter(dCommits, float64(st.Commits))
	if p := c.m.opt.DBPath; p != "" {
		var size int64
		for _, f := range []string{p, p + "-wal"} {
			if fi, err := os.Stat(f); err == nil {
				size += fi.Size()
			}
		}
		gauge(dDBSize, float64(size))
	}
	if c.m.opt.Drivers == nil {
		return
	}
	d := c.m.opt.Drivers()
	if q := d.MQTT; q != nil {
		gauge(dMQTTUp, b2f(q.Connected))
		counter(dMQTTReconn, float64(q.Reconnects))
		for outcome, n := range map[string]uint64{"received": q.Received, "acked": q.Acked, "ignored": q.Ignored,
			"malformed": q.Malformed, "unknown": q.Unknown, "oversize": q.Oversize, "busy": q.Busy} {
			counter(dMQTTMsgs, float64(n), outcome)
		}
	}
	for _, p := range d.Serial {
		gauge(dSerialOpen, b2f(p.Open), p.Name)
		gauge(dSerialUp, b2f(p.Online), p.Name)
		counter(dSerialReop, float64(p.Reopens), p.Name)
		counter(dSerialBlk, float64(p.Blocks), p.Name)
		counter(dSerialBCC, float64(p.BadBCC), p.Name)
		counter(dSerialNAK, float64(p.NAKs), p.Name)
		gauge(dSerialQ, float64(p.Queued), p.Name)
	}
	if d.Broker != nil {
		gauge(dBrokerCl, float64(len(d.Broker.Clients)))
		counter(dBrokerShed, float64(d.Broker.Shed))
		counter(dBrokerRef, float64(d.Broker.RefusedLogin), "login")
		counter(dBrokerRef, float64(d.Broker.RefusedPublish), "publish")
		counter(dBrokerRef, float64(d.Broker.RefusedSubscribe), "subscribe")
	}
	if d.Sync != nil {
		gauge(dSyncBacklog, float64(d.Sync.Backlog))
	}
}

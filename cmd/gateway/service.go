package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/vakt/vakt/engine"
	"github.com/vakt/vakt/internal/sdnotify"
	"github.com/vakt/vakt/metrics"
	"github.com/vakt/vakt/status"
)

// service is the gateway as a supervised service: health endpoints, /metrics, the
// technician's status page and systemd's notify protocol.
type service struct {
	health  *status.Health
	metrics *metrics.Metrics
	status  *status.Server
	notify  *sdnotify.Notifier
}

// openService is called once the store is open and the routing loaded.
func (m *Main) openService() {
	m.svc.health = status.NewHealth(status.PartStore, status.PartRouting, status.PartDrivers)
	m.svc.health.Ready(status.PartRouting)
	m.svc.health.Ready(status.PartStore)
	m.svc.notify = sdnotify.FromEnv()
	m.svc.metrics = metrics.New(metrics.Options{
		Engine:  engineRef{m},
		Drivers: m.driverHealth,
		DBPath:  m.Config.Storage.Path,
		Clock:   m.Clock,
	})
}

// engineRef reads m.Engine at call time (it is set after metrics are built).
type engineRef struct{ m *Main }

func (r engineRef) Stats() engine.Stats { return r.m.Engine.Stats() }
func (r engineRef) QueueDepth() int     { return r.m.Engine.QueueDepth() }
func (r engineRef) View() *engine.View  { return r.m.Engine.View() }

// routeService adds the service's endpoints to the API listener's mux.
func (m *Main) routeService(mux *http.ServeMux) {
	m.svc.status = status.New(status.Options{
		Site:    m.Config.Site.ID,
		Version: version,
		View:    m.Engine.View,
		Caller:  m.API.Caller,
		Audit:   m.Engine.AuditRead,
		History: m.DB.EventsForAlarm,
		Drivers: m.driverHealth,
		Logger:  m.Logger,
	})
	mux.HandleFunc("GET /healthz", m.svc.health.Healthz)
	mux.HandleFunc("GET /readyz", m.svc.health.Readyz)
	mux.Handle("GET /metrics", m.svc.metrics.Handler())
	mux.Handle("/status", m.svc.status)
	mux.Handle("/status/", m.svc.status)
}

// serviceReady runs once every part runs: /readyz turns 200, systemd hears READY=1,
// and the watchdog starts pinging for as long as the engine loop answers.
func (m *Main) serviceReady(ctx context.Context) {
	m.svc.health.Ready(status.PartDrivers)
	if err := m.svc.notify.Ready(); err != nil {
		m.Logger.Warn("systemd notify", "err", err)
	}
	interval, ok, err := sdnotify.WatchdogInterval()
	if err != nil {
		m.Logger.Warn("systemd watchdog off", "err", err)
	}
	if !ok {
		return
	}
	m.Logger.Info("systemd watchdog on", "interval", interval.String())
	go func() {
		err := m.svc.notify.Watchdog(ctx, m.Clock, interval, m.Engine.Ping)
		if err != nil && !errors.Is(err, context.Canceled) {
			m.Logger.Error("systemd watchdog stopped", "err", err)
		}
	}()
}

// serviceStopping tells systemd the gateway is shutting down on purpose.
func (m *Main) serviceStopping() {
	if err := m.svc.notify.Stopping(); err != nil {
		m.Logger.Warn("systemd notify", "err", err)
	}
}

// driverHealth collects the drivers' counters for the status page and /metrics.
func (m *Main) driverHealth() status.Drivers {
	var d status.Drivers
	if m.MQTT != nil {
		s := m.MQTT.Stats()
		d.MQTT = &status.MQTTLink{Connected: s.Connected, Reconnects: s.Reconnects, Received: s.Received, Acked: s.Acked,
			Ignored: s.Ignored, Malformed: s.Malformed, Unknown: s.Unknown, Oversize: s.Oversize, Busy: s.Busy, Retries: s.Retries}
	}
	for _, p := range m.Serial {
		s := p.Stats()
		d.Serial = append(d.Serial, status.SerialPort{Name: p.Name(), Open: s.Open, Online: s.Online, Failing: s.Failing,
			Reopens: s.Reopens, Blocks: s.Calls, StatusIn: s.StatusIn, Repeats: s.Repeats, BadBCC: s.BadBCC,
			NAKs: s.BadBCC + s.Invalid + s.Busy, Noise: s.NoiseBytes, Sent: s.Sent, Failed: s.Failed, Dropped: s.Dropped, Queued: s.Queued})
	}
	if m.Broker != nil {
		s := m.Broker.Stats()
		d.Broker = &status.EmbeddedMQTT{Addr: m.Broker.Addr(), Clients: m.Broker.Clients(), Shed: s.Shed,
			RefusedLogin: s.RefusedLogin, RefusedPublish: s.RefusedPublish, RefusedSubscribe: s.RefusedSubscribe}
	}
	if m.Cloud != nil {
		// The cheap in-memory count: Cloud.Stats reads every entry's length. Right
		// after a start the backlog's count may still run: wait a moment, not more.
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		n, _ := m.DB.OutboxLen(ctx)
		cancel()
		d.Sync = &status.Sync{Backlog: n}
	}
	return d
}

// cmdHealthcheck asks a running gateway's /readyz: the Docker HEALTHCHECK, since the
// image has no curl. Exit 0 when ready, 1 otherwise.
func cmdHealthcheck(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	url := fs.String("url", "http://127.0.0.1:8080/readyz", "readiness URL of the gateway")
	timeout := fs.Duration("timeout", 3*time.Second, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return err
	}
	c := &http.Client{Timeout: *timeout}
	resp, err := c.Get(*url)
	if err != nil {
		return fmt.Errorf("healthcheck: %w (is the gateway running and api.listen %s?)", err, *url)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: %s answered %d: %s", *url, resp.StatusCode, body)
	}
	fmt.Fprintf(stdout, "%s", body)
	return nil
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	vakt "github.com/vakt/vakt"
	"github.com/vakt/vakt/api"
	"github.com/vakt/vakt/broker"
	"github.com/vakt/vakt/config"
	"github.com/vakt/vakt/drivers/mqtt"
	"github.com/vakt/vakt/drivers/serial"
	"github.com/vakt/vakt/engine"
	"github.com/vakt/vakt/routing"
	"github.com/vakt/vakt/store"
	cloudsync "github.com/vakt/vakt/sync"
	"github.com/vakt/vakt/webapp"
)

// Main is one running gateway: Open builds everything from the configuration, Run
// serves until ctx ends, Close tears down in reverse order. Tests reuse it in-process.
type Main struct {
	ConfigPath string
	Log        io.Writer
	// Clock is injected by tests; nil means the system clock.
	Clock vakt.Clock

	Config *config.Config
	Logger *slog.Logger
	DB     *store.DB
	Engine *engine.Engine
	Hub    *api.Hub
	API    *api.Server
	Broker *broker.Broker
	MQTT   *mqtt.Driver
	Serial []*serial.Port
	// Cloud is the cloud sync (nil unless cloud.enabled); Cloud.Stats is its
	// health for the status page and /metrics.
	Cloud *Cloud

	cloudDone chan struct{}

	httpLn  net.Listener
	httpSrv *http.Server
	ready   chan struct{}
	unlock  func()
	svc     service // health, metrics, status page, sd_notify (service.go)
}

// Open loads the configuration and builds every part, in dependency order.
func (m *Main) Open(ctx context.Context) error {
	if m.Log == nil {
		m.Log = os.Stdout
	}
	if m.Clock == nil {
		m.Clock = vakt.SystemClock{}
	}
	m.ready = make(chan struct{})
	m.Logger = slog.New(slog.NewJSONHandler(m.Log, &slog.HandlerOptions{Level: slog.LevelInfo}))
	cfg, err := config.Load(m.ConfigPath)
	if err != nil {
		return err
	}
	m.Config = cfg
	if cfg.Site.Demo {
		m.Logger.Warn("DEMO MODE: sample secrets accepted, listeners bound to loopback only")
	}

	router, err := routing.New(routingConfig(cfg))
	if err != nil {
		return fmt.Errorf("routing: %w", err)
	}
	directory, initial, pins, err := staffFromConfig(cfg)
	if err != nil {
		return err
	}
	if m.unlock, err = lockDatabase(cfg.Storage.Path); err != nil {
		return err
	}
	m.DB, err = store.Open(ctx, cfg.Storage.Path, store.Options{Logger: m.Logger})
	if err != nil {
		return fmt.Errorf("open database %s: %w", cfg.Storage.Path, err)
	}
	m.openService()
	transmitters := transmittersFromConfig(cfg)
	// Nothing is connected after construction: the hub (the engine's notifier)
	// first, then the engine, then the phone API on the engine.
	m.Hub = api.NewHub(api.HubOptions{Transmitters: transmitters, Logger: m.Logger, Clock: m.Clock})
	// Serial ports observe alarms (status blocks back to the call system); they are
	// built after the engine, so observers are handed over through this indirection.
	observers := &observerList{}
	pagers := map[string]vakt.Pager{}
	m.Engine, err = engine.New(ctx, engine.Options{
		Observers:       []vakt.Observer{observers, m.svc.metrics},
		Pagers:          pagers,
		Store:           keepPurger(m.svc.metrics.Store(withFailpoint(m.DB)), m.DB),
		Router:          router,
		Notifier:        m.Hub,
		Clock:           m.Clock,
		Logger:          m.Logger,
		Transmitters:    transmitters,
		Directory:       directory,
		InitialStaff:    initial,
		PinnedPositions: pins,
		NearestRouting:  cfg.Privacy.NearestRouting,
		PositionTTL:     cfg.Privacy.PositionTTL.D(),
		WalkTest:        cfg.Site.WalkTest,
		CheckInLinger:   checkInLinger(cfg),
		Boot:            cloudsync.NewBootID(),
		ClockSynced:     cloudsync.ClockSynced,
	})
	if err != nil {
		return err
	}
	if m.Cloud, err = newCloud(cfg, m.Engine, m.DB, m.Clock, m.Logger); err != nil {
		return err
	}
	if m.Cloud != nil {
		observers.add(m.Cloud) // every committed alarm change wakes the uploader
	}
	m.API, err = api.New(api.Options{
		Service:     m.Engine,
		Hub:         m.Hub,
		Admin:       personAdmin{db: m.DB, eng: m.Engine},
		Logger:      m.Logger,
		Clock:       m.Clock,
		SessionTTL:  cfg.API.SessionTTL.D(),
		SeeAllRoles: cfg.API.SeeAllRoles,
	})
	if err != nil {
		return err
	}

	if cfg.Drivers.MQTT.Enabled {
		mo, err := mqttOptions(cfg, m.Engine, m.Logger)
		if err != nil {
			return err
		}
		m.MQTT, err = mqtt.New(mo)
		if err != nil {
			return fmt.Errorf("mqtt driver: %w", err)
		}
	}
	if cfg.Drivers.Broker.Enabled {
		// The driver reads the embedded broker in-process: a publish is committed
		// before the broker acknowledges it, whatever address the broker listens on.
		bo, err := brokerOptions(cfg, m.MQTT, m.Logger)
		if err != nil {
			return err
		}
		m.Broker, err = broker.New(bo)
		if err != nil {
			return fmt.Errorf("embedded broker: %w", err)
		}
	}
	for i := range cfg.Drivers.Serial {
		o, err := serialOptions(cfg, i, m.Engine, m.Logger, m.Clock)
		if err != nil {
			return err
		}
		p, err := serial.New(o)
		if err != nil {
			return fmt.Errorf("drivers.serial[%d]: %w", i, err)
		}
		m.Serial = append(m.Serial, p)
		observers.add(p)
		pagers[cfg.Drivers.Serial[i].Name] = p
	}
	m.httpLn, err = net.Listen("tcp", cfg.API.Listen)
	if err != nil {
		return fmt.Errorf("api.listen %s: %w", cfg.API.Listen, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/api/", m.API)
	mux.Handle("/app/", webapp.Handler())
	m.routeService(mux)
	m.httpSrv = api.NewHTTPServer(mux, slog.NewLogLogger(m.Logger.Handler(), slog.LevelWarn))
	return nil
}

// APIAddr is where the phone API listens (useful with port 0 in tests).
func (m *Main) APIAddr() string { return m.httpLn.Addr().String() }

// Ready is closed once every part runs.
func (m *Main) Ready() <-chan struct{} { return m.ready }

// Run starts every part and serves until ctx ends or a part fails.
func (m *Main) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 4)
	go func() { errc <- m.Engine.Run(ctx) }()
	if m.MQTT != nil && direct(m.Config) {
		// In-process: nothing to connect to, but it must run before the broker
		// accepts the first publish.
		if err := m.MQTT.Start(ctx); err != nil {
			return fmt.Errorf("mqtt driver: %w", err)
		}
	}
	if m.Broker != nil {
		if err := m.Broker.Start(); err != nil {
			return fmt.Errorf("embedded broker: %w", err)
		}
		// Every publish is committed by the MQTT driver before the broker's PUBACK.
		m.Logger.Info("embedded broker listening", "addr", m.Broker.Addr(), "handover", "in-process")
	}
	if m.MQTT != nil && !direct(m.Config) {
		// Wait a moment for the subscription so "ready" means presses are heard; a
		// broker that is down must not keep phones and serial calls waiting, so after
		// that the driver goes on connecting in the background.
		wait, cancelWait := context.WithTimeout(ctx, 3*time.Second)
		err := m.MQTT.Start(wait)
		cancelWait()
		if err != nil {
			m.Logger.Warn("mqtt broker not reachable yet; retrying in the background", "err", err)
		}
	}
	for _, p := range m.Serial {
		if err := p.Start(ctx); err != nil {
			return fmt.Errorf("serial port %s: %w", p.Name(), err)
		}
	}
	go func() {
		var err error
		if m.Config.API.TLSCert != "" {
			err = m.httpSrv.ServeTLS(m.httpLn, m.Config.API.TLSCert, m.Config.API.TLSKey)
		} else {
			err = m.httpSrv.Serve(m.httpLn)
		}
		if !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("phone api: %w", err)
		}
	}()
	if m.Cloud != nil {
		m.cloudDone = make(chan struct{})
		go func() { defer close(m.cloudDone); m.Cloud.run(ctx) }()
		m.Logger.Info("cloud sync started", "gateway_id", m.Config.Cloud.GatewayID)
	}
	m.Logger.Info("gateway ready", "api", m.APIAddr(), "site", m.Config.Site.ID, "version", version)
	close(m.ready)
	m.serviceReady(ctx)
	select {
	case <-ctx.Done():
		return ctx.Err()
	case err := <-errc:
		return err
	}
}

// Close stops everything in reverse order; sources first so nothing new arrives.
func (m *Main) Close() error {
	m.serviceStopping()
	if m.MQTT != nil {
		m.MQTT.Stop()
	}
	for _, p := range m.Serial {
		_ = p.Stop()
	}
	if m.httpSrv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = m.httpSrv.Shutdown(ctx)
		cancel()
	} else if m.httpLn != nil {
		_ = m.httpLn.Close()
	}
	if m.API != nil {
		m.API.Close()
	}
	if m.cloudDone != nil {
		<-m.cloudDone // Run's end stopped it; it must not outlive the engine
	}
	if m.Engine != nil {
		_ = m.Engine.Close()
	}
	if m.Broker != nil {
		_ = m.Broker.Close()
	}
	var err error
	if m.DB != nil {
		err = m.DB.Close()
	}
	if m.unlock != nil {
		m.unlock()
	}
	return err
}

// observerList fans committed alarm changes out to observers registered after the
// engine was built.
type observerList struct {
	list []vakt.Observer
}

func (l *observerList) add(o vakt.Observer) { l.list = append(l.list, o) }

func (l *observerList) AlarmChanged(a vakt.Alarm) {
	for _, o := range l.list {
		o.AlarmChanged(a)
	}
}

// keepPurger keeps the database's PositionPurger visible through store wrappers
// (metrics, failpoint): the engine finds it by type assertion, and without it
// erased and expired data stayed in the WAL (G1, G4).
func keepPurger(s vakt.Store, p vakt.PositionPurger) vakt.Store {
	return struct {
		vakt.Store
		vakt.PositionPurger
	}{s, p}
}

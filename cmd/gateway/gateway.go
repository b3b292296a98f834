package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
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
	"github.com/vakt/vakt/drivers"
	"github.com/vakt/vakt/drivers/mqtt"
	"github.com/vakt/vakt/drivers/serial"
	"github.com/vakt/vakt/engine"
	"github.com/vakt/vakt/outbound"
	"github.com/vakt/vakt/outbound/dc09"
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
	// ClockSynced is injected by tests whose Clock is not the system's (the 1970
	// boot of suite_clock_test.go); nil means sync.ClockSynced (the real check).
	ClockSynced func() bool
	// Level is the lowest log level written (-log-level); nil means info.
	Level slog.Leveler
	// Observers are told every committed alarm change (tests wait on them instead
	// of polling).
	Observers []vakt.Observer

	Config *config.Config
	Logger *slog.Logger
	DB     *store.DB
	Engine *engine.Engine
	Hub    *api.Hub
	API    *api.Server
	Broker *broker.Broker
	MQTT   *mqtt.Driver
	Serial []*serial.Port
	// ARC is the DC-09 link to the alarm receiving centre (arc:), nil if none.
	ARC *dc09.Link
	// Cloud is the cloud sync (nil unless cloud.enabled); Cloud.Stats is its
	// health for the status page and /metrics.
	Cloud *Cloud

	cloudDone chan struct{}
	// Sources are every configured driver transport (MQTT, serial ports), started,
	// and stopped, in a loop.
	Sources []drivers.Source

	httpLn  net.Listener
	httpSrv *http.Server
	ready   chan struct{}
	svc     service // health, metrics, status page, sd_notify (service.go)
	// Made by cmdRun before the start-up (zero: the engine and the driver make them).
	queue     engine.Queue
	mqttQueue mqtt.Queue
	rl        reloadState // what a reload compares against (reload.go)
}

// Open loads the configuration and builds every part, in dependency order.
func (m *Main) Open(ctx context.Context) error {
	if m.Log == nil {
		m.Log = os.Stdout
	}
	if m.Clock == nil {
		m.Clock = vakt.SystemClock{}
	}
	if m.ClockSynced == nil {
		m.ClockSynced = cloudsync.ClockSynced
	}
	m.ready = make(chan struct{})
	if m.Level == nil {
		m.Level = slog.LevelInfo
	}
	m.Logger = slog.New(slog.NewJSONHandler(m.Log, &slog.HandlerOptions{Level: m.levelVar()}))
	cfg, err := config.Load(m.ConfigPath)
	if err != nil {
		return err
	}
	m.Config, m.rl.cfg = cfg, cfg
	m.setLogLevel(cfg)
	m.bindAll(cfg)
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
	m.rl.dir = directory
	m.DB, err = store.Open(ctx, cfg.Storage.Path, store.Options{Logger: m.Logger, LocalOnly: !cfg.Cloud.Enabled})
	if err != nil {
		return fmt.Errorf("open database %s: %w", cfg.Storage.Path, err)
	}
	m.openService()
	transmitters := transmittersFromConfig(cfg)
	// Nothing is connected after construction: the hub (the engine's notifier) and
	// the drivers first, then the engine, then the phone API on the engine.
	m.Hub = api.NewHub(api.HubOptions{Transmitters: transmitters, Logger: m.Logger, Clock: m.Clock})
	// The drivers open nothing until Start, which gives them the engine: built first,
	// the serial ports go to the engine fully made, as observers (status blocks back to
	// the call system) and pagers.
	var (
		observers []vakt.Observer
		pagers    = map[string]vakt.Pager{}
	)
	if err := m.buildDrivers(); err != nil {
		return err
	}
	targets := map[string]vakt.Outbound{}
	for i, p := range m.Serial {
		observers = append(observers, p)
		pagers[cfg.Drivers.Serial[i].Name] = p
		// Pager tiers go through the durable outbound queue: "paged" only on the
		// paging system's ACK, withdrawn when taken first, reset afterwards.
		name := cfg.Drivers.Serial[i].Name
		targets["pager:"+name] = &outbound.Pager{Name: name, Page: p.PageWithdrawable}
	}
	arcLink, arc, err := m.buildARC(cfg)
	if err != nil {
		return err
	}
	if arc != nil {
		m.ARC, targets[engine.TargetARC] = arcLink, arc
	}
	// Tests watch committed alarm changes through Main.Observers.
	observers = append(observers, m.Observers...)
	// Every committed alarm change wakes the cloud uploader, built after the engine.
	cloudKick := &cloudObserver{}
	m.Engine, err = engine.New(ctx, engine.Options{
		Observers:       append(observers, m.svc.metrics, cloudKick),
		Pagers:          pagers,
		Outbound:        targets,
		ARCZones:        cfg.ARC.Zones,
		Store:           m.svc.metrics.Store(withFailpoint(m.DB)),
		Router:          router,
		Queue:           m.queue,
		Notifier:        m.Hub,
		Presence:        m.Hub,
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
		// A few acknowledged outbox rows wait up to a quarter of an hour to be
		// deleted together (P6; docs/privacy.md says when they leave the file).
		OutboxPurgeQuiet: 15 * time.Minute,
		Boot:             cloudsync.NewBootID(),
		ClockSynced:      m.ClockSynced,
		// History older than its period goes (G5), once the cloud has it if sync is on.
		Retention: engine.Retention{Alarms: cfg.Retention.Alarms.D(), Events: cfg.Retention.Events.D(),
			Visits: cfg.Retention.Visits.D(), EPR: cfg.Retention.EPRRecords.D(), Audit: cfg.Retention.Audit.D(),
			CloudSync: cfg.Cloud.Enabled},
	})
	if err != nil {
		return err
	}
	if m.Cloud, err = newCloud(cfg, m.Engine, m.DB, m.Clock, m.Logger); err != nil {
		return err
	}
	cloudKick.c = m.Cloud // before Run: the engine calls observers only from its loop
	m.API, err = api.New(api.Options{
		Service:     m.Engine,
		Hub:         m.Hub,
		Admin:       personAdmin{db: m.DB, eng: m.Engine},
		Logger:      m.Logger,
		Clock:       m.Clock,
		SessionTTL:  cfg.API.SessionTTL.D(),
		SeeAllRoles: cfg.API.SeeAllRoles,
		// GET /me tells phones whether to share positions at all (G1).
		NearestRouting: cfg.Privacy.NearestRouting,
		// The only notes a visit record may carry: no free text, no health data.
		VisitNotes: cfg.Privacy.VisitNotes,
	})
	if err != nil {
		return err
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
	if err := m.auditStart(ctx); err != nil {
		return err
	}
	if m.ARC != nil {
		m.ARC.Start()
	}
	// Every source runs before the embedded broker accepts the first publish (the
	// MQTT driver reads it in-process).
	for _, s := range m.Sources {
		if err := m.startSource(ctx, s); err != nil {
			return err
		}
	}
	if m.Broker != nil {
		if err := m.Broker.Start(); err != nil {
			return fmt.Errorf("embedded broker: %w", err)
		}
		// Every publish is committed by the MQTT driver before the broker's PUBACK.
		m.Logger.Info("embedded broker listening", "addr", m.Broker.Addr(), "handover", "in-process")
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
	for _, s := range m.Sources {
		if err := s.Stop(); err != nil {
			m.Logger.Warn("stop driver", "driver", s.Name(), "err", err)
		}
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
		_ = m.Engine.Close() // cancels a send in progress: resent at the next start
	}
	if m.ARC != nil {
		_ = m.ARC.Close()
	}
	if m.Broker != nil {
		_ = m.Broker.Close()
	}
	var err error
	if m.DB != nil {
		err = m.DB.Close()
	}
	return err
}

// sourceStartWait is how long Run waits for a source to reach its device, so that
// "ready" means presses are heard; a broker that is down must not keep phones and
// serial calls waiting, so after that the source goes on connecting in the background.
const sourceStartWait = 3 * time.Second

// startSource starts one driver transport with the engine as its ingester.
func (m *Main) startSource(ctx context.Context, s drivers.Source) error {
	wait, cancel := context.WithTimeout(ctx, sourceStartWait)
	defer cancel()
	err := s.Start(wait, m.Engine)
	switch {
	case err == nil:
		return nil
	case ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded):
		m.Logger.Warn("driver not connected yet; retrying in the background", "driver", s.Name(), "err", err)
		return nil
	default:
		return fmt.Errorf("driver %s: %w", s.Name(), err)
	}
}

// buildDrivers builds every configured driver transport. Nothing is opened.
func (m *Main) buildDrivers() error {
	cfg := m.Config
	if cfg.Drivers.MQTT.Enabled {
		mo, err := mqttOptions(cfg, m.Logger)
		if err != nil {
			return err
		}
		m.rl.dialects = dialectsByName(cfg, mo.Dialects)
		if mo.Direct {
			mo.Queue = m.mqttQueue // DirectQueueSize
		}
		if m.MQTT, err = mqtt.New(mo); err != nil {
			return fmt.Errorf("mqtt driver: %w", err)
		}
		m.Sources = append(m.Sources, m.MQTT)
	}
	for i := range cfg.Drivers.Serial {
		o, err := serialOptions(cfg, i, m.Logger, m.Clock)
		if err != nil {
			return err
		}
		// A line whose paging system keeps refusing our blocks: one technical alarm
		// naming the port ("outbound-pager-<name>"), closed when pages go through.
		target := "pager:" + cfg.Drivers.Serial[i].Name
		o.OnFailing = func(failing bool, _ string) {
			if m.Engine != nil {
				m.Engine.OutboundLink(target, !failing)
			}
		}
		p, err := serial.New(o)
		if err != nil {
			return fmt.Errorf("drivers.serial[%d]: %w", i, err)
		}
		m.Serial = append(m.Serial, p)
		m.Sources = append(m.Sources, p)
	}
	return nil
}

// auditStart records which configuration this run serves and whether walk-test mode
// is on (S7): a technician's change to the file, or a walk test left on, shows in
// the audit log with the file's digest.
func (m *Main) auditStart(ctx context.Context) error {
	raw, err := os.ReadFile(m.ConfigPath)
	if err != nil {
		return fmt.Errorf("audit the configuration: %w", err)
	}
	sum := sha256.Sum256(raw)
	if err := m.Engine.Audit(ctx, "technician", "config.loaded", "config:sha256:"+hex.EncodeToString(sum[:8])); err != nil {
		return fmt.Errorf("audit the configuration: %w", err)
	}
	walk := "walktest.off"
	if m.Config.Site.WalkTest {
		walk = "walktest.on"
	}
	if err := m.Engine.Audit(ctx, "technician", walk, "site:"+m.Config.Site.ID); err != nil {
		return fmt.Errorf("audit walk-test mode: %w", err)
	}
	return nil
}

// Package serial connects Vakt to a nurse call or paging system over an ESPA 4.4.4
// serial line. It is the only package that imports github.com/tarm/serial.
//
// A Port owns the device: it opens it, reads it, reopens it after an unplug, and
// raises a technical alarm while it is gone or the line is silent. The protocol
// itself, in either role (slave: the call system is Control Station and selects us;
// or Control Station: we poll it), is espa.Link, which the port feeds with what it
// reads and wakes on the clock. Calls become events through the vakt.Ingester, and a
// block is acknowledged only after the transaction holding its event has committed.
// Alarm changes go back to the call system as status-information blocks, and alarms
// can be forwarded to a paging system as call-to-pager blocks.
//
// Monitor decodes a live line for commissioning without ever writing to it.
package serial

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vakt/vakt"
	"github.com/vakt/vakt/drivers/espa"
)

// Roles of the port on the ESPA line.
const (
	// RoleSlave: the call system is Control Station; it selects us to send calls and
	// polls us for status blocks. The common case.
	RoleSlave = "slave"
	// RoleControlStation: we poll the call system and take the line back when it hangs.
	RoleControlStation = "control-station"
)

// Defaults from the specification and the field.
const (
	DefaultBaud         = 9600
	DefaultDataBits     = 7
	DefaultParity       = "even"
	DefaultStopBits     = 2
	DefaultAddress      = '2' // paging system
	DefaultPeer         = '1' // nurse call system
	DefaultReplyTimeout = espa.DefaultReplyTimeout
	DefaultRecovery     = espa.DefaultRecovery
	DefaultPollInterval = espa.DefaultPollInterval
	DefaultGuardTime    = espa.DefaultGuardTime
	DefaultMissedPolls  = espa.DefaultMissedPolls
	DefaultReopen       = 250 * time.Millisecond
)

const (
	// readTimeout bounds every Read, so Close never waits on a blocked read
	// (tarm/serial puts the descriptor in blocking mode).
	readTimeout = 100 * time.Millisecond
	// devicePoll is how often the device path is checked while the port is open.
	devicePoll = 250 * time.Millisecond
)

// Options configure one ESPA port. Zero values take the defaults above.
type Options struct {
	// Name identifies the port in logs and in Event.Source ("espa:<name>").
	Name string
	// Device is the serial device, preferably a stable /dev/serial/by-id/... path.
	Device string
	// Line settings: baud 300..115200, data bits 7 or 8, parity none/even/odd,
	// stop bits 1 or 2. Default 9600 7E2 as in the specification.
	Baud     int
	DataBits int
	Parity   string
	StopBits int
	// Role is RoleSlave (default) or RoleControlStation.
	Role string
	// Address is our station address and Peer the call system's, '0'..'9'.
	Address, Peer byte
	// StatusBlocks sends status-information blocks back as alarms progress.
	StatusBlocks bool
	// Mapper maps calls to transmitters; Mapper.Fallback is required.
	Mapper espa.Mapper
	// Line is the transmitter that technical events (port gone, line silent) are
	// raised on; default Mapper.Fallback.
	Line   vakt.TransmitterID
	Logger *slog.Logger
	Clock  vakt.Clock

	// ReplyTimeout is how long we wait for the peer's answer to a poll, a selection or
	// a block. Recovery is how long the Control Station lets the peer hold the line
	// without a valid transaction before it sends EOT. PollInterval is the pause
	// between polls with nothing to do; MissedPolls unanswered polls make the line
	// silent (a technical alarm). Silence, in the slave role, raises the same alarm
	// when the call system has sent nothing for that long (0: off).
	ReplyTimeout time.Duration
	Recovery     time.Duration
	PollInterval time.Duration
	MissedPolls  int
	Silence      time.Duration
	// GuardTime is the pause between our EOT and the poll or selection after it, in
	// the Control Station role (some paging systems ignore a selection that comes in
	// the same burst as the EOT). Zero takes DefaultGuardTime; negative: no pause.
	GuardTime time.Duration
	// Reopen is the pause between attempts to open a missing device.
	Reopen time.Duration

	// OnFailing, when set, is told when the peer has not taken our blocks (pages,
	// status) in several transactions in a row (failing true, with a reason), and
	// when it takes one again (false). It must not block.
	OnFailing func(failing bool, detail string)
}

// ParseAddress converts a configured station address ("1") to its byte.
func ParseAddress(s string) (byte, error) {
	if len(s) != 1 || s[0] < '0' || s[0] > '9' {
		return 0, fmt.Errorf("station address %q: want one digit 0..9", s)
	}
	return s[0], nil
}

func (o *Options) defaults() {
	if o.Baud == 0 {
		o.Baud = DefaultBaud
	}
	if o.DataBits == 0 {
		o.DataBits = DefaultDataBits
	}
	if o.Parity == "" {
		o.Parity = DefaultParity
	}
	if o.StopBits == 0 {
		o.StopBits = DefaultStopBits
	}
	if o.Role == "" {
		o.Role = RoleSlave
	}
	if o.Address == 0 {
		o.Address = DefaultAddress
	}
	if o.Peer == 0 {
		o.Peer = DefaultPeer
	}
	if o.Name == "" {
		o.Name = o.Device
	}
	if o.Line == "" {
		o.Line = o.Mapper.Fallback
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Clock == nil {
		o.Clock = vakt.SystemClock{}
	}
	if o.ReplyTimeout == 0 {
		o.ReplyTimeout = DefaultReplyTimeout
	}
	if o.Recovery == 0 {
		o.Recovery = DefaultRecovery
	}
	if o.PollInterval == 0 {
		o.PollInterval = DefaultPollInterval
	}
	if o.MissedPolls == 0 {
		o.MissedPolls = DefaultMissedPolls
	}
	if o.Reopen == 0 {
		o.Reopen = DefaultReopen
	}
}

// lineSettings checks what Monitor needs too.
func (o *Options) lineSettings() error {
	if o.Device == "" {
		return errors.New("device: empty (use a /dev/serial/by-id/... path)")
	}
	if err := wantOneOf("baud", o.Baud, Bauds); err != nil {
		return err
	}
	if err := wantOneOf("data bits", o.DataBits, DataBits); err != nil {
		return err
	}
	if _, err := parity(o.Parity); err != nil {
		return err
	}
	return wantOneOf("stop bits", o.StopBits, StopBits)
}

func (o *Options) validate() error {
	if err := o.lineSettings(); err != nil {
		return err
	}
	if !slices.Contains(Roles, o.Role) {
		return fmt.Errorf("role %q: want one of %s", o.Role, strings.Join(Roles, ", "))
	}
	if _, err := ParseAddress(string(o.Address)); err != nil {
		return fmt.Errorf("address: %w", err)
	}
	if _, err := ParseAddress(string(o.Peer)); err != nil {
		return fmt.Errorf("peer: %w", err)
	}
	if o.Address == o.Peer {
		return fmt.Errorf("address and peer are both %q: the call system needs its own address", o.Address)
	}
	if o.Mapper.Fallback == "" {
		return errors.New("fallback: empty (calls no rule maps must raise an alarm somewhere)")
	}
	if o.ReplyTimeout < 0 || o.Recovery < 0 || o.PollInterval < 0 || o.MissedPolls < 0 || o.Silence < 0 || o.Reopen < 0 {
		return errors.New("timeouts must not be negative")
	}
	return nil
}

// Port is one supervised ESPA 4.4.4 port. It implements vakt.Observer and
// vakt.Pager. The link layer itself is espa.Link; the port owns the device.
type Port struct {
	o      Options
	log    *slog.Logger
	source string
	open   func(*Options) (line, error)

	link     *espa.Link
	in       vakt.Ingester // from Start
	feedback espa.Feedback

	h       health
	reports *reporter
	stats   counters

	runMu  sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
}

// New validates the options and returns a port that has opened nothing yet.
func New(o Options) (*Port, error) {
	o.defaults()
	if err := o.validate(); err != nil {
		return nil, fmt.Errorf("serial port %s: %w", o.Name, err)
	}
	p := &Port{
		o:      o,
		log:    o.Logger.With("port", o.Name),
		source: "espa:" + o.Name,
		open:   openTTY,
	}
	p.h.p = p
	p.reports = &reporter{p: p, wake: make(chan struct{}, 1)}
	role := espa.RoleSlave
	if o.Role == RoleControlStation {
		role = espa.RoleControlStation
	}
	lc := espa.LinkConfig{
		Role: role, Address: o.Address, Peer: o.Peer,
		ReplyTimeout: o.ReplyTimeout, Recovery: o.Recovery, PollInterval: o.PollInterval,
		GuardTime: o.GuardTime, Silence: o.Silence, MissedPolls: o.MissedPolls,
		Clock: o.Clock, Logger: p.log,
		OnCall: p.onCall,
		OnLine: func(up bool, detail string) {
			p.h.set(true, !up, fmt.Sprintf("serial line %s: %s", o.Name, detail))
		},
		OnFailing: o.OnFailing,
	}
	// The ingester arrives at Start, before the link runs.
	lc.Busy = func() bool {
		b, ok := p.in.(interface{ Busy() bool })
		return ok && b.Busy()
	}
	p.link = espa.NewLink(lc)
	return p, nil
}

// Name returns the port's name.
func (p *Port) Name() string { return p.o.Name }

// Start opens the port and runs it until Stop, handing calls to in. A
// missing device is not an error: it raises a technical alarm and is retried until it
// appears.
func (p *Port) Start(ctx context.Context, in vakt.Ingester) error {
	p.runMu.Lock()
	defer p.runMu.Unlock()
	if p.done != nil {
		return fmt.Errorf("serial port %s: already started", p.o.Name)
	}
	if in == nil {
		return fmt.Errorf("serial port %s: start: no ingester", p.o.Name)
	}
	p.in = in
	// ctx bounds Start only (drivers.Source): the port runs until Stop.
	ctx, p.cancel = context.WithCancel(context.WithoutCancel(ctx))
	p.done = make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.reports.run(ctx) }()
	go func() { defer wg.Done(); p.run(ctx) }()
	go func() { wg.Wait(); close(p.done) }()
	return nil
}

// Stop closes the port and waits for its goroutines. Reads time out every 100 ms, so
// it returns promptly whatever the line does.
func (p *Port) Stop() error {
	p.runMu.Lock()
	defer p.runMu.Unlock()
	if p.done == nil {
		return nil
	}
	p.cancel()
	<-p.done
	return nil
}

// run opens the device, serves it until it fails, and reopens it.
func (p *Port) run(ctx context.Context) {
	h := &p.h
	opened := false
	for ctx.Err() == nil {
		ln, err := p.open(&p.o)
		if err != nil {
			if h.device || !h.known {
				p.log.Warn("serial port unavailable", "device", p.o.Device, "err", err)
			}
			h.set(false, false, fmt.Sprintf("serial port %s unavailable: %v", p.o.Name, err))
			if !sleep(ctx, p.o.Reopen) {
				return
			}
			continue
		}
		if opened {
			p.stats.reopens.Add(1)
		}
		opened = true
		p.stats.open.Store(true)
		p.log.Info("serial port open", "device", p.o.Device, "role", p.o.Role,
			"line", lineString(&p.o))
		h.set(true, false, "")
		err = p.serve(ctx, ln)
		ln.Close()
		p.stats.open.Store(false)
		if ctx.Err() != nil {
			return
		}
		p.log.Warn("serial port lost", "device", p.o.Device, "err", err)
		h.set(false, false, fmt.Sprintf("serial port %s lost: %v", p.o.Name, err))
		if !sleep(ctx, p.o.Reopen) {
			return
		}
	}
}

// health raises a technical alarm on the line transmitter when the device or the line
// fails, and checks in when both are well again. The run goroutine sets the device
// state, the link the line state.
type health struct {
	p              *Port
	mu             sync.Mutex
	known          bool
	device, silent bool
	up             bool
}

func (h *health) set(device, silent bool, detail string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.device, h.silent = device, silent
	up := device && !silent
	if h.known && up == h.up {
		return
	}
	h.known, h.up = true, up
	h.p.stats.online.Store(up)
	kind := vakt.EventCheckIn
	if !up {
		kind = vakt.EventOffline
	} else {
		detail = fmt.Sprintf("serial line %s up", h.p.o.Name)
	}
	h.p.reports.add(vakt.Event{
		Transmitter: h.p.o.Line,
		Kind:        kind,
		Source:      h.p.source,
		Text:        detail,
		ReceivedAt:  h.p.o.Clock.Now(),
	})
}

// reporter hands technical events to the ingester one at a time, retrying while it is
// busy, so that supervision never blocks the line.
type reporter struct {
	p    *Port
	mu   sync.Mutex
	q    []vakt.Event
	wake chan struct{}
}

func (r *reporter) add(ev vakt.Event) {
	r.mu.Lock()
	if len(r.q) >= 16 {
		r.q = r.q[1:]
	}
	r.q = append(r.q, ev)
	r.mu.Unlock()
	poke(r.wake)
}

func (r *reporter) run(ctx context.Context) {
	for {
		r.mu.Lock()
		var ev vakt.Event
		ok := len(r.q) > 0
		if ok {
			ev = r.q[0]
		}
		r.mu.Unlock()
		if !ok {
			select {
			case <-ctx.Done():
				return
			case <-r.wake:
				continue
			}
		}
		done := make(chan error, 1)
		err := r.p.in.Ingest(ev, func(err error) { done <- err })
		if err == nil {
			select {
			case err = <-done:
			case <-ctx.Done():
				return
			}
		}
		if err != nil {
			r.p.log.Warn("technical event not committed; retrying", "transmitter", ev.Transmitter, "kind", ev.Kind, "err", err)
			if !sleep(ctx, time.Second) {
				return
			}
			continue
		}
		r.mu.Lock()
		if len(r.q) > 0 {
			r.q = r.q[1:]
		}
		r.mu.Unlock()
	}
}

// Stats are the port's counters since New: the port's own, and its ESPA link's
// (LinkStats.Calls counts call blocks committed and acknowledged).
type Stats struct {
	Open    bool // the device is open
	Online  bool // open, and the line is not silent
	Reopens uint64

	Cancels  uint64 // calls that were resets
	Unmapped uint64 // calls that went to the fallback transmitter

	espa.LinkStats
}

type counters struct {
	open, online               atomic.Bool
	reopens, cancels, unmapped atomic.Uint64
}

// Stats returns a snapshot of the counters.
func (p *Port) Stats() Stats {
	c := &p.stats
	return Stats{
		Open: c.open.Load(), Online: c.online.Load(), Reopens: c.reopens.Load(),
		Cancels: c.cancels.Load(), Unmapped: c.unmapped.Load(),
		LinkStats: p.link.Stats(),
	}
}

func poke(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

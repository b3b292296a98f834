package main

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// loadOpts describes one run of simulated transmitters.
type loadOpts struct {
	Broker       string // host:port
	User, Pass   string
	Transmitters int
	Conns        int           // MQTT connections the transmitters share (bridges)
	Rate         float64       // presses offered per second
	Duration     time.Duration // how long presses are offered
	CheckIns     float64       // check-ins per second on random transmitters
	// SteadyHealth: check-ins report the same battery and link quality every time
	// (health samples for the cloud then go out at most every 15 minutes per
	// transmitter); otherwise both change with every check-in (a sample each).
	SteadyHealth bool
	// Blind: each press is followed at once by its cancel, without waiting for the
	// offer (crash runs: durability, not latency). Otherwise a transmitter presses,
	// waits for the offer on a phone, then cancels; its next press is a new alarm.
	Blind        bool
	OfferTimeout time.Duration // gated: a press with no offer within this is counted and cancelled
	Drain        time.Duration // after Duration, how long to wait for PUBACKs and offers
}

// Message kinds in the ledger.
const (
	kindPress   = 'p'
	kindCancel  = 'c'
	kindCheckIn = 'k'
)

// ledger records every message published, by unique sequence number, and which of
// them the broker acknowledged. It outlives gateway restarts (crash loops).
type ledger struct {
	run   string // in every payload: "run":"<run>", so runs sharing a database are told apart
	mu    sync.Mutex
	next  int64
	kind  []byte  // by seq
	acked []bool  // by seq
	tx    []int32 // by seq: the transmitter's index (-1: unknown, an old ledger)
	sent  []int64 // by seq: when it was handed to the connection, Unix ns
}

func newLedger() *ledger {
	return &ledger{run: strconv.FormatInt(time.Now().UnixNano(), 36)}
}

func (l *ledger) add(kind byte, tx int, sent time.Time) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.next
	l.next++
	l.kind = append(l.kind, kind)
	l.acked = append(l.acked, false)
	l.tx = append(l.tx, int32(tx))
	l.sent = append(l.sent, sent.UnixNano())
	return s
}

func (l *ledger) ack(seq int64) {
	l.mu.Lock()
	l.acked[seq] = true
	l.mu.Unlock()
}

func (l *ledger) counts() (published, acked int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, a := range l.acked {
		if a {
			acked++
		}
	}
	return int64(len(l.kind)), acked
}

// save writes "seq kind acked tx sent" lines, for a later `loadgen verify`.
func (l *ledger) save(path string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	fmt.Fprintf(w, "run %s\n", l.run)
	for i, k := range l.kind {
		a := 0
		if l.acked[i] {
			a = 1
		}
		fmt.Fprintf(w, "%d %c %d %d %d\n", i, k, a, l.tx[i], l.sent[i])
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func loadLedger(path string) (*ledger, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	l := &ledger{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) == 2 && fs[0] == "run" {
			l.run = fs[1]
			continue
		}
		if (len(fs) != 3 && len(fs) != 5) || len(fs[1]) != 1 {
			return nil, fmt.Errorf("ledger %s: bad line %q", path, sc.Text())
		}
		if n, _ := strconv.ParseInt(fs[0], 10, 64); n != l.next {
			return nil, fmt.Errorf("ledger %s: seq %s out of order", path, fs[0])
		}
		tx, sent := int64(-1), int64(0)
		if len(fs) == 5 {
			var err1, err2 error
			tx, err1 = strconv.ParseInt(fs[3], 10, 32)
			sent, err2 = strconv.ParseInt(fs[4], 10, 64)
			if err1 != nil || err2 != nil {
				return nil, fmt.Errorf("ledger %s: bad line %q", path, sc.Text())
			}
		}
		l.add(fs[1][0], int(tx), time.Unix(0, sent))
		if fs[2] == "1" {
			l.ack(l.next - 1)
		}
	}
	return l, sc.Err()
}

// slot is one bridge connection, redialled when it dies (the gateway restarted).
type slot struct {
	mu    sync.Mutex
	c     *mqttConn
	kick  chan struct{} // flush request
	dials atomic.Int64
}

func (s *slot) get() *mqttConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.c
}

type txState struct {
	mu       sync.Mutex
	awaiting bool
	intended time.Time // when the schedule wanted the press
	sent     time.Time // when it was written (later when every transmitter was busy)
}

// loadResult is what one run measured.
type loadResult struct {
	Label       string  `json:"label"`
	OfferedRate float64 `json:"offered_presses_per_s"`
	Seconds     float64 `json:"seconds"`
	Presses     int64   `json:"presses"`
	Cancels     int64   `json:"cancels"`
	CheckIns    int64   `json:"checkins"`
	Published   int64   `json:"published"`
	Acked       int64   `json:"acked"`
	NotSent     int64   `json:"not_sent"`
	EventsPerS  float64 `json:"acked_events_per_s"`
	PressesPerS float64 `json:"acked_presses_per_s"`
	Offers      int64   `json:"offers_matched"`
	NoOffer     int64   `json:"presses_without_offer"`
	Stray       int64   `json:"offers_unmatched"`
	Lat         latency `json:"press_to_offer_ms"`
	// PerMinute: offers matched and their press → offer p99, minute by minute.
	PerMinute []minuteResult `json:"per_minute,omitempty"`
	Svc       latency        `json:"sent_to_offer_ms"`
	Ack       latency        `json:"publish_to_puback_ms"`
	// IO is the system under test's disk writes during the load (-io-pid).
	IO           *ioWindow `json:"io,omitempty"`
	PhoneDrops   int64     `json:"phone_drops"`
	Reconnects   int64     `json:"mqtt_reconnects"`
	Verification *verdict  `json:"verification,omitempty"`

	FloorCommitMs    float64 `json:"floor_commit_ms,omitempty"`
	FloorCommitsPerS float64 `json:"floor_commits_per_s,omitempty"`
}

// minute is what one minute of a run delivered: a cliff (a long storm falling off
// its throughput) shows as a minute far below the first.
type minute struct {
	offers int64
	lat    []time.Duration
}

// minuteResult is one minute of a run in the result.
type minuteResult struct {
	Offers int64   `json:"offers"`
	P99    float64 `json:"p99_ms"`
}

type latency struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

func percentiles(ds []time.Duration) latency {
	if len(ds) == 0 {
		return latency{}
	}
	slices.Sort(ds)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	at := func(q float64) float64 { return ms(ds[min(len(ds)-1, int(q*float64(len(ds))))]) }
	return latency{N: len(ds), P50: at(0.50), P90: at(0.90), P99: at(0.99), Max: ms(ds[len(ds)-1])}
}

// loader runs transmitters against a broker; phones (if any) call offer.
type loader struct {
	o     loadOpts
	led   *ledger
	slots []*slot
	tx    []txState
	idle  chan int

	mu        sync.Mutex
	lat, ackd []time.Duration
	svc       []time.Duration // sent → offer
	seen      map[string]bool // alarm ids whose first offer was matched or seen
	started   time.Time       // the schedule's start, for minutes
	minutes   []minute        // offers matched by the minute they arrived in

	presses, cancels, checkins, notSent, offers, noOffer, stray atomic.Int64
}

func newLoader(o loadOpts, led *ledger) *loader {
	if o.Conns < 1 {
		o.Conns = 1
	}
	if o.OfferTimeout == 0 {
		o.OfferTimeout = 10 * time.Second
	}
	if o.Drain == 0 {
		o.Drain = 15 * time.Second
	}
	l := &loader{o: o, led: led, tx: make([]txState, o.Transmitters), idle: make(chan int, o.Transmitters), seen: map[string]bool{}}
	for i := range o.Transmitters {
		l.idle <- i
	}
	for range o.Conns {
		l.slots = append(l.slots, &slot{kick: make(chan struct{}, 1)})
	}
	return l
}

// connect dials every bridge (retrying while the broker comes up, bounded) and keeps
// redialling a connection that dies until ctx ends.
func (l *loader) connect(ctx context.Context) error {
	var wg sync.WaitGroup
	errs := make(chan error, len(l.slots))
	for i, s := range l.slots {
		id := fmt.Sprintf("loadgen-bridge-%d", i)
		dial := func() (*mqttConn, error) {
			var err error
			for range 400 { // ≈ 20 s
				var c *mqttConn
				if c, err = dialMQTT(l.o.Broker, id, l.o.User, l.o.Pass, 2*time.Second); err == nil {
					s.dials.Add(1)
					return c, nil
				}
				select {
				case <-ctx.Done():
					return nil, ctx.Err()
				case <-time.After(50 * time.Millisecond): // broker (re)starting
				}
			}
			return nil, err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := dial()
			if err != nil {
				errs <- fmt.Errorf("bridge %d: %w", i, err)
				return
			}
			s.mu.Lock()
			s.c = c
			s.mu.Unlock()
			go func() { // flusher, and redialler
				for {
					select {
					case <-ctx.Done():
						return
					case <-s.kick:
						if c := s.get(); c != nil {
							_ = c.flush()
						}
					case <-s.get().done:
						s.mu.Lock()
						s.c = &mqttConn{done: make(chan struct{}), err: errGone} // dead placeholder
						s.mu.Unlock()
						c, err := dial()
						if err != nil {
							return
						}
						s.mu.Lock()
						s.c = c
						s.mu.Unlock()
					}
				}
			}()
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// publish sends one message of kind for transmitter i; then runs after the PUBACK.
func (l *loader) publish(i int, kind byte, then func(ok bool)) bool {
	s := l.slots[i%len(l.slots)]
	c := s.get()
	seq := l.led.add(kind, i, time.Now())
	var payload string
	switch kind {
	case kindPress:
		payload = fmt.Sprintf(`{"action":"emergency","run":"%s","seq":%d}`, l.led.run, seq)
	case kindCancel:
		payload = fmt.Sprintf(`{"action":"reset","run":"%s","seq":%d}`, l.led.run, seq)
	default:
		battery, link := 60+seq%40, 100+seq%100
		if l.o.SteadyHealth {
			battery, link = 80, 120
		}
		payload = fmt.Sprintf(`{"battery":%d,"linkquality":%d,"run":"%s","seq":%d}`, battery, link, l.led.run, seq)
	}
	sent := time.Now()
	err := c.publish("zigbee2mqtt/"+txAddr(i), []byte(payload), func(ok bool) {
		if ok {
			l.led.ack(seq)
			d := time.Since(sent)
			l.mu.Lock()
			l.ackd = append(l.ackd, d)
			l.mu.Unlock()
		}
		if then != nil {
			then(ok)
		}
	})
	if err != nil {
		l.notSent.Add(1)
		return false
	}
	select {
	case s.kick <- struct{}{}:
	default:
	}
	switch kind {
	case kindPress:
		l.presses.Add(1)
	case kindCancel:
		l.cancels.Add(1)
	default:
		l.checkins.Add(1)
	}
	return true
}

// offer is called by a phone for every offer it receives.
func (l *loader) offer(tx, alarm string, at time.Time) {
	i, err := strconv.Atoi(strings.TrimPrefix(tx, "tx-"))
	if err != nil || i < 0 || i >= len(l.tx) {
		l.stray.Add(1)
		return
	}
	l.mu.Lock()
	again := l.seen[alarm]
	l.seen[alarm] = true
	l.mu.Unlock()
	t := &l.tx[i]
	t.mu.Lock()
	if again || !t.awaiting || l.o.Blind {
		t.mu.Unlock()
		l.stray.Add(1)
		return
	}
	t.awaiting = false
	d, ds := at.Sub(t.intended), at.Sub(t.sent)
	t.mu.Unlock()
	l.offers.Add(1)
	l.mu.Lock()
	l.lat = append(l.lat, d)
	l.svc = append(l.svc, ds)
	if m := int(at.Sub(l.started) / time.Minute); m >= 0 && !l.started.IsZero() {
		for len(l.minutes) <= m {
			l.minutes = append(l.minutes, minute{})
		}
		l.minutes[m].offers++
		l.minutes[m].lat = append(l.minutes[m].lat, d)
	}
	l.mu.Unlock()
	l.cancel(i)
}

func (l *loader) cancel(i int) {
	if !l.publish(i, kindCancel, func(bool) { l.idle <- i }) {
		l.idle <- i
	}
}

// watchdog cancels presses that got no offer within OfferTimeout.
func (l *loader) watchdog(ctx context.Context) {
	tk := time.NewTicker(250 * time.Millisecond)
	defer tk.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tk.C:
			for i := range l.tx {
				t := &l.tx[i]
				t.mu.Lock()
				late := t.awaiting && now.Sub(t.sent) > l.o.OfferTimeout
				if late {
					t.awaiting = false
				}
				t.mu.Unlock()
				if late {
					l.noOffer.Add(1)
					l.cancel(i)
				}
			}
		}
	}
}

// run offers presses at o.Rate for o.Duration, then waits (at most o.Drain) for the
// outstanding PUBACKs and offers. Latency is measured from each press's scheduled
// time, so a saturated system is not flattered (no coordinated omission).
func (l *loader) run(ctx context.Context, stop <-chan struct{}) loadResult {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go l.watchdog(ctx)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	start := time.Now()
	l.mu.Lock()
	l.started = start
	l.mu.Unlock()
	end := start.Add(l.o.Duration)
	if l.o.CheckIns > 0 {
		go func() {
			for k := 0; ; k++ {
				due := start.Add(time.Duration(float64(k) * float64(time.Second) / l.o.CheckIns))
				if !due.Before(end) {
					return
				}
				if !sleepUntil(ctx, stop, due) {
					return
				}
				l.publish(rng.IntN(len(l.tx)), kindCheckIn, nil)
			}
		}()
	}
	endTimer := time.NewTimer(l.o.Duration)
	defer endTimer.Stop()
	rr := 0
schedule:
	for k := 0; l.o.Rate > 0; k++ {
		due := start.Add(time.Duration(float64(k) * float64(time.Second) / l.o.Rate))
		if !due.Before(end) {
			break
		}
		if !sleepUntil(ctx, stop, due) {
			break
		}
		if l.o.Blind {
			i := rr % len(l.tx)
			rr++
			if l.publish(i, kindPress, nil) {
				l.publish(i, kindCancel, nil)
			}
			continue
		}
		var i int
		select {
		case i = <-l.idle:
		case <-endTimer.C:
			break schedule
		case <-stop:
			break schedule
		case <-ctx.Done():
			break schedule
		}
		t := &l.tx[i]
		t.mu.Lock()
		t.awaiting, t.intended, t.sent = true, due, time.Now()
		t.mu.Unlock()
		if !l.publish(i, kindPress, nil) {
			t.mu.Lock()
			t.awaiting = false
			t.mu.Unlock()
			l.idle <- i
		}
	}
	if l.o.Rate <= 0 { // check-ins only
		sleepUntil(ctx, stop, end)
	}
	offered := time.Since(start)
	// Drain: outstanding PUBACKs and (gated) offers, bounded.
	deadline := time.Now().Add(l.o.Drain)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		busy := 0
		for _, s := range l.slots {
			busy += s.get().inflight()
		}
		if !l.o.Blind {
			busy += len(l.tx) - len(l.idle)
		}
		if busy == 0 {
			break
		}
		time.Sleep(20 * time.Millisecond) // polling counters of a running load
	}
	secs := time.Since(start).Seconds()
	var reconnects int64
	for _, s := range l.slots {
		reconnects += s.dials.Load() - 1
	}
	cancel()
	for _, s := range l.slots {
		if c := s.get(); c != nil {
			c.close()
		}
	}
	published, acked := l.led.counts()
	l.mu.Lock()
	defer l.mu.Unlock()
	r := loadResult{
		OfferedRate: l.o.Rate, Seconds: offered.Seconds(),
		Presses: l.presses.Load(), Cancels: l.cancels.Load(), CheckIns: l.checkins.Load(),
		Published: published, Acked: acked, NotSent: l.notSent.Load(),
		Offers: l.offers.Load(), NoOffer: l.noOffer.Load(), Stray: l.stray.Load(),
		Lat: percentiles(l.lat), Svc: percentiles(l.svc), Ack: percentiles(l.ackd),
	}
	for _, m := range l.minutes {
		r.PerMinute = append(r.PerMinute, minuteResult{Offers: m.offers, P99: percentiles(m.lat).P99})
	}
	r.EventsPerS = float64(len(l.ackd)) / secs
	r.PressesPerS = float64(r.Offers) / secs
	if l.o.Blind {
		r.PressesPerS = float64(r.Presses) / secs
	}
	r.Reconnects = reconnects
	return r
}

func sleepUntil(ctx context.Context, stop <-chan struct{}, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		select {
		case <-stop:
			return false
		default:
			return ctx.Err() == nil
		}
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-stop:
		return false
	case <-ctx.Done():
		return false
	}
}

package dc09

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	vakt "github.com/vakt/vakt"
)

// Errors from a Link.
var (
	// ErrRejected means the receiver answered DUH: it did not understand the
	// message and never will, so resending it is pointless.
	ErrRejected = errors.New("dc09: receiver rejected the message (DUH)")
	// ErrClosed means the Link was closed.
	ErrClosed = errors.New("dc09: link closed")
	// errTimeout is one attempt without an answer.
	errTimeout = errors.New("no answer from receiver")
)

// Message is what a caller hands to Link.Send. The Link adds the sequence number,
// receiver, line, account ("#<account>|" in front of Data), timestamp and encryption.
type Message struct {
	ID       string   // ADMCID or SIADCS
	Data     string   // without the account, e.g. "1101 01 015" or "Nri1/MA015"
	Extended []string // optional extended data fields, without brackets
	// Seq 0 lets the Link assign the next number; a caller resending a message it
	// already sent before a restart passes the number it had.
	Seq int
}

// LinkConfig configures a Link. Zero values take the defaults noted.
type LinkConfig struct {
	Network  string // "tcp" (default) or "udp"
	Addr     string // the receiver, host:port
	Account  string // 3-16 hex digits the ARC assigned
	Receiver string // receiver number without 'R'; "" omits the field
	Line     string // line number without 'L'; default "0"
	// Key, if set (16, 24 or 32 bytes), encrypts every frame with AES-CBC.
	Key []byte
	// OmitTime leaves the timestamp out of unencrypted frames (encrypted ones
	// always carry it: the receiver checks it against its clock).
	OmitTime bool

	Timeout    time.Duration // wait for ACK per attempt; default 10 s
	MinBackoff time.Duration // first wait before a retry; default 1 s
	MaxBackoff time.Duration // the wait doubles up to this; default 60 s
	// LinkTest is the NULL message interval after the last exchange; 0 sends none.
	LinkTest time.Duration
	// OnLink is told when the link is lost (false) and when it is back (true):
	// a technical alarm. It starts assumed up, so the first report is a loss. It is
	// called in order from the goroutine that noticed; it must not call Send.
	OnLink func(up bool)

	Clock  vakt.Clock   // default the system clock
	Logger *slog.Logger // default discards
	// Dial opens the connection; default net.Dialer.DialContext.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Link is a client to one ARC receiver. DC-09 is stop-and-wait: one message is in
// flight at a time, so concurrent Sends queue behind each other.
type Link struct {
	cfg LinkConfig
	log *slog.Logger

	mu     sync.Mutex // held for a whole exchange: one message in flight
	cn     *conn
	seq    int
	offset time.Duration // receiver's clock minus ours, learnt from NAKs

	state  sync.Mutex
	up     bool
	closed bool
	test   vakt.Timer
	done   chan struct{}

	hook func(event string, d time.Duration) // tests: a timer was armed for d ("timeout", "backoff", "linktest"), or a reply "ignored"
}

type conn struct {
	c      net.Conn
	frames chan []byte
	done   chan struct{}
	err    error // set before done closes
}

// NewLink validates cfg and returns a Link; it opens nothing until the first Send
// or Start.
func NewLink(cfg LinkConfig) (*Link, error) {
	if cfg.Network == "" {
		cfg.Network = "tcp"
	}
	if cfg.Network != "tcp" && cfg.Network != "udp" {
		return nil, fmt.Errorf("dc09: protocol %q: use tcp or udp", cfg.Network)
	}
	if cfg.Addr == "" {
		return nil, errors.New("dc09: receiver address is empty: set host:port")
	}
	if len(cfg.Account) < 3 || len(cfg.Account) > 16 || !alnum(cfg.Account) {
		return nil, fmt.Errorf("dc09: account %q: use the 3-16 hex digits the ARC assigned", cfg.Account)
	}
	if cfg.Line == "" {
		cfg.Line = "0"
	}
	if len(cfg.Receiver) > 6 || !isHex(cfg.Receiver) || len(cfg.Line) > 6 || !isHex(cfg.Line) {
		return nil, fmt.Errorf("dc09: receiver %q / line %q: use 1-6 hex digits", cfg.Receiver, cfg.Line)
	}
	if cfg.Key != nil {
		if err := checkKey(cfg.Key); err != nil {
			return nil, err
		}
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = time.Second
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(60*time.Second, cfg.MinBackoff)
	}
	if cfg.Clock == nil {
		cfg.Clock = vakt.SystemClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Dial == nil {
		var d net.Dialer
		cfg.Dial = d.DialContext
	}
	return &Link{cfg: cfg, log: cfg.Logger.With("arc", cfg.Addr), up: true, done: make(chan struct{})}, nil
}

// Start arms the link test, if configured.
func (l *Link) Start() { l.armTest() }

// Up reports whether the last exchange got an answer (true before the first).
func (l *Link) Up() bool {
	l.state.Lock()
	defer l.state.Unlock()
	return l.up
}

// Close stops the link test and drops the connection; a Send in progress returns
// ErrClosed.
func (l *Link) Close() error {
	l.state.Lock()
	if l.closed {
		l.state.Unlock()
		return nil
	}
	l.closed = true
	if l.test != nil {
		l.test.Stop()
	}
	close(l.done)
	l.state.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.drop()
	return nil
}

// Send delivers m and returns once the receiver acknowledged it, with the sequence
// number used. It retries with the same sequence number until ACK, ctx ends (its
// error is returned) or the receiver answers DUH (ErrRejected). A NAK resyncs the
// timestamp to the receiver's clock and resends.
func (l *Link) Send(ctx context.Context, m Message) (int, error) {
	if m.ID != ADMCID && m.ID != SIADCS {
		return 0, fmt.Errorf("dc09: send: message id %q: use %s or %s", m.ID, ADMCID, SIADCS)
	}
	if m.Seq < 0 || m.Seq > MaxSeq {
		return 0, fmt.Errorf("dc09: send: sequence %d outside 1..%d", m.Seq, MaxSeq)
	}
	// The link test is re-armed after the lock is released, so a test falling due
	// at once finds the link free.
	defer l.armTest()
	l.mu.Lock()
	defer l.mu.Unlock()
	select {
	case <-l.done:
		return 0, fmt.Errorf("dc09: send: %w", ErrClosed)
	default:
	}
	seq := m.Seq
	if seq == 0 {
		seq = l.nextSeq()
	} else {
		l.seq = seq // new messages continue after a resent one
	}
	f := l.frame(m.ID, seq)
	f.Data, f.Extended = "#"+l.cfg.Account+"|"+m.Data, m.Extended
	if _, err := Encode(l.stamp(f), l.cfg.Key); err != nil {
		return seq, fmt.Errorf("dc09: send: %w", err) // never goes out: do not retry
	}
	backoff := l.cfg.MinBackoff
	naks := 0
	for attempt := 1; ; attempt++ {
		reply, err := l.attempt(ctx, f)
		switch {
		case err == nil && reply.ID == Ack:
			l.setUp(true)
			return seq, nil
		case err == nil && reply.ID == Duh:
			l.setUp(true)
			return seq, fmt.Errorf("dc09: send seq %04d: %w", seq, ErrRejected)
		case err == nil && reply.ID == Nak:
			l.setUp(true)
			l.resync(reply)
			naks++
			l.log.Warn("arc nak", "seq", seq, "attempt", attempt)
			if naks == 1 {
				continue // resynced: resend at once
			}
			err = errors.New("receiver answered NAK again")
		case errors.Is(err, ErrClosed) || ctx.Err() != nil:
			return seq, fmt.Errorf("dc09: send seq %04d: %w", seq, err)
		default:
			l.setUp(false)
		}
		l.log.Warn("arc retry", "seq", seq, "attempt", attempt, "wait", backoff, "err", err)
		if err := l.wait(ctx, backoff); err != nil {
			return seq, fmt.Errorf("dc09: send seq %04d: %w", seq, err)
		}
		backoff = min(2*backoff, l.cfg.MaxBackoff)
	}
}

func (l *Link) frame(id string, seq int) Frame {
	return Frame{ID: id, Seq: seq, Receiver: l.cfg.Receiver, Line: l.cfg.Line, Account: l.cfg.Account}
}

func (l *Link) nextSeq() int {
	l.seq = l.seq%MaxSeq + 1
	return l.seq
}

// stamp sets f's timestamp to now on the receiver's clock, as far as we know it.
func (l *Link) stamp(f Frame) Frame {
	f.Encrypted = l.cfg.Key != nil
	if f.Encrypted || !l.cfg.OmitTime {
		f.Time = l.cfg.Clock.Now().Add(l.offset).UTC().Truncate(time.Second)
	}
	return f
}

func (l *Link) resync(nak Frame) {
	if nak.Time.IsZero() {
		return
	}
	off := nak.Time.Sub(l.cfg.Clock.Now())
	if d := off - l.offset; d > time.Second || d < -time.Second {
		l.log.Info("arc clock resync", "offset", off.Round(time.Second))
		l.offset = off
	}
}

// attempt sends f once and waits for the matching answer.
func (l *Link) attempt(ctx context.Context, f Frame) (Frame, error) {
	timedOut := make(chan struct{})
	t := l.cfg.Clock.AfterFunc(l.cfg.Timeout, func() { close(timedOut) })
	defer t.Stop()
	l.signal("timeout", l.cfg.Timeout)
	cn, err := l.connect(ctx, timedOut)
	if err != nil {
		return Frame{}, err
	}
	b, err := Encode(l.stamp(f), l.cfg.Key)
	if err != nil {
		return Frame{}, err
	}
	cn.c.SetWriteDeadline(time.Now().Add(l.cfg.Timeout))
	if _, err := cn.c.Write(b); err != nil {
		l.drop()
		return Frame{}, fmt.Errorf("write: %w", err)
	}
	for {
		select {
		case <-l.done:
			return Frame{}, ErrClosed
		case <-ctx.Done():
			return Frame{}, ctx.Err()
		case <-timedOut:
			l.drop() // a silent receiver may be a dead connection: start afresh
			return Frame{}, errTimeout
		case <-cn.done:
			l.drop()
			return Frame{}, fmt.Errorf("connection lost: %w", cn.err)
		case b := <-cn.frames:
			r, err := Parse(b, l.cfg.Key)
			if err != nil {
				l.log.Warn("arc reply unreadable", "seq", f.Seq, "err", err)
				l.signal("ignored", 0)
				continue
			}
			switch {
			case r.ID == Nak:
				return r, nil // a NAK carries no sequence of ours
			case (r.ID == Ack || r.ID == Duh) && r.Seq == f.Seq && (r.Account == "" || r.Account == l.cfg.Account):
				return r, nil
			default:
				l.log.Warn("arc reply ignored", "seq", f.Seq, "id", r.ID, "reply_seq", r.Seq)
				l.signal("ignored", 0)
			}
		}
	}
}

func (l *Link) connect(ctx context.Context, timedOut <-chan struct{}) (*conn, error) {
	if l.cn != nil {
		select {
		case <-l.cn.done:
			l.drop()
		default:
			return l.cn, nil
		}
	}
	dctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		select {
		case <-timedOut:
			cancel()
		case <-l.done:
			cancel()
		case <-stop:
		}
	}()
	c, err := l.cfg.Dial(dctx, l.cfg.Network, l.cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", l.cfg.Addr, err)
	}
	cn := &conn{c: c, frames: make(chan []byte, 16), done: make(chan struct{})}
	go cn.read()
	l.cn = cn
	l.log.Info("arc connected")
	return cn, nil
}

func (cn *conn) read() {
	br := bufio.NewReaderSize(cn.c, MaxFrame+1)
	for {
		b, err := ReadFrame(br)
		if errors.Is(err, ErrTooLong) {
			continue
		}
		if err != nil {
			cn.err = err
			close(cn.done)
			return
		}
		select {
		case cn.frames <- b:
		default: // nobody is waiting for that many: drop, the sender retries
		}
	}
}

func (l *Link) drop() {
	if l.cn != nil {
		l.cn.c.Close()
		l.cn = nil
	}
}

// wait sleeps d on the link's clock.
func (l *Link) wait(ctx context.Context, d time.Duration) error {
	ch := make(chan struct{})
	t := l.cfg.Clock.AfterFunc(d, func() { close(ch) })
	defer t.Stop()
	l.signal("backoff", d)
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-l.done:
		return ErrClosed
	}
}

func (l *Link) setUp(up bool) {
	l.state.Lock()
	changed := l.up != up && !l.closed
	l.up = up
	l.state.Unlock()
	if changed {
		if up {
			l.log.Info("arc link back")
		} else {
			l.log.Warn("arc link lost")
		}
		if l.cfg.OnLink != nil {
			l.cfg.OnLink(up)
		}
	}
}

// armTest schedules the next NULL message LinkTest after now.
func (l *Link) armTest() {
	if l.cfg.LinkTest <= 0 {
		return
	}
	l.state.Lock()
	if l.closed {
		l.state.Unlock()
		return
	}
	if l.test != nil {
		l.test.Stop()
	}
	l.test = l.cfg.Clock.AfterFunc(l.cfg.LinkTest, l.linkTest)
	l.state.Unlock()
	l.signal("linktest", l.cfg.LinkTest)
}

// linkTest sends one NULL message; a Send in progress tests the link itself.
func (l *Link) linkTest() {
	if !l.mu.TryLock() {
		// An exchange is under way and tests the link itself; it re-arms the test
		// when it ends, and so does this, in case it already had.
		l.armTest()
		return
	}
	l.nullExchange()
	l.mu.Unlock()
	l.armTest()
}

// nullExchange runs with l.mu held.
func (l *Link) nullExchange() {
	select {
	case <-l.done:
		return
	default:
	}
	f := l.frame(Null, l.nextSeq())
	r, err := l.attempt(context.Background(), f)
	switch {
	case errors.Is(err, ErrClosed):
	case err != nil:
		l.log.Warn("arc link test failed", "seq", f.Seq, "err", err)
		l.setUp(false)
	default:
		if r.ID == Nak {
			l.resync(r)
		}
		l.setUp(true)
	}
}

func (l *Link) signal(event string, d time.Duration) {
	if l.hook != nil {
		l.hook(event, d)
	}
}

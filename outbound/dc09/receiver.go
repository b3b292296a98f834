package dc09

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"
)

// Received is one frame a Receiver read, with the answer it gave.
type Received struct {
	Frame  Frame  // as far as it could be decoded
	Reply  string // Ack, Nak or Duh
	Err    error  // why it was not ACKed
	Remote string
}

// Receiver is a small DC-09 receiver for demos and tests: it validates CRC and
// length, answers ACK, NAK (bad CRC or length, unreadable header, timestamp outside
// the window) or DUH (unknown id, malformed content, undecryptable, unknown
// account), and reports each frame. Set the fields before Listen.
type Receiver struct {
	Key      []byte   // AES key for '*' frames; nil answers them DUH
	Accounts []string // accepted accounts; empty accepts any
	// Past and Future bound a frame's timestamp against Now (defaults 40 s and
	// 20 s); frames outside get NAK with the receiver's time. Frames without a
	// timestamp are not checked.
	Past, Future time.Duration
	Now          func() time.Time // default time.Now
	OnFrame      func(Received)   // called for every frame, one at a time
	Out          io.Writer        // if set, one line per frame (for the demo)
	Logger       *slog.Logger

	outMu sync.Mutex // OnFrame and Out see one frame at a time
	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// Listen starts serving TCP on addr (e.g. "127.0.0.1:7777"; port 0 picks one).
func (r *Receiver) Listen(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("dc09: receiver listen %s: %w", addr, err)
	}
	r.Serve(ln)
	return nil
}

// Serve answers connections from ln until Close.
func (r *Receiver) Serve(ln net.Listener) {
	if r.Now == nil {
		r.Now = time.Now
	}
	if r.Past == 0 {
		r.Past = 40 * time.Second
	}
	if r.Future == 0 {
		r.Future = 20 * time.Second
	}
	if r.Logger == nil {
		r.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	r.mu.Lock()
	r.ln = ln
	r.conns = map[net.Conn]struct{}{}
	r.mu.Unlock()
	r.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			r.mu.Lock()
			if r.conns == nil {
				r.mu.Unlock()
				c.Close()
				return
			}
			r.conns[c] = struct{}{}
			r.mu.Unlock()
			r.wg.Go(func() { r.serveConn(c) })
		}
	})
}

// Addr is the listening address.
func (r *Receiver) Addr() net.Addr {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ln.Addr()
}

// Close stops listening, drops every connection and waits for their goroutines.
func (r *Receiver) Close() error {
	r.mu.Lock()
	var err error
	if r.ln != nil {
		err = r.ln.Close()
	}
	for c := range r.conns {
		c.Close()
	}
	r.conns = nil
	r.mu.Unlock()
	r.wg.Wait()
	return err
}

func (r *Receiver) serveConn(c net.Conn) {
	defer func() {
		c.Close()
		r.mu.Lock()
		delete(r.conns, c)
		r.mu.Unlock()
	}()
	br := bufio.NewReaderSize(c, MaxFrame+1)
	remote := c.RemoteAddr().String()
	for {
		b, err := ReadFrame(br)
		if errors.Is(err, ErrTooLong) {
			if !r.answer(c, Received{Reply: Nak, Err: err, Remote: remote}) {
				return
			}
			continue
		}
		if err != nil {
			return
		}
		got := r.judge(b)
		got.Remote = remote
		if !r.answer(c, got) {
			return
		}
	}
}

// judge decides the answer to one frame.
func (r *Receiver) judge(b []byte) Received {
	f, err := Parse(b, r.Key)
	got := Received{Frame: f, Reply: Ack, Err: err}
	switch {
	case errors.Is(err, ErrUnknownID), errors.Is(err, ErrNoKey), errors.Is(err, ErrDecrypt):
		got.Reply = Duh
	case errors.Is(err, ErrFormat) && f.ID != "":
		// CRC and length were right, so resending the same bytes cannot help.
		got.Reply = Duh
	case err != nil:
		got.Reply = Nak // damaged on the way: a resend may get through
	case f.ID == Ack || f.ID == Nak || f.ID == Duh:
		got.Reply, got.Err = Duh, fmt.Errorf("%w: %s is an answer, not a message", ErrUnknownID, f.ID)
	case len(r.Accounts) > 0 && !slices.Contains(r.Accounts, f.Account):
		got.Reply, got.Err = Duh, fmt.Errorf("dc09: unknown account %q", f.Account)
	case !f.Time.IsZero():
		now := r.Now()
		if f.Time.Before(now.Add(-r.Past).Truncate(time.Second)) || f.Time.After(now.Add(r.Future)) {
			got.Reply, got.Err = Nak, fmt.Errorf("dc09: timestamp %s outside the window around %s", f.Time.Format(time.TimeOnly), now.UTC().Format(time.TimeOnly))
		}
	}
	return got
}

// answer writes the reply for got and reports it; false means the connection is gone.
func (r *Receiver) answer(c net.Conn, got Received) bool {
	var reply Frame
	f := got.Frame
	switch got.Reply {
	case Ack:
		reply = Frame{ID: Ack, Seq: f.Seq, Receiver: f.Receiver, Line: f.Line, Account: f.Account}
		if f.Encrypted {
			reply.Encrypted, reply.Time = true, r.Now().UTC().Truncate(time.Second)
		}
	case Duh:
		reply = Frame{ID: Duh, Seq: f.Seq, Receiver: f.Receiver, Line: f.Line, Account: f.Account}
	default:
		// "NAK"0000R0L0A0[]_<receiver time>: the sender resyncs its clock to it.
		reply = Frame{ID: Nak, Receiver: "0", Line: "0A0", Time: r.Now().UTC().Truncate(time.Second)}
	}
	out, err := Encode(reply, r.Key)
	if err != nil { // header fields we echo were validated by Parse; be safe anyway
		reply = Frame{ID: Nak, Receiver: "0", Line: "0A0", Time: r.Now().UTC().Truncate(time.Second)}
		out, _ = Encode(reply, nil)
		got.Reply = Nak
	}
	r.outMu.Lock()
	if r.OnFrame != nil {
		r.OnFrame(got)
	}
	r.Logger.Info("arc frame", "id", f.ID, "seq", f.Seq, "account", f.Account, "reply", got.Reply, "err", got.Err)
	if r.Out != nil {
		line := fmt.Sprintf("%s %s seq=%04d account=%s data=%q", got.Reply, f.ID, f.Seq, f.Account, f.Data)
		if f.Encrypted {
			line += " encrypted"
		}
		if got.Err != nil {
			line += fmt.Sprintf(" err=%q", got.Err)
		}
		fmt.Fprintln(r.Out, line)
	}
	r.outMu.Unlock()
	_, err = c.Write(out)
	return err == nil
}

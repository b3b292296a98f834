package serial

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/vakt/vakt"
	"github.com/vakt/vakt/drivers/espa"
)

// linkState is where the line is, as far as this station can tell.
type linkState uint8

const (
	stIdle      linkState = iota // no master: after EOT (the Control Station holds the line)
	stPolled                     // another station was polled and is Temporary Master
	stSelected                   // we were selected: the blocks are for us
	stOther                      // another station was selected: the blocks are not for us
	stPolling                    // Control Station: we polled the peer and wait for its answer
	stSelecting                  // we are master, selected the peer, wait for ACK
	stSending                    // we sent a block and wait for ACK or NAK
)

var stateNames = [...]string{"idle", "polled", "selected", "other-selected", "polling", "selecting", "sending"}

func (s linkState) String() string { return stateNames[s] }

// commit is a received block whose event the ingester has not committed yet.
type commit struct {
	raw   []byte
	done  chan error
	txn   uint64
	ev    vakt.Event
	call  espa.Call
	fb    bool
	since time.Time
}

// session runs the link layer on one open line. All its state is owned by the
// goroutine in loop; the reader and the ingester's callbacks reach it over channels.
type session struct {
	p    *Port
	o    *Options
	ln   line
	toks <-chan espa.Token
	rerr <-chan error
	h    *health

	readerDone bool

	state    linkState
	deadline time.Time // protocol timer; zero when none
	timer    vakt.Timer
	wake     chan struct{}

	// receiving
	txn       uint64  // bumped by every EOT and selection: stale commits are not acknowledged
	pending   *commit // at most one block in flight (the sender waits for our answer)
	lastAcked []byte  // the last block acknowledged in this transaction
	lastReply []byte  // our last answer as receiver, for a bare ENQ

	// sending
	out       *outItem
	attempts  int
	sentInTxn int

	// supervision
	missed      int
	silent      bool
	silenceAt   time.Time
	silentTimer vakt.Timer
}

// serve runs the link on ln until ctx ends or the line fails.
func (p *Port) serve(ctx context.Context, ln line, h *health) error {
	ctx, cancel := context.WithCancel(ctx)
	toks := make(chan espa.Token, 64)
	rerr := make(chan error, 1)
	rd := &reader{ln: ln, toks: toks, noise: func(n int) { p.stats.noise.Add(uint64(n)) }}
	go func() { rerr <- rd.run(ctx) }()

	s := &session{p: p, o: &p.o, ln: ln, toks: toks, rerr: rerr, h: h, wake: make(chan struct{}, 1)}
	err := s.loop(ctx)
	cancel()
	if !s.readerDone {
		if e := <-rerr; err == nil {
			err = e
		}
	}
	s.stopTimers()
	if s.out != nil {
		p.requeue(s.out, false)
		s.out = nil
	}
	return err
}

func (s *session) loop(ctx context.Context) error {
	if s.o.Role == RoleControlStation {
		s.arm(0) // take the line at once
	}
	s.armSilence()
	for {
		var committed chan error
		if s.pending != nil {
			committed = s.pending.done
		}
		var err error
		select {
		case <-ctx.Done():
			return nil
		case err = <-s.rerr:
			s.readerDone = true
			if err == nil {
				return nil
			}
			return err
		case t := <-s.toks:
			err = s.onToken(t)
		case cerr := <-committed:
			err = s.onCommit(cerr)
		case <-s.p.queued:
			if s.o.Role == RoleControlStation && s.state == stIdle {
				s.arm(0)
			}
		case <-s.wake:
			err = s.onWake()
		}
		if err != nil {
			return err
		}
	}
}

// arm sets the protocol timer.
func (s *session) arm(d time.Duration) {
	if s.timer != nil {
		s.timer.Stop()
	}
	s.deadline = s.o.Clock.Now().Add(d)
	s.timer = s.o.Clock.AfterFunc(d, func() { poke(s.wake) })
}

func (s *session) disarm() {
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
	s.deadline = time.Time{}
}

func (s *session) armSilence() {
	if s.o.Role != RoleSlave || s.o.Silence <= 0 {
		return
	}
	if s.silentTimer != nil {
		s.silentTimer.Stop()
	}
	s.silenceAt = s.o.Clock.Now().Add(s.o.Silence)
	s.silentTimer = s.o.Clock.AfterFunc(s.o.Silence, func() { poke(s.wake) })
}

func (s *session) stopTimers() {
	s.disarm()
	if s.silentTimer != nil {
		s.silentTimer.Stop()
	}
}

func (s *session) onWake() error {
	now := s.o.Clock.Now()
	if !s.silenceAt.IsZero() && !now.Before(s.silenceAt) {
		s.silenceAt = time.Time{}
		if !s.silent {
			s.silent = true
			s.p.log.Warn("serial line silent", "for", s.o.Silence)
			s.h.set(true, true, fmt.Sprintf("serial line %s: nothing received for %s", s.o.Name, s.o.Silence))
		}
	}
	if !s.deadline.IsZero() && !now.Before(s.deadline) {
		s.deadline = time.Time{}
		return s.onTimeout()
	}
	return nil
}

// alive notes a valid token from the peer.
func (s *session) alive() {
	s.missed = 0
	s.armSilence()
	if s.silent {
		s.silent = false
		s.p.log.Info("serial line answers again")
		s.h.set(true, false, "")
	}
}

func (s *session) send(b []byte) error {
	if _, err := s.ln.Write(b); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

// reply answers as the receiver; a bare ENQ asks for the answer again.
func (s *session) reply(b ...byte) error {
	s.lastReply = b
	return s.send(b)
}

func (s *session) onToken(t espa.Token) error {
	if t.Type == espa.TokenNoise {
		s.p.log.Debug("serial noise", "bytes", t.N, "why", t.Err)
		return nil
	}
	s.alive()
	switch t.Type {
	case espa.TokenEOT:
		return s.onEOT()
	case espa.TokenENQ:
		return s.onENQ(t.Addr)
	case espa.TokenACK:
		return s.onACK()
	case espa.TokenNAK:
		return s.onNAK(t.Digit)
	}
	return s.onBlock(t)
}

// onEOT: the transaction is over and the line goes back to the Control Station.
func (s *session) onEOT() error {
	if s.state == stSelecting || s.state == stSending {
		s.p.log.Info("peer ended our transaction", "state", s.state)
		s.giveBack(false)
	}
	s.endReceive()
	s.state = stIdle
	if s.o.Role == RoleControlStation {
		s.schedulePoll()
	} else {
		s.disarm()
	}
	return nil
}

func (s *session) endReceive() {
	s.txn++
	s.lastAcked, s.lastReply = nil, nil
}

func (s *session) onENQ(addr byte) error {
	if addr == 0 { // repeat your answer
		if s.state == stSelected && s.pending == nil && s.lastReply != nil {
			return s.send(s.lastReply)
		}
		return nil
	}
	switch s.state {
	case stSelecting, stSending:
		// We are master; another station talking is a collision. Our reply timer
		// sorts it out.
		s.p.log.Debug("ENQ while sending ignored", "addr", string(addr))
		return nil
	case stIdle:
		// A poll: after EOT, <addr> ENQ makes that station Temporary Master.
		if addr == s.o.Address && s.o.Role == RoleSlave {
			return s.polled()
		}
		if addr == s.o.Address {
			// Control Station role: the peer selects us without our poll; accept it.
			return s.selected()
		}
		s.state = stPolled
		s.armRecovery()
		return nil
	case stPolling:
		if addr == s.o.Address {
			return s.selected()
		}
		if addr == s.o.Peer {
			s.state = stPolled
		} else {
			s.state = stOther
		}
		s.armRecovery()
		return nil
	}
	// stPolled, stSelected, stOther: a Temporary Master selects a station.
	if addr == s.o.Address {
		return s.selected()
	}
	s.state = stOther
	s.endReceive()
	s.armRecovery()
	return nil
}

// polled: the Control Station offers us the line. We take it if we have something to
// send, else give it back with EOT.
func (s *session) polled() error {
	if s.pending == nil && s.takeNext() {
		s.state = stSelecting
		s.sentInTxn = 0
		s.arm(s.o.ReplyTimeout)
		return s.send([]byte{s.o.Peer, espa.ENQ})
	}
	s.state = stIdle
	return s.send([]byte{espa.EOT})
}

// selected: a master wants to send us blocks.
func (s *session) selected() error {
	if s.busy() {
		s.p.stats.busy.Add(1)
		s.state = stPolled
		s.armRecovery()
		return s.reply(espa.NAKBusy, espa.NAK)
	}
	if s.state != stSelected {
		s.endReceive()
	}
	s.state = stSelected
	s.armRecovery()
	return s.reply(espa.ACK)
}

// busy: a block still waits for its commit, or the ingester says its queue is full.
func (s *session) busy() bool {
	if s.pending != nil {
		return true
	}
	if b, ok := s.o.Ingest.(interface{ Busy() bool }); ok {
		return b.Busy()
	}
	return false
}

// armRecovery: while another station holds the line, the Control Station takes it
// back after Recovery without a valid transaction; a slave just forgets the state.
func (s *session) armRecovery() { s.arm(s.o.Recovery) }

func (s *session) onBlock(t espa.Token) error {
	switch s.state {
	case stOther, stSelecting, stSending:
		s.p.log.Debug("block not for us ignored", "state", s.state)
		return nil
	case stIdle, stPolled, stPolling:
		// On a point-to-point line a block can only be for us, so one that arrives
		// without our selection (we missed it in noise) is still taken.
		s.p.log.Debug("block without selection accepted", "state", s.state)
		s.endReceive()
		s.state = stSelected
		s.armRecovery()
	}
	if s.pending != nil {
		// The sender repeated before we answered; the commit's answer covers it.
		return nil
	}
	switch t.Type {
	case espa.TokenBadBCC:
		s.p.stats.badBCC.Add(1)
		s.p.log.Debug("block with bad BCC", "want", t.Want, "got", t.Got)
		return s.reply(espa.NAKTransmission, espa.NAK)
	case espa.TokenInvalid:
		s.p.stats.invalid.Add(1)
		s.p.log.Info("block not understood", "err", t.Err)
		return s.reply(espa.NAKInvalid, espa.NAK)
	}
	if s.lastAcked != nil && bytes.Equal(t.Raw, s.lastAcked) {
		// Our ACK was lost and the block came again: it is already committed.
		s.p.stats.repeat.Add(1)
		return s.reply(espa.ACK)
	}
	call, err := espa.ParseCall(t.Block)
	if err != nil {
		s.p.stats.invalid.Add(1)
		s.p.log.Info("block not understood", "err", err)
		return s.reply(espa.NAKInvalid, espa.NAK)
	}
	if call.Header == espa.HeaderStatus || call.Header == espa.HeaderStatusRequest {
		s.p.stats.statusIn.Add(1)
		s.p.log.Info("status from peer", "call", call.CallAddress, "status", call.Status, "system", call.SystemStatus)
		return s.reply(espa.ACK)
	}
	id, fb := s.o.Mapper.Map(call)
	// Before Ingest: the engine tells observers about the alarm as soon as it has
	// committed, possibly before we see the commit.
	s.p.remember(id, call.CallAddress)
	ev := espa.EventFor(call, id, t.Raw)
	ev.Source = s.p.source
	ev.ReceivedAt = s.o.Clock.Now()
	done := make(chan error, 1)
	if err := s.o.Ingest.Ingest(ev, func(err error) { done <- err }); err != nil {
		s.p.stats.busy.Add(1)
		s.p.log.Warn("call not accepted; answered busy", "transmitter", id, "err", err)
		return s.reply(espa.NAKBusy, espa.NAK)
	}
	s.pending = &commit{raw: t.Raw, done: done, txn: s.txn, ev: ev, call: call, fb: fb, since: ev.ReceivedAt}
	return nil
}

// onCommit answers the block whose event was committed: ACK only now, so that a
// crash before this point makes the call system send it again.
func (s *session) onCommit(err error) error {
	c := s.pending
	s.pending = nil
	if c.txn != s.txn || s.state != stSelected {
		s.p.log.Info("commit finished after the sender ended the transaction; not acknowledged",
			"transmitter", c.ev.Transmitter, "err", err)
		return nil
	}
	if err != nil {
		s.p.stats.busy.Add(1)
		s.p.log.Warn("call not committed; answered busy", "transmitter", c.ev.Transmitter, "err", err)
		return s.reply(espa.NAKBusy, espa.NAK)
	}
	s.lastAcked = c.raw
	s.p.stats.calls.Add(1)
	if c.ev.Kind == vakt.EventCancel {
		s.p.stats.cancels.Add(1)
	}
	if c.fb {
		s.p.stats.unmapped.Add(1)
		s.p.log.Warn("call mapped to the fallback transmitter", "transmitter", c.ev.Transmitter, "call", c.call.CallAddress)
	}
	s.p.log.Debug("call committed", "transmitter", c.ev.Transmitter, "kind", c.ev.Kind,
		"latency", s.o.Clock.Now().Sub(c.since))
	return s.reply(espa.ACK)
}

// takeNext moves the next queued block into s.out.
func (s *session) takeNext() bool {
	if s.out == nil {
		s.out = s.p.dequeue()
		s.attempts = 0
	}
	return s.out != nil
}

func (s *session) onACK() error {
	switch s.state {
	case stSelecting:
		return s.sendBlock()
	case stSending:
		s.p.stats.sent.Add(1)
		s.p.log.Debug("block delivered", "what", s.out.what, "call", s.out.call)
		s.out = nil
		s.sentInTxn++
		if s.sentInTxn < maxBlocksPerTransaction && s.takeNext() {
			return s.sendBlock()
		}
		return s.endMaster()
	}
	return nil
}

func (s *session) sendBlock() error {
	s.state = stSending
	s.attempts++
	s.arm(s.o.ReplyTimeout)
	return s.send(s.out.raw)
}

func (s *session) onNAK(digit byte) error {
	switch s.state {
	case stSelecting:
		s.p.log.Info("peer refused selection", "reason", reason(digit))
		return s.endMaster()
	case stSending:
		switch digit {
		case espa.NAKInvalid:
			s.p.stats.dropped.Add(1)
			s.p.log.Warn("peer does not understand our block; dropped", "what", s.out.what, "call", s.out.call)
			s.out = nil
			if s.takeNext() {
				return s.sendBlock()
			}
			return s.endMaster()
		case espa.NAKBusy:
			s.p.log.Info("peer busy", "what", s.out.what)
			s.giveBack(false)
			return s.endMaster()
		}
		return s.retry("NAK " + reason(digit))
	}
	return nil
}

// retry sends the block again, or gives up with EOT after attemptsPerBlock.
func (s *session) retry(why string) error {
	if s.attempts < attemptsPerBlock {
		s.p.log.Debug("sending block again", "why", why)
		return s.sendBlock()
	}
	s.p.stats.failed.Add(1)
	s.p.log.Info("block not delivered; giving up this transaction", "why", why, "what", s.out.what, "call", s.out.call)
	s.giveBack(true)
	return s.endMaster()
}

// giveBack returns the block being sent to the head of the queue.
func (s *session) giveBack(failed bool) {
	if s.out != nil {
		s.p.requeue(s.out, failed)
		s.out = nil
	}
}

// endMaster ends our transaction with EOT.
func (s *session) endMaster() error {
	s.giveBack(false)
	s.state = stIdle
	if s.o.Role == RoleControlStation {
		s.schedulePoll()
	} else {
		s.disarm()
	}
	return s.send([]byte{espa.EOT})
}

func (s *session) schedulePoll() {
	if s.p.queueLen() > 0 {
		// Something to send: do not wait the full interval, but let the line settle.
		s.arm(min(s.o.PollInterval, 20*time.Millisecond))
		return
	}
	s.arm(s.o.PollInterval)
}

func (s *session) onTimeout() error {
	switch s.state {
	case stSelecting:
		s.p.log.Info("no answer to our selection")
		s.missedAnswer()
		return s.endMaster()
	case stSending:
		s.missedAnswer()
		return s.retry("no answer")
	case stPolling:
		s.missedAnswer()
		s.state = stIdle
		s.schedulePoll()
		return nil
	case stPolled, stSelected, stOther:
		s.endReceive()
		s.state = stIdle
		if s.o.Role == RoleControlStation {
			// The specification's recovery: no valid transaction for 10 s, take the
			// line back.
			s.p.log.Info("no valid transaction; taking the line back", "after", s.o.Recovery)
			s.arm(0)
			return s.send([]byte{espa.EOT})
		}
		return nil
	case stIdle:
		if s.o.Role != RoleControlStation {
			return nil
		}
		if s.pending == nil && s.takeNext() {
			// Poll ourselves, then select the peer (the exchange of the notes).
			s.state = stSelecting
			s.sentInTxn = 0
			s.arm(s.o.ReplyTimeout)
			return s.send([]byte{espa.EOT, s.o.Address, espa.ENQ, s.o.Peer, espa.ENQ})
		}
		s.state = stPolling
		s.p.stats.polls.Add(1)
		s.arm(s.o.ReplyTimeout)
		return s.send([]byte{espa.EOT, s.o.Peer, espa.ENQ})
	}
	return nil
}

// missedAnswer counts a poll or selection the peer did not answer; in the Control
// Station role MissedPolls in a row make the line silent.
func (s *session) missedAnswer() {
	if s.o.Role != RoleControlStation {
		return
	}
	s.p.stats.missed.Add(1)
	s.missed++
	if s.missed >= s.o.MissedPolls && !s.silent {
		s.silent = true
		s.p.log.Warn("call system does not answer", "polls", s.missed)
		s.h.set(true, true, fmt.Sprintf("serial line %s: no answer to %d polls", s.o.Name, s.missed))
	}
}

func reason(digit byte) string {
	switch digit {
	case espa.NAKTransmission:
		return "transmission error"
	case espa.NAKBusy:
		return "busy"
	case espa.NAKInvalid:
		return "invalid"
	case 0:
		return "none given"
	}
	return string(digit)
}

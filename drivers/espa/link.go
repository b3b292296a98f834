package espa

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/vakt/vakt"
)

// Role is a station's part on the line.
type Role uint8

const (
	// RoleSlave: the peer is Control Station; it selects us to send blocks and polls
	// us for ours.
	RoleSlave Role = iota
	// RoleControlStation: we poll the peer, select it to send ours, and take the line
	// back when it hangs.
	RoleControlStation
)

func (r Role) String() string {
	if r == RoleControlStation {
		return "control-station"
	}
	return "slave"
}

// Defaults of LinkConfig, from the specification and the field.
const (
	DefaultReplyTimeout = 2 * time.Second
	DefaultRecovery     = 10 * time.Second // the specification's "no valid transaction" time
	DefaultPollInterval = 250 * time.Millisecond
	DefaultMissedPolls  = 3
	// DefaultGuardTime is the pause between our EOT and the poll or selection that
	// follows it. Some paging systems ignore a selection that arrives in the same
	// burst as the EOT (issue 11). 50 ms is more than one character time at the
	// slowest rate we allow (11 bits at 300 baud: 37 ms) and three times the 16 ms
	// latency timer of FTDI USB adapters, so the EOT reaches the peer on its own;
	// it is small against the 2 s reply timeout and the 250 ms poll interval.
	DefaultGuardTime = 50 * time.Millisecond
	DefaultFailAfter = 3
	DefaultMaxQueue  = 64
)

const (
	// maxBlocksPerTransaction: after this many blocks we give the line back.
	maxBlocksPerTransaction = 8
	// attemptsPerBlock: the specification gives up after two failed attempts.
	attemptsPerBlock = 2
	// maxTries: transactions in which a block failed before it is dropped.
	maxTries = 5
	// settle is the pause before the Control Station polls again when it has
	// something to send.
	settle = 20 * time.Millisecond
)

// ErrNotDelivered is the error an Outbound's Done receives when the peer never
// acknowledged the block.
var ErrNotDelivered = errors.New("espa: block not delivered")

// ErrWithdrawn is Done's error for a block dropped unsent because its Withdrawn
// said so.
var ErrWithdrawn = errors.New("espa: block withdrawn before it was sent")

// LinkConfig configures a Link. Zero durations and counts take the defaults.
type LinkConfig struct {
	Role Role
	// Address is our station address and Peer the other side's, '0'..'9'.
	Address, Peer byte
	// ReplyTimeout: how long we wait for an answer to a poll, a selection or a block.
	// Recovery: how long the Control Station lets the peer hold the line without a
	// valid transaction. PollInterval: the pause between polls with nothing to do.
	// GuardTime: the pause between our EOT and the poll or selection after it.
	// Silence (slave role): nothing received for this long makes the line silent
	// (0: off).
	ReplyTimeout, Recovery, PollInterval, GuardTime, Silence time.Duration
	// MissedPolls unanswered polls or selections in a row make the line silent
	// (Control Station role).
	MissedPolls int
	// FailAfter transactions in a row that did not deliver our block report
	// delivery failing.
	FailAfter int
	// MaxQueue bounds the blocks waiting to be sent.
	MaxQueue int

	Clock  vakt.Clock
	Logger *slog.Logger

	// OnCall receives each call block for us (headers 1, 3, 4, 5 that parse). The
	// block is acknowledged only when in.Commit(nil) is called; Commit(err) answers
	// busy. Required.
	OnCall func(in Inbound)
	// Busy, when set, reports that no further call can be taken now: a selection is
	// answered '2' NAK.
	Busy func() bool
	// OnLine reports the line going silent (up false, with a reason) and answering
	// again.
	OnLine func(up bool, detail string)
	// OnFailing reports that FailAfter transactions in a row did not deliver our
	// blocks (failing true), and the next delivery after that (false).
	OnFailing func(failing bool, detail string)
}

func (c *LinkConfig) defaults() {
	if c.Address == 0 {
		c.Address = '2'
	}
	if c.Peer == 0 {
		c.Peer = '1'
	}
	if c.ReplyTimeout <= 0 {
		c.ReplyTimeout = DefaultReplyTimeout
	}
	if c.Recovery <= 0 {
		c.Recovery = DefaultRecovery
	}
	if c.PollInterval <= 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.GuardTime < 0 {
		c.GuardTime = 0
	} else if c.GuardTime == 0 {
		c.GuardTime = DefaultGuardTime
	}
	if c.MissedPolls <= 0 {
		c.MissedPolls = DefaultMissedPolls
	}
	if c.FailAfter <= 0 {
		c.FailAfter = DefaultFailAfter
	}
	if c.MaxQueue <= 0 {
		c.MaxQueue = DefaultMaxQueue
	}
	if c.Clock == nil {
		c.Clock = vakt.SystemClock{}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.OnCall == nil {
		c.OnCall = func(in Inbound) { in.Commit(nil) }
	}
}

// Inbound is a call block received for us.
type Inbound struct {
	Call Call
	Raw  []byte
	// At is when the block was complete.
	At time.Time
	// Commit answers the block: ACK after nil (call it only once the event is
	// durable), '2' NAK after an error. Call it once, from any goroutine. A block
	// whose sender ended the transaction before Commit is not answered.
	Commit func(err error)
}

// Outbound is a block for the peer.
type Outbound struct {
	Block Block
	// Kind ("page", "status") and CallAddress are for logs.
	Kind        string
	CallAddress string
	// Done, when set, is called once: with nil when the peer acknowledged the block,
	// or an error wrapping ErrNotDelivered when the link gave it up. It is called
	// without the link's lock held and must not block.
	Done func(error)
	// Withdrawn, when set, is asked before the block is taken for sending; true
	// drops it unsent (Done gets ErrWithdrawn): a page for an alarm someone took
	// meanwhile must not ring. It must not block.
	Withdrawn func() bool
}

type outItem struct {
	Outbound
	raw   []byte
	tries int // transactions in which it failed
}

// LinkStats are a Link's counters.
type LinkStats struct {
	Calls      uint64 // call blocks acknowledged after their commit
	StatusIn   uint64 // status blocks received
	Repeats    uint64 // blocks received again and acknowledged again without a second call
	BadBCC     uint64 // answered '1' NAK
	Invalid    uint64 // answered '3' NAK
	Busy       uint64 // answered '2' NAK
	NoiseBytes uint64 // bytes discarded as noise, half frames or oversize blocks

	Sent    uint64 // our blocks the peer acknowledged
	Failed  uint64 // transactions in which our block was refused or unanswered
	Dropped uint64 // our blocks given up
	Queued  int    // our blocks waiting

	Polls       uint64 // Control Station: polls sent
	MissedPolls uint64
	Failing     bool // the last FailAfter transactions or more delivered nothing
}

// linkState is where the line is, as far as this station can tell.
type linkState uint8

const (
	stIdle      linkState = iota // no master: after EOT (the Control Station holds the line)
	stPolled                     // another station was polled and is Temporary Master
	stSelected                   // we were selected: the blocks are for us
	stOther                      // another station was selected: the blocks are not for us
	stGuard                      // Control Station: we sent EOT and wait GuardTime
	stPolling                    // Control Station: we polled the peer and wait for its answer
	stSelecting                  // we are master, selected the peer, wait for ACK
	stSending                    // we sent a block and wait for ACK or NAK
)

var stateNames = [...]string{"idle", "polled", "selected", "other-selected", "guard", "polling", "selecting", "sending"}

func (s linkState) String() string { return stateNames[s] }

// pending is a received block whose call has not been committed yet.
type pending struct {
	raw  []byte
	txn  uint64
	done bool
}

// Link is the ESPA 4.4.4 link layer of one station, in either role: polling,
// selection, ACK/NAK, retries, recovery and a queue of blocks to send. It does no I/O
// of its own and starts no goroutines: bytes from the line go in through Feed, its
// answers go out through the io.Writer given to Attach, and time moves through the
// configured clock: call Wake when the clock reaches Deadline. All methods are safe
// for concurrent use; callbacks run without the link's lock held.
type Link struct {
	c   LinkConfig
	log *slog.Logger

	mu      sync.Mutex
	w       io.Writer // nil while detached
	werr    error
	f       Framer
	later   []func()
	changed chan struct{}

	state    linkState
	deadline time.Time // protocol timer; zero when none

	// receiving
	txn       uint64   // bumped by every EOT and selection: stale commits are not acknowledged
	inflight  *pending // at most one block waiting for its commit
	lastAcked []byte   // the last block acknowledged in this transaction
	lastReply []byte   // our last answer as receiver, for a bare ENQ

	// sending
	queue     []*outItem
	out       *outItem
	attempts  int
	sentInTxn int
	selectNxt bool // after the guard time: select (true) or poll
	backoff   bool // the peer was busy: wait the full poll interval
	failRun   int
	failing   bool

	// supervision
	missed    int
	silent    bool
	silenceAt time.Time

	st LinkStats
}

// NewLink returns a detached link.
func NewLink(c LinkConfig) *Link {
	c.defaults()
	return &Link{c: c, log: c.Logger, changed: make(chan struct{}, 1)}
}

// Changed is poked whenever Deadline may have moved: re-arm the timer then.
func (l *Link) Changed() <-chan struct{} { return l.changed }

// Deadline is when Wake must next be called; zero for never.
func (l *Link) Deadline() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	d := l.deadline
	if !l.silenceAt.IsZero() && (d.IsZero() || l.silenceAt.Before(d)) {
		d = l.silenceAt
	}
	return d
}

// do runs f under the lock, then the callbacks it queued, and reports the first
// write error since the last call.
func (l *Link) do(f func()) error {
	l.mu.Lock()
	before := l.deadline
	f()
	if !l.deadline.Equal(before) {
		select {
		case l.changed <- struct{}{}:
		default:
		}
	}
	fs := l.later
	l.later = nil
	err := l.werr
	l.werr = nil
	l.mu.Unlock()
	for _, fn := range fs {
		fn()
	}
	return err
}

// Attach starts the link on a newly opened line: the Control Station takes the line
// at once.
func (l *Link) Attach(w io.Writer) error {
	return l.do(func() {
		l.w = w
		l.f.Reset()
		l.state = stIdle
		l.newTxn()
		l.missed = 0
		l.silent = false
		l.armSilence()
		if l.c.Role == RoleControlStation {
			l.arm(0)
		}
	})
}

// Detach stops the link when its line is gone. The block being sent goes back to
// the head of the queue; a commit still outstanding is not answered (the sender
// sends the block again on the new line).
func (l *Link) Detach() {
	l.do(func() {
		l.w = nil
		l.giveBack()
		l.inflight = nil
		l.newTxn()
		l.state = stIdle
		l.disarm()
		l.silenceAt = time.Time{}
	})
}

// Feed processes bytes received from the line.
func (l *Link) Feed(p []byte) error {
	return l.do(func() {
		if l.w == nil {
			return
		}
		l.f.Feed(p, l.onToken)
	})
}

// Wake runs the timers that are due by the clock's now.
func (l *Link) Wake() error {
	return l.do(func() {
		if l.w == nil {
			return
		}
		now := l.c.Clock.Now()
		if !l.silenceAt.IsZero() && !now.Before(l.silenceAt) {
			l.silenceAt = time.Time{}
			if !l.silent {
				l.silent = true
				l.log.Warn("serial line silent", "for", l.c.Silence)
				l.onLine(false, fmt.Sprintf("nothing received for %s", l.c.Silence))
			}
		}
		if !l.deadline.IsZero() && !now.Before(l.deadline) {
			l.deadline = time.Time{}
			l.onTimeout()
		}
	})
}

// Enqueue adds a block to send. When the queue is full the oldest status block makes
// room (a page is worth more than a stale status); with none, it returns
// vakt.ErrBusy.
func (l *Link) Enqueue(o Outbound) error {
	var err error
	l.do(func() {
		if len(l.queue) >= l.c.MaxQueue {
			i := -1
			for j, q := range l.queue {
				if q.Kind == "status" {
					i = j
					break
				}
			}
			if i < 0 {
				l.st.Dropped++
				err = vakt.ErrBusy
				return
			}
			l.drop(l.queue[i], "queue full")
			l.queue = append(l.queue[:i], l.queue[i+1:]...)
		}
		l.queue = append(l.queue, &outItem{Outbound: o, raw: Encode(o.Block)})
		if l.w != nil && l.c.Role == RoleControlStation && l.state == stIdle && !l.backoff {
			l.arm(min(l.c.PollInterval, settle))
		}
	})
	return err
}

// Stats returns a snapshot of the counters.
func (l *Link) Stats() LinkStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.st
	s.Failing = l.failing
	s.Queued = len(l.queue)
	if l.out != nil {
		s.Queued++
	}
	return s
}

func (l *Link) arm(d time.Duration) { l.deadline = l.c.Clock.Now().Add(d) }
func (l *Link) disarm()             { l.deadline = time.Time{} }

func (l *Link) armSilence() {
	if l.c.Role != RoleSlave || l.c.Silence <= 0 {
		return
	}
	l.silenceAt = l.c.Clock.Now().Add(l.c.Silence)
	select {
	case l.changed <- struct{}{}:
	default:
	}
}

func (l *Link) onLine(up bool, detail string) {
	if f := l.c.OnLine; f != nil {
		l.later = append(l.later, func() { f(up, detail) })
	}
}

func (l *Link) send(b []byte) {
	if l.w == nil {
		return
	}
	if _, err := l.w.Write(b); err != nil && l.werr == nil {
		l.werr = fmt.Errorf("write: %w", err)
	}
}

// reply answers as the receiver; a bare ENQ asks for the answer again.
func (l *Link) reply(b ...byte) {
	l.lastReply = b
	l.send(b)
}

// alive notes a valid token from the peer.
func (l *Link) alive() {
	l.missed = 0
	l.armSilence()
	if l.silent {
		l.silent = false
		l.log.Info("serial line answers again")
		l.onLine(true, "")
	}
}

func (l *Link) onToken(t Token) {
	if t.Type == TokenNoise {
		l.st.NoiseBytes += uint64(t.N)
		l.log.Debug("serial noise", "bytes", t.N, "why", t.Err)
		return
	}
	l.alive()
	switch t.Type {
	case TokenEOT:
		l.onEOT()
	case TokenENQ:
		l.onENQ(t.Addr)
	case TokenACK:
		l.onACK()
	case TokenNAK:
		l.onNAK(t.Digit)
	default:
		l.onBlock(t)
	}
}

func (l *Link) newTxn() {
	l.txn++
	l.lastAcked, l.lastReply = nil, nil
}

// onEOT: the transaction is over and the line goes back to the Control Station.
func (l *Link) onEOT() {
	if l.state == stSelecting || l.state == stSending {
		l.log.Info("peer ended our transaction", "state", l.state)
		l.endFailed("peer sent EOT", false)
	}
	l.newTxn()
	l.state = stIdle
	if l.c.Role == RoleControlStation {
		l.schedulePoll()
	} else {
		l.disarm()
	}
}

func (l *Link) onENQ(addr byte) {
	if addr == 0 { // repeat your answer
		if l.state == stSelected && l.inflight == nil && l.lastReply != nil {
			l.send(l.lastReply)
		}
		return
	}
	switch l.state {
	case stSelecting, stSending:
		// We are master; another station talking is a collision. Our reply timer
		// sorts it out.
		l.log.Debug("ENQ while sending ignored", "addr", string(addr))
		return
	case stIdle, stGuard:
		// A poll: after EOT, <addr> ENQ makes that station Temporary Master.
		if addr == l.c.Address && l.c.Role == RoleSlave {
			l.polled()
			return
		}
		if addr == l.c.Address {
			// Control Station role: the peer selects us without our poll; accept it.
			l.selected()
			return
		}
		l.state = stPolled
		l.armRecovery()
		return
	case stPolling:
		if addr == l.c.Address {
			l.selected()
			return
		}
		if addr == l.c.Peer {
			l.state = stPolled
		} else {
			l.state = stOther
		}
		l.armRecovery()
		return
	}
	// stPolled, stSelected, stOther: a Temporary Master selects a station.
	if addr == l.c.Address {
		l.selected()
		return
	}
	l.state = stOther
	l.newTxn()
	l.armRecovery()
}

// polled: the Control Station offers us the line. We take it if we have something to
// send, else give it back with EOT.
func (l *Link) polled() {
	if l.inflight == nil && l.takeNext() {
		l.state = stSelecting
		l.sentInTxn = 0
		l.arm(l.c.ReplyTimeout)
		l.send([]byte{l.c.Peer, ENQ})
		return
	}
	l.state = stIdle
	l.send([]byte{EOT})
}

// selected: a master wants to send us blocks.
func (l *Link) selected() {
	if l.busy() {
		l.st.Busy++
		l.state = stPolled
		l.armRecovery()
		l.reply(NAKBusy, NAK)
		return
	}
	if l.state != stSelected {
		l.newTxn()
	}
	l.state = stSelected
	l.armRecovery()
	l.reply(ACK)
}

// busy: a block still waits for its commit, or the receiver says it is full.
func (l *Link) busy() bool {
	if l.inflight != nil {
		return true
	}
	return l.c.Busy != nil && l.c.Busy()
}

// armRecovery: while another station holds the line, the Control Station takes it
// back after Recovery without a valid transaction; a slave just forgets the state.
func (l *Link) armRecovery() { l.arm(l.c.Recovery) }

func (l *Link) onBlock(t Token) {
	switch l.state {
	case stOther, stSelecting, stSending:
		l.log.Debug("block not for us ignored", "state", l.state)
		return
	case stIdle, stGuard, stPolled, stPolling:
		// On a point-to-point line a block can only be for us, so one that arrives
		// without our selection (we missed it in noise) is still taken.
		l.log.Debug("block without selection accepted", "state", l.state)
		l.newTxn()
		l.state = stSelected
		l.armRecovery()
	}
	if l.inflight != nil {
		// The sender repeated before we answered; the commit's answer covers it.
		return
	}
	switch t.Type {
	case TokenBadBCC:
		l.st.BadBCC++
		l.log.Debug("block with bad BCC", "want", t.Want, "got", t.Got)
		l.reply(NAKTransmission, NAK)
		return
	case TokenInvalid:
		l.st.Invalid++
		l.log.Info("block not understood", "err", t.Err)
		l.reply(NAKInvalid, NAK)
		return
	}
	if l.lastAcked != nil && bytes.Equal(t.Raw, l.lastAcked) {
		// Our ACK was lost and the block came again: it is already committed.
		l.st.Repeats++
		l.reply(ACK)
		return
	}
	call, err := ParseCall(t.Block)
	if err != nil {
		l.st.Invalid++
		l.log.Info("block not understood", "err", err)
		l.reply(NAKInvalid, NAK)
		return
	}
	if call.Header == HeaderStatus || call.Header == HeaderStatusRequest {
		l.st.StatusIn++
		l.log.Info("status from peer", "call", call.CallAddress, "status", call.Status, "system", call.SystemStatus)
		l.reply(ACK)
		return
	}
	p := &pending{raw: t.Raw, txn: l.txn}
	l.inflight = p
	in := Inbound{Call: call, Raw: t.Raw, At: l.c.Clock.Now()}
	var once sync.Once
	in.Commit = func(err error) { once.Do(func() { l.do(func() { l.committed(p, err) }) }) }
	f := l.c.OnCall
	l.later = append(l.later, func() { f(in) })
}

// committed answers the block whose call was committed: ACK only now, so that a
// crash before this point makes the sender send it again.
func (l *Link) committed(p *pending, err error) {
	if l.inflight == p {
		l.inflight = nil
	}
	if p.txn != l.txn || l.state != stSelected || l.w == nil {
		l.log.Info("commit finished after the sender ended the transaction; not acknowledged", "err", err)
		return
	}
	if err != nil {
		l.st.Busy++
		l.log.Warn("call not committed; answered busy", "err", err)
		l.reply(NAKBusy, NAK)
		return
	}
	l.lastAcked = p.raw
	l.st.Calls++
	l.reply(ACK)
}

// takeNext moves the next queued block into l.out.
func (l *Link) takeNext() bool {
	for l.out == nil && len(l.queue) > 0 {
		it := l.queue[0]
		l.queue = l.queue[1:]
		if it.Withdrawn != nil && it.Withdrawn() {
			l.log.Info("block withdrawn unsent", "what", it.Kind, "call", it.CallAddress)
			l.finish(it, ErrWithdrawn)
			continue
		}
		l.out = it
		l.attempts = 0
	}
	return l.out != nil
}

func (l *Link) onACK() {
	switch l.state {
	case stSelecting:
		l.sendBlock()
	case stSending:
		it := l.out
		l.out = nil
		l.st.Sent++
		l.log.Debug("block delivered", "what", it.Kind, "call", it.CallAddress)
		l.finish(it, nil)
		l.backoff = false
		l.failRun = 0
		if l.failing {
			l.failing = false
			l.log.Info("peer takes our blocks again")
			if f := l.c.OnFailing; f != nil {
				l.later = append(l.later, func() { f(false, "") })
			}
		}
		l.sentInTxn++
		if l.sentInTxn < maxBlocksPerTransaction && l.takeNext() {
			l.sendBlock()
			return
		}
		l.endMaster()
	}
}

func (l *Link) sendBlock() {
	l.state = stSending
	l.attempts++
	l.arm(l.c.ReplyTimeout)
	l.send(l.out.raw)
}

func (l *Link) onNAK(digit byte) {
	switch l.state {
	case stSelecting:
		l.log.Info("peer refused selection", "reason", reason(digit))
		l.endFailed("selection refused: "+reason(digit), digit != NAKBusy)
		l.endMaster()
	case stSending:
		switch digit {
		case NAKInvalid:
			l.log.Warn("peer does not understand our block; dropped", "what", l.out.Kind, "call", l.out.CallAddress)
			it := l.out
			l.out = nil
			l.drop(it, "refused as invalid")
			l.countFailure("block refused as invalid")
			if l.takeNext() {
				l.sendBlock()
				return
			}
			l.endMaster()
		case NAKBusy:
			l.log.Info("peer busy", "what", l.out.Kind)
			l.endFailed("peer busy", false)
			l.endMaster()
		default:
			l.retry("NAK " + reason(digit))
		}
	}
}

// retry sends the block again, or gives up with EOT after attemptsPerBlock.
func (l *Link) retry(why string) {
	if l.attempts < attemptsPerBlock {
		l.log.Debug("sending block again", "why", why)
		l.sendBlock()
		return
	}
	l.log.Info("block not delivered; giving up this transaction", "why", why, "what", l.out.Kind, "call", l.out.CallAddress)
	l.endFailed(why, true)
	l.endMaster()
}

// endFailed ends a transaction that did not deliver l.out: it goes back to the head
// of the queue, and counts against its tries when counted; a busy peer is asked
// again only after the full poll interval.
func (l *Link) endFailed(why string, counted bool) {
	if l.out == nil {
		return
	}
	l.st.Failed++
	l.backoff = !counted
	l.countFailure(why)
	it := l.out
	l.out = nil
	if counted {
		it.tries++
		if it.tries >= maxTries {
			l.log.Warn("block dropped after repeated failures", "what", it.Kind, "call", it.CallAddress, "tries", it.tries)
			l.drop(it, why)
			return
		}
	}
	l.queue = append([]*outItem{it}, l.queue...)
}

func (l *Link) countFailure(why string) {
	l.failRun++
	if l.failRun >= l.c.FailAfter && !l.failing {
		l.failing = true
		n := l.failRun
		l.log.Warn("peer does not take our blocks", "transactions", n, "why", why)
		if f := l.c.OnFailing; f != nil {
			detail := fmt.Sprintf("%d transactions in a row did not deliver a block (last: %s)", n, why)
			l.later = append(l.later, func() { f(true, detail) })
		}
	}
}

func (l *Link) drop(it *outItem, why string) {
	l.st.Dropped++
	l.finish(it, fmt.Errorf("%w: %s", ErrNotDelivered, why))
}

func (l *Link) finish(it *outItem, err error) {
	if f := it.Done; f != nil {
		l.later = append(l.later, func() { f(err) })
	}
}

// giveBack returns the block being sent to the head of the queue, uncounted.
func (l *Link) giveBack() {
	if l.out != nil {
		l.queue = append([]*outItem{l.out}, l.queue...)
		l.out = nil
	}
}

// endMaster ends our transaction with EOT.
func (l *Link) endMaster() {
	l.giveBack()
	l.state = stIdle
	if l.c.Role == RoleControlStation {
		l.schedulePoll()
	} else {
		l.disarm()
	}
	l.send([]byte{EOT})
}

func (l *Link) schedulePoll() {
	if (len(l.queue) > 0 || l.out != nil) && !l.backoff {
		// Something to send: do not wait the full interval, but let the line settle.
		l.arm(min(l.c.PollInterval, settle))
		return
	}
	l.arm(l.c.PollInterval)
}

func (l *Link) onTimeout() {
	switch l.state {
	case stSelecting:
		// Not a missed poll: a peer can answer polls and still ignore a selection (one
		// sent too soon after the EOT, say). That fault is the failing-delivery signal
		// (OnFailing), one technical alarm; counting it here too would also report the
		// line silent, a second alarm for the same fault. A dead line is still found
		// silent by the polls that follow once the block is given up.
		l.log.Info("no answer to our selection")
		l.endFailed("no answer to selection", true)
		l.endMaster()
	case stSending:
		l.missedAnswer()
		l.retry("no answer")
	case stPolling:
		l.missedAnswer()
		l.state = stIdle
		l.schedulePoll()
	case stPolled, stSelected, stOther:
		l.newTxn()
		l.state = stIdle
		if l.c.Role == RoleControlStation {
			// The specification's recovery: no valid transaction for Recovery, take
			// the line back (the idle timer sends the EOT).
			l.log.Info("no valid transaction; taking the line back", "after", l.c.Recovery)
			l.arm(0)
		}
	case stIdle:
		if l.c.Role != RoleControlStation {
			return
		}
		l.backoff = false
		// Poll ourselves, then select the peer (the exchange of the notes), or poll
		// the peer; after a pause, as some peers ignore what comes with the EOT.
		l.selectNxt = l.inflight == nil && l.takeNext()
		if l.c.GuardTime > 0 {
			l.state = stGuard
			l.arm(l.c.GuardTime)
			l.send([]byte{EOT})
			return
		}
		l.send([]byte{EOT})
		l.afterGuard()
	case stGuard:
		l.afterGuard()
	}
}

// afterGuard polls or selects the peer once the line has been quiet after our EOT.
func (l *Link) afterGuard() {
	if l.selectNxt && l.out != nil {
		l.state = stSelecting
		l.sentInTxn = 0
		l.arm(l.c.ReplyTimeout)
		l.send([]byte{l.c.Address, ENQ, l.c.Peer, ENQ})
		return
	}
	l.giveBack()
	l.state = stPolling
	l.st.Polls++
	l.arm(l.c.ReplyTimeout)
	l.send([]byte{l.c.Peer, ENQ})
}

// missedAnswer counts a poll or selection the peer did not answer; in the Control
// Station role MissedPolls in a row make the line silent.
func (l *Link) missedAnswer() {
	if l.c.Role != RoleControlStation {
		return
	}
	l.st.MissedPolls++
	l.missed++
	if l.missed >= l.c.MissedPolls && !l.silent {
		l.silent = true
		l.log.Warn("peer does not answer", "polls", l.missed)
		l.onLine(false, fmt.Sprintf("no answer to %d polls", l.missed))
	}
}

func reason(digit byte) string {
	switch digit {
	case NAKTransmission:
		return "transmission error"
	case NAKBusy:
		return "busy"
	case NAKInvalid:
		return "invalid"
	case 0:
		return "none given"
	}
	return string(digit)
}

package engine

import (
	"context"
	"slices"
	"time"

	vakt "github.com/vakt/vakt"
)

// Health writes (P6). Every message a transmitter sends moves its last seen, and in
// Zigbee2MQTT nearly every one reports a slightly different link quality: at a busy
// site's 200,000 check-ins a day, writing that each time was most of what the
// gateway wrote to its SD card. So the loop keeps each transmitter's health exact in
// memory (state.health: what the status page, supervision and routing read) and
// writes it to disk
//   - at once, with the message's own commit, when the disk has no row for the
//     transmitter yet or its online flag changes (what a technician must find
//     after a restart);
//   - otherwise with the next health write, healthWriteEvery after the first
//     change it holds: one commit of every transmitter heard since, whose rows
//     also go to the cloud as its health samples (queueHealth);
//   - and when the loop stops (a service stop or restart loses nothing).
//
// A check-in that changes nothing but health therefore has nothing to commit and
// is acknowledged at once. A check-in is state, not an event: each one carries
// all a transmitter has to say, the next one says it again, and what a crash can
// cost is at most healthWriteEvery of "last seen" on the status page after the
// restart — never an alarm (presses, resets and technical events are committed
// before their source is acknowledged, as ever) and never supervision, which
// gives every transmitter a full period at a start (newState).
const healthWriteEvery = 15 * time.Minute

// healthWrites is the loop's bookkeeping of what the disk holds (loop-owned).
type healthWrites struct {
	stored map[vakt.TransmitterID]bool // transmitters with a row on disk: its online flag
	dirty  map[vakt.TransmitterID]struct{}
	timer  vakt.Timer
}

func (e *Engine) initHealthWrites(snap *vakt.Snapshot) {
	e.hw.stored = make(map[vakt.TransmitterID]bool, len(snap.Health))
	e.hw.dirty = map[vakt.TransmitterID]struct{}{}
	for _, h := range snap.Health {
		e.hw.stored[h.Transmitter] = h.Online
	}
}

// noteHealth records h, the transmitter's new health (already in state.health):
// into this batch when it must be written at once, else for the next health write.
func (e *Engine) noteHealth(b *vakt.Batch, h vakt.TransmitterHealth) {
	if e.healthAtOnce(h.Transmitter, h.Online) {
		e.writeHealth(b, h)
		return
	}
	e.hw.dirty[h.Transmitter] = struct{}{}
	if e.hw.timer == nil {
		e.hw.timer = e.opt.Clock.AfterFunc(healthWriteEvery, func() {
			select {
			case e.in <- healthWriteOp{}:
			case <-e.done:
			}
		})
	}
}

// healthAtOnce reports whether a message that leaves tx online (or not) must
// write its health row with its own commit. While commits fail (R6) every message
// commits: the next one that works writes what the failed ones held and closes
// the storage alarm, as before the disk failed.
func (e *Engine) healthAtOnce(tx vakt.TransmitterID, online bool) bool {
	if e.degraded || e.unwritten != nil {
		return true
	}
	was, ok := e.hw.stored[tx]
	return !ok || was != online
}

func (e *Engine) writeHealth(b *vakt.Batch, h vakt.TransmitterHealth) {
	e.rows.healthOf(b, h)
	e.hw.stored[h.Transmitter] = h.Online
	delete(e.hw.dirty, h.Transmitter)
}

// writeDirtyHealth puts every health change held in memory into b, by transmitter
// id (the cloud's samples follow the rows' order).
func (e *Engine) writeDirtyHealth(b *vakt.Batch) {
	ids := make([]vakt.TransmitterID, 0, len(e.hw.dirty))
	for id := range e.hw.dirty {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		if h, ok := e.st.health[id]; ok {
			e.writeHealth(b, h)
		}
	}
	clear(e.hw.dirty)
}

// healthWriteOp is the scheduled health write.
type healthWriteOp struct{}

func (healthWriteOp) apply(e *Engine, b *vakt.Batch) effect {
	e.hw.timer = nil
	e.writeDirtyHealth(b)
	return nil
}

// finishWrites writes what is held for later — health and a waiting small outbox
// acknowledgement (AcknowledgeOutbox) — when the loop ends, as one last health
// write (its own context may be over: the write gets one that is not).
func (e *Engine) finishWrites(ctx context.Context) {
	if e.hw.timer != nil {
		e.hw.timer.Stop()
	}
	if len(e.hw.dirty) == 0 && e.ackQueued.Load() <= e.ackStored.Load() {
		return
	}
	e.process(context.WithoutCancel(ctx), []op{healthWriteOp{}, ackOp{}})
}

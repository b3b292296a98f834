package api

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	vakt "github.com/vakt/vakt"
)

const (
	sendQueue    = 64
	pingInterval = 20 * time.Second
	readTimeout  = 3 * pingInterval
	writeTimeout = 5 * time.Second
	maxInbound   = 4 << 10
	junkLogEvery = time.Minute
)

// pushMessage is one server→phone WebSocket message (docs/api.md).
type pushMessage struct {
	Type    string     `json:"type"`
	Alarm   *alarmView `json:"alarm,omitempty"`
	AlarmID string     `json:"alarm_id,omitempty"`
	By      string     `json:"by,omitempty"`
}

// phoneMessage is one phone→server message.
type phoneMessage struct {
	Type    string `json:"type"`
	AlarmID string `json:"alarm_id"`
}

type conn struct {
	staff vakt.StaffID
	token [32]byte // the login's token hash: logout closes its connections
	seq   uint64   // order of arrival: the lowest is the oldest
	ws    *websocket.Conn
	send  chan []byte
	once  sync.Once
	gone  chan struct{}
}

func (c *conn) close() {
	c.once.Do(func() {
		close(c.gone)
		_ = c.ws.Close()
	})
}

// Hub knows every open phone connection by staff member and is the engine's
// vakt.Notifier. It is built first and handed to engine.New; the Server is built
// after the engine, with the Hub and the engine as its Service, so nothing is
// connected after construction.
type Hub struct {
	log      *slog.Logger
	clock    vakt.Clock
	maxConns int
	// tx names the rooms; swapped whole by SetTransmitters (a reload).
	tx    atomic.Pointer[map[vakt.TransmitterID]vakt.Transmitter]
	mu    sync.Mutex
	seq   uint64
	conns map[vakt.StaffID]map[*conn]struct{}
	// gen counts revocations; revoked[staff] is the gen at which staff's logins
	// were last revoked. A session made at an earlier gen is no longer valid.
	gen     uint64
	revoked map[vakt.StaffID]uint64
	// ignored counts phone messages that were not understood (see reader).
	ignored atomic.Int64
	// presence counts changes of who has a phone connected (vakt.Presence).
	presence atomic.Uint64
}

// Online reports whether staff has a phone connected now (vakt.Presence).
func (h *Hub) Online(staff vakt.StaffID) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.conns[staff]) > 0
}

// PresenceVersion changes whenever a staff member's first phone connects or last
// one goes (vakt.Presence).
func (h *Hub) PresenceVersion() uint64 { return h.presence.Load() }

// HubOptions configures a Hub.
type HubOptions struct {
	// Transmitters name the rooms shown with an alarm.
	Transmitters []vakt.Transmitter
	Logger       *slog.Logger
	Clock        vakt.Clock
	// MaxPhoneConns bounds the WebSockets of one staff member (default
	// MaxPhoneConns); a new one closes the oldest.
	MaxPhoneConns int
}

// NewHub builds the hub.
func NewHub(opt HubOptions) *Hub {
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	if opt.Clock == nil {
		opt.Clock = vakt.SystemClock{}
	}
	if opt.MaxPhoneConns <= 0 {
		opt.MaxPhoneConns = MaxPhoneConns
	}
	h := &Hub{log: opt.Logger, clock: opt.Clock, maxConns: opt.MaxPhoneConns,
		conns: map[vakt.StaffID]map[*conn]struct{}{}, revoked: map[vakt.StaffID]uint64{}}
	h.SetTransmitters(opt.Transmitters)
	return h
}

// SetTransmitters replaces the registry the rooms shown with an alarm come from (a
// configuration reload); safe while phones are served.
func (h *Hub) SetTransmitters(list []vakt.Transmitter) {
	tx := make(map[vakt.TransmitterID]vakt.Transmitter, len(list))
	for _, t := range list {
		tx[t.ID] = t
	}
	h.tx.Store(&tx)
}

// transmitters is the registry now in force.
func (h *Hub) transmitters() map[vakt.TransmitterID]vakt.Transmitter { return *h.tx.Load() }

// generation is the revocation count now; a session records it when made.
func (h *Hub) generation() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.gen
}

// revokedSince reports whether staff's logins were revoked after gen.
func (h *Hub) revokedSince(staff vakt.StaffID, gen uint64) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	g, ok := h.revoked[staff]
	return ok && g > gen
}

// revoke ends every login and connection of staff (removed or erased).
func (h *Hub) revoke(staff vakt.StaffID) {
	h.mu.Lock()
	h.gen++
	h.revoked[staff] = h.gen
	var all []*conn
	for c := range h.conns[staff] {
		all = append(all, c)
	}
	delete(h.conns, staff)
	h.mu.Unlock()
	for _, c := range all {
		go func() {
			_ = c.ws.WriteControl(websocket.CloseMessage,
				websocket.FormatCloseMessage(closeRevoked, "login revoked"), time.Now().Add(time.Second))
			c.close()
		}()
	}
	h.log.Info("phone sessions revoked", "staff", staff, "connections", len(all))
}

// closeSuperseded is the close code sent to a connection replaced by a newer one of
// the same staff member (4000-4999 are free for applications).
const closeSuperseded = 4001

// closeRevoked is the close code sent when the person's logins were revoked (they
// were removed from the directory or erased, or their secret changed).
const closeRevoked = 4003

// closeEnded is the close code sent when the connection's own login ended: logged
// out, or expired (api.session_ttl). The phone logs in again.
const closeEnded = 4004

// endToken closes staff's connections made with the login whose token hash is tok
// (logout): a socket must not outlive its login.
func (h *Hub) endToken(staff vakt.StaffID, tok [32]byte) {
	h.mu.Lock()
	var ended []*conn
	for c := range h.conns[staff] {
		if c.token == tok {
			ended = append(ended, c)
			delete(h.conns[staff], c)
		}
	}
	if len(h.conns[staff]) == 0 {
		delete(h.conns, staff)
	}
	h.mu.Unlock()
	for _, c := range ended {
		go c.end(closeEnded, "logged out")
	}
}

// end sends a close frame with code and reason, then closes the socket.
func (c *conn) end(code int, reason string) {
	_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(time.Second))
	c.close()
}

// add registers c. A staff member holds at most maxConns connections; the oldest is
// closed when a new one comes, because the newest is the phone that just
// reconnected (a phone whose old socket the network has not yet torn down must win,
// not be refused).
func (h *Hub) add(c *conn) {
	h.mu.Lock()
	if h.conns[c.staff] == nil {
		h.conns[c.staff] = map[*conn]struct{}{}
		h.presence.Add(1)
	}
	h.seq++
	c.seq = h.seq
	cs := h.conns[c.staff]
	cs[c] = struct{}{}
	var evict []*conn
	for len(cs) > h.maxConns {
		var oldest *conn
		for o := range cs {
			if oldest == nil || o.seq < oldest.seq {
				oldest = o
			}
		}
		delete(cs, oldest)
		evict = append(evict, oldest)
	}
	h.mu.Unlock()
	for _, o := range evict {
		h.log.Info("phone connection replaced by a newer one", "staff", o.staff)
		go func() { // the new phone never waits for the old socket
			_ = o.ws.WriteControl(websocket.CloseMessage,
				websocket.FormatCloseMessage(closeSuperseded, "replaced by a newer connection"), time.Now().Add(time.Second))
			o.close()
		}()
	}
}

func (h *Hub) remove(c *conn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	cs, ok := h.conns[c.staff]
	delete(cs, c)
	if ok && len(cs) == 0 {
		delete(h.conns, c.staff)
		h.presence.Add(1)
	}
}

// push queues msg on every connection of staff. It never blocks: a phone whose
// queue is full is disconnected, and gets every open offer again on reconnect.
func (h *Hub) push(staff vakt.StaffID, msg []byte) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for c := range h.conns[staff] {
		select {
		case c.send <- msg:
			n++
		default:
			h.log.Warn("phone too slow, disconnecting", "staff", staff)
			go c.close()
		}
	}
	return n
}

func (h *Hub) closeAll() {
	h.mu.Lock()
	all := []*conn{}
	for _, cs := range h.conns {
		for c := range cs {
			all = append(all, c)
		}
	}
	h.mu.Unlock()
	for _, c := range all {
		c.close()
	}
}

// IgnoredMessages counts the phone messages that were not understood, since start.
func (s *Server) IgnoredMessages() int64 { return s.hub.ignored.Load() }

// Connected reports how many phone connections staff has (status page, tests).
func (s *Server) Connected(staff vakt.StaffID) int {
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	return len(s.hub.conns[staff])
}

// Notify implements vakt.Notifier. A revoked notice ends the person's logins and
// connections.
func (h *Hub) Notify(staff vakt.StaffID, n vakt.Notice) {
	msg := pushMessage{Type: string(n.Type)}
	switch n.Type {
	case vakt.NoticeRevoked:
		h.revoke(staff)
		return
	case vakt.NoticeTaken:
		msg.AlarmID, msg.By = string(n.Alarm.ID), string(n.By)
	case vakt.NoticeWithdrawn:
		msg.AlarmID = string(n.Alarm.ID)
	default:
		v := viewOf(h.transmitters(), n.Alarm, staff)
		msg.Alarm = &v
	}
	b, _ := json.Marshal(msg)
	h.push(staff, b)
}

// P4 (memory): 200 phones hold their sockets open all day and exchange a few small
// frames an hour, so per-socket buffers are what idle sockets cost. A phone's frames
// are small (maxInbound), so a 512-byte read buffer serves them (a longer frame is
// read in several fills); the write buffer is taken from a pool for each message and
// returned after it is flushed, so an idle socket holds none.
var upgrader = websocket.Upgrader{
	ReadBufferSize:  512,
	WriteBufferSize: 4096,
	WriteBufferPool: &sync.Pool{},
	// Phones are native apps or the gateway's own page; the bearer token, not the
	// Origin header, is what authorises the connection.
	CheckOrigin: func(*http.Request) bool { return true },
}

func (s *Server) stream(w http.ResponseWriter, r *http.Request) {
	staff := who(r).staff
	ws, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered
	}
	c := &conn{staff: staff, token: tokenHash(who(r).token), ws: ws, send: make(chan []byte, sendQueue), gone: make(chan struct{})}
	// The socket ends with its login: at expiry (on the injected clock), as at logout.
	expiry := s.opt.Clock.AfterFunc(who(r).expires.Sub(s.opt.Clock.Now()), func() { c.end(closeEnded, "login expired") })
	defer expiry.Stop()
	// Register before listing the open offers: an offer made in between reaches the
	// phone twice (harmless, phones key on the alarm id) rather than not at all.
	s.hub.add(c)
	defer s.hub.remove(c)
	defer c.close()
	s.log.Info("phone connected", "staff", staff)

	go s.writer(c)
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	offers, err := s.opt.Service.Offered(ctx, staff)
	cancel()
	if err != nil {
		s.log.Error("list offers for reconnecting phone", "staff", staff, "err", err)
	}
	for _, a := range offers {
		v := s.view(a, staff)
		b, _ := json.Marshal(pushMessage{Type: string(vakt.NoticeOffer), Alarm: &v})
		select {
		case c.send <- b:
		case <-c.gone:
			return
		}
	}
	s.reader(c)
	s.log.Info("phone disconnected", "staff", staff)
}

// reader handles phone→server messages until the connection ends.
//
// A message it does not understand is counted and dropped; the warning about it is
// logged at most once per junkLogEvery per connection, with the number dropped since,
// so a phone (or anyone with a token) sending junk cannot fill the disk with log.
func (s *Server) reader(c *conn) {
	var junk int
	var lastLog time.Time
	c.ws.SetReadLimit(maxInbound)
	_ = c.ws.SetReadDeadline(time.Now().Add(readTimeout))
	c.ws.SetPongHandler(func(string) error {
		return c.ws.SetReadDeadline(time.Now().Add(readTimeout))
	})
	for {
		_, data, err := c.ws.ReadMessage()
		if err != nil {
			return
		}
		_ = c.ws.SetReadDeadline(time.Now().Add(readTimeout))
		var m phoneMessage
		if json.Unmarshal(data, &m) != nil || m.Type != "delivered" || m.AlarmID == "" {
			s.hub.ignored.Add(1)
			junk++
			if now := s.opt.Clock.Now(); lastLog.IsZero() || now.Sub(lastLog) >= junkLogEvery {
				s.log.Warn("ignored phone messages", "staff", c.staff, "count", junk)
				junk, lastLog = 0, now
			}
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = s.opt.Service.Delivered(ctx, c.staff, vakt.AlarmID(m.AlarmID))
		cancel()
		if err != nil {
			s.log.Debug("delivery confirmation not applied", "staff", c.staff, "alarm", m.AlarmID, "err", err)
		}
	}
}

func (s *Server) writer(c *conn) {
	ping := time.NewTicker(pingInterval)
	defer ping.Stop()
	defer c.close()
	for {
		select {
		case <-c.gone:
			return
		case b := <-c.send:
			_ = c.ws.SetWriteDeadline(time.Now().Add(writeTimeout))
			if err := c.ws.WriteMessage(websocket.TextMessage, b); err != nil {
				return
			}
		case <-ping.C:
			_ = c.ws.SetWriteDeadline(time.Now().Add(writeTimeout))
			if err := c.ws.WriteMessage(websocket.PingMessage, nil); err != nil {
				return
			}
		}
	}
}

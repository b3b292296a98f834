package api_test

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/vakt/vakt/api"
)

// TestSlowBodyIsCutOff: before, 2,000 connections trickling a body were all still
// open after 30 s. A body that does not arrive within the body timeout (here a
// small injected one) gets 408 and the connection is closed.
func TestSlowBodyIsCutOff(t *testing.T) {
	f := newFixtureWith(t, func(o *api.Options) { o.BodyTimeout = 50 * time.Millisecond })
	c, err := net.Dial("tcp", strings.TrimPrefix(f.srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = io.WriteString(c, "POST /api/v1/sessions HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n"+
		"Content-Length: 100\r\n\r\n{\"staff_id\":")
	if err != nil {
		t.Fatal(err)
	}
	// The rest of the body never comes.
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer to a stalled body: %v", err)
	}
	if resp.StatusCode != http.StatusRequestTimeout {
		t.Fatalf("stalled body: %d, want 408", resp.StatusCode)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second)) // a guard against hanging, not a measurement
	var one [1]byte
	if _, err := c.Read(one[:]); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("connection still open after a stalled body (%v)", err)
	}
}

// TestHTTPServerHasReadTimeouts: the gateway's http.Server (api.NewHTTPServer) cuts
// off slow headers, slow requests and idle keep-alives; before it set only
// ReadHeaderTimeout.
func TestHTTPServerHasReadTimeouts(t *testing.T) {
	s := api.NewHTTPServer(http.NotFoundHandler(), nil)
	if s.ReadHeaderTimeout <= 0 || s.ReadTimeout <= 0 || s.IdleTimeout <= 0 {
		t.Fatalf("timeouts: header %v, read %v, idle %v; want all set", s.ReadHeaderTimeout, s.ReadTimeout, s.IdleTimeout)
	}
	if s.WriteTimeout != 0 {
		t.Fatalf("WriteTimeout %v would cut WebSocket pushes", s.WriteTimeout)
	}
}

// TestJunkPhoneMessagesAreCounted: dropped messages are counted even when not logged.
func TestJunkPhoneMessagesAreCounted(t *testing.T) {
	f := newFixture(t)
	ws, _ := f.dialPhone(f.login("nurse-a", "s3cret-a"))
	pong := make(chan struct{}, 1)
	ws.SetPongHandler(func(string) error { pong <- struct{}{}; return nil })
	for range 500 {
		if err := ws.WriteMessage(websocket.TextMessage, []byte("{}")); err != nil {
			t.Fatal(err)
		}
	}
	if err := ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(5*time.Second)); err != nil {
		t.Fatal(err)
	}
	<-pong
	if n := f.api.IgnoredMessages(); n != 500 {
		t.Fatalf("counted %d ignored messages, want 500", n)
	}
}

package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/gorilla/websocket"
)

// Client is a small phone-side client of this API: what the gateway's `phone`
// command uses to act as a staff member's phone while commissioning, and a reference
// for integrators.
type Client struct {
	Base  string // http://127.0.0.1:8080
	Token string
	HTTP  *http.Client
}

// Login opens a session and keeps its token.
func (c *Client) Login(ctx context.Context, staff, secret string) error {
	var r loginResponse
	if err := c.Do(ctx, "POST", "/api/v1/sessions", loginRequest{StaffID: staff, Secret: secret}, &r); err != nil {
		return err
	}
	c.Token = r.Token
	return nil
}

// Do sends one request and decodes a JSON answer into out (may be nil).
func (c *Client) Do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.Base+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode >= 300 {
		var e errorBody
		if json.Unmarshal(data, &e) == nil && e.Error.Code != "" {
			return fmt.Errorf("%s %s: %d %s: %s", method, path, resp.StatusCode, e.Error.Code, e.Error.Message)
		}
		return fmt.Errorf("%s %s: %d", method, path, resp.StatusCode)
	}
	if out != nil && len(data) > 0 {
		return json.Unmarshal(data, out)
	}
	return nil
}

// Stream connects the push WebSocket and calls f with every raw message until ctx
// ends or the connection drops. Like a real phone it confirms each offer as delivered
// the moment it arrives.
func (c *Client) Stream(ctx context.Context, f func(msg []byte)) error {
	url := "ws" + strings.TrimPrefix(c.Base, "http") + "/api/v1/stream?token=" + c.Token
	ws, _, err := websocket.DefaultDialer.DialContext(ctx, url, nil)
	if err != nil {
		return fmt.Errorf("connect %s: %w", strings.SplitN(url, "?", 2)[0], err)
	}
	defer ws.Close()
	go func() { <-ctx.Done(); ws.Close() }()
	for {
		_, data, err := ws.ReadMessage()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		var m pushMessage
		if json.Unmarshal(data, &m) == nil && m.Type == "offer" && m.Alarm != nil {
			if err := ws.WriteJSON(phoneMessage{Type: "delivered", AlarmID: m.Alarm.ID}); err != nil {
				return err
			}
		}
		f(data)
	}
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// offerMsg is the part of a push the load tool reads: {"type":"offer","alarm":{...}}.
type offerMsg struct {
	Type    string `json:"type"`
	AlarmID string `json:"alarm_id"`
	Alarm   *struct {
		ID          string `json:"id"`
		Transmitter struct {
			ID string `json:"id"`
		} `json:"transmitter"`
	} `json:"alarm"`
}

// phones are simulated staff phones on the gateway's push WebSocket. Like the real
// app each confirms an offer as delivered the moment it arrives; with acceptAfter
// it also accepts the alarm after that delay ("I'm going").
type phones struct {
	base        string // http://127.0.0.1:port, or "" with wsURL
	wsURL       string // a fixed WebSocket URL without login (the Node-RED flow)
	tokens      []string
	acceptAfter time.Duration
	onOffer     func(tx, alarm string, at time.Time)

	drops, offers, accepts, acceptErrs atomic.Int64
	wg                                 sync.WaitGroup
}

// login logs every staff member in, one at a time (the gateway checks one secret at
// a time and answers 429 with Retry-After when busy).
func login(ctx context.Context, base string, staff int) ([]string, error) {
	toks := make([]string, staff)
	for i := range staff {
		for attempt := 0; ; attempt++ {
			body, _ := json.Marshal(map[string]string{"staff_id": staffID(i), "secret": "demo"})
			req, _ := http.NewRequestWithContext(ctx, "POST", base+"/api/v1/sessions", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return nil, fmt.Errorf("login %s: %w", staffID(i), err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusTooManyRequests && attempt < 20 {
				wait, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
				select {
				case <-ctx.Done():
					return nil, ctx.Err()
				case <-time.After(time.Duration(max(wait, 1)) * time.Second):
				}
				continue
			}
			if resp.StatusCode != http.StatusCreated {
				return nil, fmt.Errorf("login %s: %d %s", staffID(i), resp.StatusCode, b)
			}
			var r struct{ Token string }
			if err := json.Unmarshal(b, &r); err != nil {
				return nil, fmt.Errorf("login %s: %w", staffID(i), err)
			}
			toks[i] = r.Token
			break
		}
	}
	return toks, nil
}

// run connects every phone and keeps it connected (reconnecting after a drop) until
// ctx ends. ready is closed once every phone has connected once.
func (p *phones) run(ctx context.Context, ready chan<- error) {
	urls := []string{p.wsURL}
	if p.wsURL == "" {
		urls = urls[:0]
		ws := "ws" + strings.TrimPrefix(p.base, "http") + "/api/v1/stream?token="
		for _, t := range p.tokens {
			urls = append(urls, ws+t)
		}
	}
	var first sync.WaitGroup
	var firstErr atomic.Value
	for i, u := range urls {
		first.Add(1)
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			once := sync.OnceFunc(first.Done)
			defer once()
			for attempt := 0; ctx.Err() == nil; attempt++ {
				ws, _, err := (&websocket.Dialer{HandshakeTimeout: 5 * time.Second}).DialContext(ctx, u, nil)
				if err != nil {
					if attempt >= 600 { // bounded: about a minute of retries
						firstErr.CompareAndSwap(nil, fmt.Errorf("phone %d: %w", i, err))
						return
					}
					select {
					case <-ctx.Done():
					case <-time.After(100 * time.Millisecond): // gateway restarting: retry
					}
					continue
				}
				attempt = 0
				once()
				p.serve(ctx, ws, i)
				if ctx.Err() == nil {
					p.drops.Add(1)
				}
			}
		}()
	}
	first.Wait()
	if e, _ := firstErr.Load().(error); e != nil {
		ready <- e
	}
	close(ready)
}

func (p *phones) serve(ctx context.Context, ws *websocket.Conn, i int) {
	stop := context.AfterFunc(ctx, func() { ws.Close() })
	defer stop()
	defer ws.Close()
	var wmu sync.Mutex
	for {
		_, data, err := ws.ReadMessage()
		if err != nil {
			return
		}
		at := time.Now()
		var m offerMsg
		if json.Unmarshal(data, &m) != nil || m.Type != "offer" || m.Alarm == nil {
			continue
		}
		wmu.Lock()
		err = ws.WriteJSON(map[string]string{"type": "delivered", "alarm_id": m.Alarm.ID})
		wmu.Unlock()
		if err != nil {
			return
		}
		p.offers.Add(1)
		if p.onOffer != nil {
			p.onOffer(m.Alarm.Transmitter.ID, m.Alarm.ID, at)
		}
		if p.acceptAfter > 0 && p.base != "" {
			id, tok := m.Alarm.ID, p.tokens[i]
			time.AfterFunc(p.acceptAfter, func() { p.accept(ctx, id, tok) })
		}
	}
}

func (p *phones) accept(ctx context.Context, id, tok string) {
	req, _ := http.NewRequestWithContext(ctx, "POST", p.base+"/api/v1/alarms/"+id+"/accept", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		if !errors.Is(err, context.Canceled) {
			p.acceptErrs.Add(1)
		}
		return
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	// 404: cancelled at the transmitter first; that is the load's normal race.
	if resp.StatusCode == http.StatusOK {
		p.accepts.Add(1)
	} else if resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusConflict {
		p.acceptErrs.Add(1)
	}
}

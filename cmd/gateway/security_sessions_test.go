package main

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/crypto/bcrypt"

	vakt "github.com/vakt/vakt"
	"github.com/vakt/vakt/engine"
	"github.com/vakt/vakt/internal/fakeclock"
)

// TestSecuritySessionEnd (S2, S3): every way a login ends, in one table, on the
// in-process gateway with the injected clock. After each, the ended token gets 401,
// its WebSocket is closed with the code docs/api.md names, and a login that should
// survive (another of the same person at logout, another person always) still works.
func TestSecuritySessionEnd(t *testing.T) {
	const ttl = 12 * time.Hour // api.session_ttl's default; the demo sets none
	newSecret := "Cld-new-secret-4Tz"
	cases := []struct {
		name string
		// end ends person's login tok (the other login of the same person is other).
		end func(t *testing.T, m *Main, c client, clock *fakeclock.Clock, tok string)
		// code is the close code of tok's WebSocket; otherSurvives: the person's
		// second login still works afterwards.
		code          int
		otherSurvives bool
	}{
		// The clock moves in the loop: the person's other login is made an hour
		// later, so it is still valid when the first expires.
		{name: "session_ttl expiry", code: 4004, otherSurvives: true},
		{name: "logout", code: 4004, otherSurvives: true, end: func(t *testing.T, m *Main, c client, clock *fakeclock.Clock, tok string) {
			if code, body := c.do("DELETE", "/api/v1/sessions/current", tok, nil); code != http.StatusNoContent {
				t.Fatalf("logout: %d %s", code, body)
			}
		}},
		{name: "erasure", code: 4003, end: func(t *testing.T, m *Main, c client, clock *fakeclock.Clock, tok string) {
			admin := c.login("nurse-1", "demo")
			if code, body := c.do("DELETE", "/api/v1/admin/staff/"+string(cloudPerson.ID), admin, nil); code/100 != 2 {
				t.Fatalf("erase: %d %s", code, body)
			}
		}},
		{name: "secret change in the cloud directory", code: 4003, end: func(t *testing.T, m *Main, c client, clock *fakeclock.Clock, tok string) {
			p := cloudPerson
			h, _ := bcrypt.GenerateFromPassword([]byte(newSecret), bcrypt.MinCost)
			p.SecretHash = string(h)
			applyDirectory(t, m, engine.DirectoryOp{Kind: engine.DirectoryUpsert, Staff: p})
		}},
		{name: "removal from the cloud directory", code: 4003, end: func(t *testing.T, m *Main, c client, clock *fakeclock.Clock, tok string) {
			applyDirectory(t, m, engine.DirectoryOp{Kind: engine.DirectoryRemove, Staff: vakt.Staff{ID: cloudPerson.ID}})
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clock := fakeclock.New(time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC))
			m, c := startGateway(t, adminConfig(t), clock)
			addCloudPerson(t, m)
			person := string(cloudPerson.ID)
			tok := c.login(person, "cloud-secret")
			other := c.login(person, "cloud-secret")
			bystander := c.login("nurse-2", "demo")
			closed := dialStream(t, c, tok)
			if code, body := c.do("GET", "/api/v1/me", tok, nil); code != http.StatusOK {
				t.Fatalf("before: %d %s", code, body)
			}
			if tc.end == nil {
				// The other login and the bystander's are younger: made later.
				clock.Advance(time.Hour)
				other = c.login(person, "cloud-secret")
				bystander = c.login("nurse-2", "demo")
				clock.Advance(ttl - time.Hour + time.Second)
			} else {
				tc.end(t, m, c, clock, tok)
			}

			if code, body := c.do("GET", "/api/v1/me", tok, nil); code != http.StatusUnauthorized {
				t.Errorf("the ended login: GET /me %d %s, want 401", code, body)
			}
			select {
			case code := <-closed:
				if code != tc.code {
					t.Errorf("its WebSocket closed with %d, want %d", code, tc.code)
				}
			case <-time.After(waitLimit):
				t.Errorf("its WebSocket is still open")
			}
			code, _ := c.do("GET", "/api/v1/me", other, nil)
			if tc.otherSurvives && code != http.StatusOK {
				t.Errorf("the person's other (younger) login: %d, want 200", code)
			}
			if !tc.otherSurvives && code != http.StatusUnauthorized {
				t.Errorf("the person's other login: %d, want 401 (all of the person's logins end)", code)
			}
			if code, body := c.do("GET", "/api/v1/me", bystander, nil); code != http.StatusOK {
				t.Errorf("another person's login: %d %s", code, body)
			}
			// A WebSocket cannot be opened with the ended token either.
			ws, resp, err := websocket.DefaultDialer.Dial(wsURL(c, tok), nil)
			if err == nil {
				ws.Close()
				t.Error("a WebSocket opened with the ended token")
			} else if resp == nil || resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("WebSocket with the ended token: %v %v, want 401", resp, err)
			}
			if tc.name == "secret change in the cloud directory" {
				c.login(person, newSecret)
				if code, _ := c.do("POST", "/api/v1/sessions", "", map[string]string{"staff_id": person, "secret": "cloud-secret"}); code != http.StatusUnauthorized {
					t.Errorf("the old secret after the change: %d, want 401", code)
				}
			}
		})
	}
}

func applyDirectory(t *testing.T, m *Main, op engine.DirectoryOp) {
	t.Helper()
	if err := m.Engine.ApplyDirectory(context.Background(), engine.DirectoryChange{Ops: []engine.DirectoryOp{op}}); err != nil {
		t.Fatal(err)
	}
}

func wsURL(c client, tok string) string {
	return "ws" + strings.TrimPrefix(c.base, "http") + "/api/v1/stream?token=" + tok
}

// dialStream opens a phone's WebSocket and reports the close code it ends with
// (-1: the connection broke without a close frame).
func dialStream(t *testing.T, c client, tok string) <-chan int {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial(wsURL(c, tok), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	closed := make(chan int, 1)
	go func() {
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				var ce *websocket.CloseError
				if errors.As(err, &ce) {
					closed <- ce.Code
				} else {
					closed <- -1
				}
				return
			}
		}
	}()
	return closed
}

package api_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/vakt/vakt/api"
)

// routePath fills a route's {id} with the fixture's alarm or nurse-a's visit.
func routePath(r api.Route, alarm, visit string) string {
	switch r.Owner {
	case api.OwnerAlarm:
		return strings.Replace(r.Pattern, "{id}", alarm, 1)
	case api.OwnerVisit:
		return strings.Replace(r.Pattern, "{id}", visit, 1)
	}
	return r.Pattern
}

// TestAuthorizationTable is S2 for every route of the table the router is built
// from (api.Routes): no token and a wrong token get 401, a caller lacking the
// route's role gets 403, and another staff member's alarm or visit gets the
// route's documented answer (403, or 404 where the API hides that it exists).
func TestAuthorizationTable(t *testing.T) {
	f := newFixture(t)
	a, b := f.login("nurse-a", "s3cret-a"), f.login("nurse-b", "s3cret-b")
	_, body := f.do("POST", "/api/v1/visits", a, `{"room":"204"}`)
	var v struct{ ID string }
	if err := json.Unmarshal([]byte(body), &v); err != nil || v.ID == "" {
		t.Fatalf("start visit: %s", body)
	}
	for _, r := range api.Routes {
		path := routePath(r, f.alarm, v.ID)
		name := r.Method + " " + r.Pattern
		if r.Public {
			continue
		}
		for _, tok := range []string{"", "not-a-token"} {
			code, body := f.do(r.Method, path, tok, r.Body)
			if code != http.StatusUnauthorized || !strings.Contains(body, `"code":"unauthorized"`) {
				t.Errorf("%s token=%q: %d %s, want 401", name, tok, code, body)
			}
		}
		if len(r.Roles) > 0 {
			for _, role := range r.Roles {
				if role == "nurse" {
					t.Fatalf("%s: the fixture's staff are nurses; add one without the role", name)
				}
			}
			if code, body := f.do(r.Method, path, b, r.Body); code != http.StatusForbidden {
				t.Errorf("%s as a nurse without role %v: %d %s, want 403", name, r.Roles, code, body)
			}
		}
		if r.Owner != api.OwnerNone {
			if r.Other == 0 {
				t.Errorf("%s names another's resource but states no answer for it (Route.Other)", name)
				continue
			}
			if code, body := f.do(r.Method, path, b, r.Body); code != r.Other {
				t.Errorf("%s as nurse-b on nurse-a's resource: %d %s, want %d", name, code, body, r.Other)
			}
		}
	}
}

// TestRouteTableIsTheRouter: what the table lists is served (not 404 "no such
// endpoint"), and something not in it is not.
func TestRouteTableIsTheRouter(t *testing.T) {
	f := newFixture(t)
	for _, r := range api.Routes {
		code, body := f.do(r.Method, routePath(r, f.alarm, "v-0-1"), "", r.Body)
		if code == http.StatusNotFound && strings.Contains(body, "no such endpoint") {
			t.Errorf("%s %s is in the table but not routed", r.Method, r.Pattern)
		}
	}
	if code, _ := f.do("GET", "/api/v1/admin/secret-route", "", ""); code != http.StatusNotFound {
		t.Errorf("a route outside the table answered %d", code)
	}
}

// FuzzRequestBodies (R7) sends arbitrary bodies to every route that decodes one, as
// nurse-a with a valid session. A body never makes the server panic or answer 5xx;
// a success needs valid JSON; every refusal has the API's error shape.
func FuzzRequestBodies(f *testing.F) {
	var routes []api.Route
	for _, r := range api.Routes {
		if r.Body != "" {
			routes = append(routes, r)
		}
	}
	for i, r := range routes {
		f.Add(uint8(i), []byte(r.Body))
		f.Add(uint8(i), []byte(r.Body[:len(r.Body)/2]))
	}
	for _, s := range []string{`{}`, `null`, `[]`, `{"on_duty":"yes"}`, `{"lat":1e999,"lon":0}`, `{"room":"` + strings.Repeat("x", 300) + `"}`,
		`{"visit":{"note":null}}`, `{"a":1,"a":1}`, "{\"system\":\"\x00\"}", `{"staff_id":"nurse-a","secret":""}`} {
		f.Add(uint8(len(s)), []byte(s))
	}
	fx := newFixtureWith(f, nil)
	token := fx.login("nurse-a", "s3cret-a")
	_, body := fx.do("POST", "/api/v1/visits", token, `{"room":"204"}`)
	var v struct{ ID string }
	_ = json.Unmarshal([]byte(body), &v)
	f.Fuzz(func(t *testing.T, i uint8, body []byte) {
		r := routes[int(i)%len(routes)]
		req := httptest.NewRequest(r.Method, routePath(r, fx.alarm, v.ID), strings.NewReader(string(body)))
		req.Header.Set("Content-Type", "application/json")
		req.RemoteAddr = "127.0.0.1:40000"
		if !r.Public {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		w := httptest.NewRecorder()
		fx.api.ServeHTTP(w, req)
		code := w.Code
		if code >= 500 {
			t.Fatalf("%s %s with %q: %d %s", r.Method, r.Pattern, body, code, w.Body)
		}
		if code < 300 && len(body) > 0 && !json.Valid(body) {
			t.Fatalf("%s %s accepted invalid JSON %q: %d", r.Method, r.Pattern, body, code)
		}
		if code >= 400 {
			var e struct {
				Error struct{ Code, Message string }
			}
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
				t.Fatalf("%s %s with %q: %d without the error shape: %s", r.Method, r.Pattern, body, code, w.Body)
			}
		}
	})
}

package webapp_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/vakt/vakt/webapp"
)

// TestServesEmbeddedFiles checks what a browser relies on before any script runs:
// the right content types (a module script served as text/plain is refused), the
// strict CSP on every answer, revalidation with an ETag, and nothing outside /app/.
func TestServesEmbeddedFiles(t *testing.T) {
	srv := httptest.NewServer(webapp.Handler())
	defer srv.Close()
	cases := []struct{ path, ctype, contains string }{
		{"/app/", "text/html; charset=utf-8", `name="staff_id"`},
		{"/app/index.html", "text/html; charset=utf-8", `rel="manifest"`},
		{"/app/app.js", "text/javascript; charset=utf-8", "WebSocket"},
		{"/app/logic.js", "text/javascript; charset=utf-8", "AlarmStore"},
		{"/app/i18n.js", "text/javascript; charset=utf-8", "bokmål"},
		{"/app/app.css", "text/css; charset=utf-8", ".offer"},
		{"/app/manifest.webmanifest", "application/manifest+json", `"start_url": "/app/"`},
		{"/app/icon.svg", "image/svg+xml", "<svg"},
	}
	for _, c := range cases {
		resp, err := http.Get(srv.URL + c.path)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 200 {
			t.Errorf("%s: status %d", c.path, resp.StatusCode)
			continue
		}
		if got := resp.Header.Get("Content-Type"); got != c.ctype {
			t.Errorf("%s: Content-Type %q, want %q", c.path, got, c.ctype)
		}
		if got := resp.Header.Get("Content-Security-Policy"); got != webapp.CSP {
			t.Errorf("%s: CSP %q", c.path, got)
		}
		if resp.Header.Get("Cache-Control") != "no-cache" || resp.Header.Get("ETag") == "" {
			t.Errorf("%s: cache headers %q %q", c.path, resp.Header.Get("Cache-Control"), resp.Header.Get("ETag"))
		}
		if !strings.Contains(string(body), c.contains) {
			t.Errorf("%s: body lacks %q", c.path, c.contains)
		}
		// Revalidation: the same ETag answers 304 with no body.
		req, _ := http.NewRequest("GET", srv.URL+c.path, nil)
		req.Header.Set("If-None-Match", resp.Header.Get("ETag"))
		r2, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		r2.Body.Close()
		if r2.StatusCode != http.StatusNotModified {
			t.Errorf("%s: revalidation gave %d, want 304", c.path, r2.StatusCode)
		}
	}
	for _, p := range []string{"/app/nope.js", "/app/../go.mod", "/app/static/app.js"} {
		resp, err := http.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: status %d, want 404", p, resp.StatusCode)
		}
	}
	resp, err := http.Post(srv.URL+"/app/", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /app/: status %d, want 405", resp.StatusCode)
	}
}

// TestNoOutsideOrigins: the CSP names no other origin, and no embedded file loads
// one, so the app works with the site's internet line down.
func TestNoOutsideOrigins(t *testing.T) {
	if strings.Contains(webapp.CSP, "http") || strings.Contains(webapp.CSP, "*") || strings.Contains(webapp.CSP, "unsafe") {
		t.Fatalf("CSP allows more than the gateway itself: %s", webapp.CSP)
	}
	srv := httptest.NewServer(webapp.Handler())
	defer srv.Close()
	for _, p := range []string{"/app/", "/app/app.js", "/app/logic.js", "/app/i18n.js", "/app/app.css", "/app/manifest.webmanifest"} {
		resp, err := http.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if s := string(b); strings.Contains(s, "http://") || strings.Contains(s, "https://") {
			t.Errorf("%s refers to an outside address", p)
		}
	}
}

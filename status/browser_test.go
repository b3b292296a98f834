package status_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/vakt/vakt/internal/browsertest"
)

// The browser test runs the real gateway binary on a copy of the demo site, presses
// a pendant with a flat battery through the embedded broker, and reads the status
// page in headless Chromium (Debian's "chromium") on a phone-sized screen, as the
// technician would.

const (
	waitLimit     = 30 * time.Second         // generous: CI runs every package at once on 2 cores
	screenshotEnv = "VAKT_UPDATE_SCREENSHOT" // =1 rewrites docs/img/status-page.png
)

// startGateway builds and runs the gateway on a copy of the demo site with its own
// database and ports, and waits for /readyz. It is stopped with SIGTERM at cleanup.
func startGateway(t *testing.T) (base string, brokerPort int) {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "gateway")
	build := exec.Command("go", "build", "-o", bin, "./cmd/gateway")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/gateway: %v\n%s", err, out)
	}
	src, err := os.ReadFile(filepath.Join("..", "config", "examples", "demo.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	apiPort, brokerPort := browsertest.FreePort(t), browsertest.FreePort(t)
	s := regexp.MustCompile(`(?m)^  path: \S*vakt\.db$`).ReplaceAllLiteralString(string(src), "  path: "+filepath.Join(dir, "vakt.db"))
	for old, new := range map[string]string{
		"listen: 127.0.0.1:8080":  fmt.Sprintf("listen: 127.0.0.1:%d", apiPort),
		"listen: 127.0.0.1:1883":  fmt.Sprintf("listen: 127.0.0.1:%d", brokerPort),
		"cloud:\n  enabled: true": "cloud:\n  enabled: false", // no sync with whatever listens on :8090
	} {
		if strings.Count(s, old) != 1 {
			t.Fatalf("demo.yaml no longer contains %q exactly once", old)
		}
		s = strings.Replace(s, old, new, 1)
	}
	cfg := filepath.Join(dir, "gateway.yaml")
	if err := os.WriteFile(cfg, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "gateway.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "run", "-config", cfg)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(waitLimit):
			_ = cmd.Process.Kill()
			<-exited
			t.Errorf("gateway did not stop on SIGTERM")
		}
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("gateway log:\n%s", b)
		}
		logf.Close()
	})
	base = fmt.Sprintf("http://127.0.0.1:%d", apiPort)
	// The healthcheck command is what Docker's HEALTHCHECK runs: it must say ready.
	deadline := time.After(waitLimit)
	for {
		out, err := exec.Command(bin, "healthcheck", "-url", base+"/readyz").CombinedOutput()
		if err == nil && strings.TrimSpace(string(out)) == "ready" {
			return base, brokerPort
		}
		select {
		case <-exited:
			t.Fatalf("gateway exited during start")
		case <-deadline:
			t.Fatalf("gateway not ready: %s", out)
		case <-time.After(20 * time.Millisecond): // polling a process that is starting
		}
	}
}

func login(t *testing.T, base, staff string) string {
	t.Helper()
	resp, err := http.Post(base+"/api/v1/sessions", "application/json", strings.NewReader(fmt.Sprintf(`{"staff_id":%q,"secret":"demo"}`, staff)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct{ Token string }
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.Token == "" {
		t.Fatalf("login %s: %d %v", staff, resp.StatusCode, err)
	}
	return body.Token
}

func get(t *testing.T, url, token string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// tab is one browser tab in its own context; script errors and CSP violations fail
// the test.
type tab struct {
	t    *testing.T
	ctx  context.Context
	mu   sync.Mutex
	errs []string
}

func newTab(t *testing.T, bctx context.Context) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(bctx, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	p := &tab{t: t, ctx: ctx}
	exceptions := chromedp.Events(ctx, runtime.ExceptionThrown)
	go func() {
		for ev, err := range exceptions {
			if err != nil {
				return
			}
			p.mu.Lock()
			p.errs = append(p.errs, "exception: "+ev.ExceptionDetails.Text)
			p.mu.Unlock()
		}
	}()
	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{
		Source: `window.__csp = []; document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));`,
	}); err != nil {
		t.Fatalf("start browser tab: %v", err)
	}
	p.do(chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile))
	return p
}

func (p *tab) do(actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, waitLimit)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		html, _ := chromedp.Run(p.ctx, chromedp.Evaluate[string](`document.body.outerHTML`))
		p.t.Fatalf("%v\npage:\n%s", err, html)
	}
}

func (p *tab) until(what, expr string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, waitLimit)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(waitLimit))); err != nil {
		html, _ := chromedp.Run(p.ctx, chromedp.Evaluate[string](`document.body.outerHTML`))
		p.t.Fatalf("waiting for %s: %v\npage:\n%s", what, err, html)
	}
}

func (p *tab) eval(expr string) string {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, waitLimit)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
	if err != nil {
		p.t.Fatalf("%s: %v", expr, err)
	}
	return s
}

func (p *tab) login(base, staff string) {
	p.t.Helper()
	p.do(
		chromedp.Navigate(base+"/status"),
		chromedp.WaitVisible(chromedp.CSS(`input[name=staff_id]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name=staff_id]`), staff),
		chromedp.SendKeys(chromedp.CSS(`input[name=secret]`), "demo"),
		chromedp.Click(chromedp.CSS(`#login button[type=submit]`)),
	)
}

func (p *tab) checkErrors() {
	p.t.Helper()
	csp := p.eval(`JSON.stringify(window.__csp || [])`)
	if csp != "[]" {
		p.t.Errorf("CSP violations: %s", csp)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, e := range p.errs {
		p.t.Error(e)
	}
}

func TestStatusPageInBrowser(t *testing.T) {
	browsertest.Chromium(t) // skip (or fail in CI) before starting anything
	if _, err := exec.LookPath("mosquitto_pub"); err != nil {
		t.Fatal("mosquitto_pub is needed to press the demo pendant (Debian package mosquitto-clients)")
	}
	base, brokerPort := startGateway(t)

	// A pendant reports a flat battery with its press: an open technical alarm for
	// the technician besides the emergency. mosquitto_pub returns after the PUBACK,
	// which the gateway sends only after the commit.
	out, err := exec.Command("mosquitto_pub", "-h", "127.0.0.1", "-p", strconv.Itoa(brokerPort), "-q", "1",
		"-i", "test-z2m-bridge", "-t", "zigbee2mqtt/room101/sos", "-m", `{"action":"emergency","battery":4,"linkquality":72}`).CombinedOutput()
	if err != nil {
		t.Fatalf("mosquitto_pub: %v: %s", err, out)
	}

	// The data endpoint: no token 401, a nurse's token 403, a technician's 200.
	if c := get(t, base+"/status/data", ""); c != http.StatusUnauthorized {
		t.Errorf("no token: %d, want 401", c)
	}
	if c := get(t, base+"/status/data", login(t, base, "nurse-1")); c != http.StatusForbidden {
		t.Errorf("nurse token: %d, want 403", c)
	}

	bctx := browsertest.Start(t)

	tech := newTab(t, bctx)
	defer tech.checkErrors()
	tech.do(chromedp.Navigate("about:blank"))
	tech.login(base, "tech-1")
	tech.until("the login form gone", `getComputedStyle(document.querySelector('#login')).display === 'none'`)
	tech.until("the transmitters table", `document.querySelectorAll('#transmitters tbody tr').length >= 5`)
	tech.until("the low-battery fault on room 101's pendant",
		`[...document.querySelectorAll('#transmitters tr[data-id="room-101-sos"] .fault')].some((e) => e.textContent === 'low-battery')`)
	if got := tech.eval(`document.querySelector('#transmitters tr[data-id="room-101-sos"]').textContent`); !strings.Contains(got, "4 %") || !strings.Contains(got, "72") {
		t.Errorf("room 101's row shows no battery 4 %% and link 72: %q", got)
	}
	tech.until("both alarms in the open alarms", `document.querySelectorAll('#alarms tbody tr').length === 2`)
	tech.until("the plan view with transmitters and staff on duty",
		`document.querySelectorAll('#planview g.transmitter').length >= 5 && document.querySelectorAll('#planview g.staff').length >= 5`)
	if alert := tech.eval(`String(document.querySelectorAll('#planview g.transmitter circle[fill="#b00020"]').length)`); alert != "1" {
		t.Errorf("%s transmitters drawn as alarmed on the plan, want 1 (room 101)", alert)
	}
	tech.until("staff on duty with names (an audited load)", `document.querySelector('#staff tbody').textContent.includes('Tore Demo')`)
	if hidden := tech.eval(`String(document.querySelector('#walktest').hidden)`); hidden != "true" {
		t.Error("walk-test banner shown although walk test is off")
	}
	if s := tech.eval(`document.querySelector('#sync').textContent`); s != "not configured" {
		t.Errorf("sync section %q", s)
	}
	if s := tech.eval(`document.querySelector('#drivers').textContent`); !strings.Contains(s, "Embedded broker") || !strings.Contains(s, "test-z2m-bridge") && !strings.Contains(s, "clients") {
		t.Errorf("drivers section %q", s)
	}

	// Filter and sort, as with hundreds of transmitters.
	tech.do(chromedp.SendKeys(chromedp.CSS(`#filter`), "101"))
	tech.until("the filter to leave room 101 only", `document.querySelectorAll('#transmitters tbody tr').length === 1`)
	tech.do(chromedp.Evaluate[chromedp.Void](`document.querySelector('#filter').value = ''; document.querySelector('#filter').dispatchEvent(new Event('input'))`))
	tech.do(chromedp.Click(chromedp.CSS(`#faults`)))
	tech.until("only faulty transmitters", `document.querySelectorAll('#transmitters tbody tr').length === 1`)
	tech.do(chromedp.Click(chromedp.CSS(`#faults`)))
	tech.do(chromedp.Click(chromedp.CSS(`#transmitters th[data-key=id]`)))
	tech.until("descending sort by id", `(() => { const ids = [...document.querySelectorAll('#transmitters tbody tr')].map((r) => r.dataset.id); return ids.length > 2 && ids.join() === ids.slice().sort().reverse().join(); })()`)
	tech.do(chromedp.Click(chromedp.CSS(`#transmitters th[data-key=id]`)))

	shot, err := chromedp.Run(tech.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	shotPath := filepath.Join(browsertest.ArtefactDir(t), "status-page.png")
	if err := os.WriteFile(shotPath, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", shotPath)
	if os.Getenv(screenshotEnv) == "1" {
		if err := os.WriteFile(filepath.Join("..", "docs", "img", "status-page.png"), shot, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// A nurse logs in on the same page and is refused.
	nurse := newTab(t, bctx)
	defer nurse.checkErrors()
	nurse.login(base, "nurse-1")
	nurse.until("the refusal", `document.querySelector('#message').textContent.startsWith('Forbidden')`)
	if hidden := nurse.eval(`String(document.querySelector('#content').hidden)`); hidden != "true" {
		t.Error("a nurse sees the status content")
	}
}

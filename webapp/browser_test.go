package webapp_test

import (
	"context"
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

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/vakt/vakt/internal/browsertest"
)

// The browser test runs the real gateway binary on a copy of the demo site and
// drives the web app in headless Chromium (Debian's "chromium" package), the way
// two nurses would on their phones.

const (
	waitLimit     = 30 * time.Second // generous: CI runs every package at once on 2 cores
	restartLimit  = 60 * time.Second
	phoneWidth    = 390
	phoneHeight   = 844
	screenshotEnv = "VAKT_UPDATE_SCREENSHOT" // =1 rewrites docs/img/webapp-offer.png
)

// gateway is the gateway binary running as a child process on one config.
type gateway struct {
	t       *testing.T
	bin     string
	cfg     string
	apiPort int
	log     *os.File
	cmd     *exec.Cmd
	exited  chan struct{}
}

func buildGateway(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "gateway")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/gateway")
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/gateway: %v\n%s", err, out)
	}
	return bin
}

// demoConfig copies the demo site with its own database and free ports. One change
// to the routing: the emergency policy's first tier offers the two nearest nurses
// (count 2 instead of 1), so one press reaches both pages and an accept in one
// shows "taken" in the other.
func demoConfig(t *testing.T, apiPort, brokerPort int) string {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("..", "config", "examples", "demo.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	s := string(src)
	replace := func(old, new string) {
		if strings.Count(s, old) != 1 {
			t.Fatalf("demo.yaml no longer contains %q exactly once", old)
		}
		s = strings.Replace(s, old, new, 1)
	}
	// The storage path is relative in the demo (data/vakt.db, or ../../data/vakt.db
	// relative to the file): any one line naming vakt.db becomes the temp database.
	storage := regexp.MustCompile(`(?m)^  path: \S*vakt\.db$`)
	if n := len(storage.FindAllString(s, -1)); n != 1 {
		t.Fatalf("demo.yaml has %d storage path lines naming vakt.db, want 1", n)
	}
	s = storage.ReplaceAllLiteralString(s, "  path: "+filepath.Join(dir, "vakt.db"))
	replace("listen: 127.0.0.1:8080", fmt.Sprintf("listen: 127.0.0.1:%d", apiPort))
	replace("listen: 127.0.0.1:1883", fmt.Sprintf("listen: 127.0.0.1:%d", brokerPort))
	replace("cloud:\n  enabled: true", "cloud:\n  enabled: false") // no sync with whatever listens on :8090
	replace("      - target: nearest\n        count: 1\n        roles: [nurse, assistant]",
		"      - target: nearest\n        count: 2\n        roles: [nurse, assistant]")
	path := filepath.Join(dir, "gateway.yaml")
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func (g *gateway) start() {
	t := g.t
	t.Helper()
	cmd := exec.Command(g.bin, "run", "-config", g.cfg)
	cmd.Stdout, cmd.Stderr = g.log, g.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	g.cmd = cmd
	exited := make(chan struct{})
	g.exited = exited
	go func() { _ = cmd.Wait(); close(exited) }()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	for {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", g.apiPort))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-exited:
			t.Fatalf("gateway exited during start; log:\n%s", g.logTail())
		case <-ctx.Done():
			t.Fatalf("gateway not ready; log:\n%s", g.logTail())
		case <-time.After(20 * time.Millisecond): // polling a process that is starting
		}
	}
}

// stop sends SIGTERM, as systemd does, and waits for the process to end.
func (g *gateway) stop() {
	if g.cmd == nil {
		return
	}
	_ = g.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-g.exited:
	case <-time.After(waitLimit):
		_ = g.cmd.Process.Kill()
		<-g.exited
		g.t.Errorf("gateway did not stop on SIGTERM")
	}
	g.cmd = nil
}

func (g *gateway) logTail() string {
	b, _ := os.ReadFile(g.log.Name())
	if len(b) > 6000 {
		b = b[len(b)-6000:]
	}
	return string(b)
}

// press publishes like a Zigbee2MQTT bridge does: QoS 1, to the embedded broker.
func press(t *testing.T, port int, topic, payload string) {
	t.Helper()
	out, err := exec.Command("mosquitto_pub", "-h", "127.0.0.1", "-p", strconv.Itoa(port),
		"-q", "1", "-i", "test-z2m-bridge", "-t", topic, "-m", payload).CombinedOutput()
	if err != nil {
		t.Fatalf("mosquitto_pub: %v: %s", err, out)
	}
}

// phone is one phone: a tab in its own browser context (own storage, own session).
type phone struct {
	t    *testing.T
	name string
	ctx  context.Context
	mu   sync.Mutex
	errs []string
}

func newPage(t *testing.T, bctx context.Context, name, acceptLanguage string) *phone {
	t.Helper()
	ctx, cancel := chromedp.NewContext(bctx, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	p := &phone{t: t, name: name, ctx: ctx}
	// Subscribe before anything runs: a script error or a CSP violation fails the test.
	exceptions := chromedp.Events(ctx, runtime.ExceptionThrown)
	console := chromedp.Events(ctx, runtime.ConsoleAPICalled)
	go func() {
		for ev, err := range exceptions {
			if err != nil {
				return
			}
			p.fail("exception: " + ev.ExceptionDetails.Text + " " + describeException(&ev))
		}
	}()
	go func() {
		for ev, err := range console {
			if err != nil {
				return
			}
			if ev.Type == runtime.ConsoleAPICalledTypeError {
				var parts []string
				for _, a := range ev.Args {
					parts = append(parts, fmt.Sprint(a.Value, " ", a.Description))
				}
				p.fail("console.error: " + strings.Join(parts, " "))
			}
		}
	}()
	// Record Content-Security-Policy violations in the page itself, from its first
	// script on, so checkErrors can report any; and every WebSocket message the
	// page sends, so the test sees its delivery confirmations.
	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{
		Source: `window.__csp = []; document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));
window.__sent = []; const send = WebSocket.prototype.send;
WebSocket.prototype.send = function (d) { window.__sent.push(String(d)); return send.call(this, d); };`,
	}); err != nil {
		t.Fatal(err)
	}
	ua, err := chromedp.Run(ctx, chromedp.Evaluate[string](`navigator.userAgent`))
	if err != nil {
		t.Fatalf("%s: start browser: %v", name, err)
	}
	if _, err := chromedp.Call(ctx, emulation.SetUserAgentOverride, emulation.SetUserAgentOverrideParams{
		UserAgent: ua, AcceptLanguage: acceptLanguage,
	}); err != nil {
		t.Fatal(err)
	}
	p.do(chromedp.EmulateViewport(phoneWidth, phoneHeight, chromedp.EmulateScale(2), chromedp.EmulateMobile))
	return p
}

func describeException(ev *runtime.EventExceptionThrown) string {
	d := ev.ExceptionDetails
	s := fmt.Sprintf("at %s:%d:%d", d.URL, d.LineNumber, d.ColumnNumber)
	if d.Exception != nil {
		s += " " + d.Exception.Description
	}
	return s
}

func (p *phone) fail(msg string) {
	p.mu.Lock()
	p.errs = append(p.errs, msg)
	p.mu.Unlock()
}

func (p *phone) checkErrors() {
	ctx, cancel := context.WithTimeout(p.ctx, waitLimit)
	defer cancel()
	csp, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`window.__csp || []`))
	if err != nil {
		p.t.Errorf("%s: read CSP violations: %v", p.name, err)
	}
	for _, v := range csp {
		p.t.Errorf("%s: CSP violation: %s", p.name, v)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, e := range p.errs {
		p.t.Errorf("%s: %s", p.name, e)
	}
	p.errs = nil
}

func (p *phone) do(actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	p.doWithin(waitLimit, actions...)
}

func (p *phone) doWithin(d time.Duration, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, d)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		html, _ := chromedp.Run(p.ctx, chromedp.Evaluate[string](`document.body.outerHTML`))
		p.t.Fatalf("%s: %v\npage:\n%s", p.name, err, html)
	}
}

func (p *phone) text(sel string) string {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, waitLimit)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.TextContent(chromedp.CSS(sel)))
	if err != nil {
		p.t.Fatalf("%s: text of %s: %v", p.name, sel, err)
	}
	return s
}

func (p *phone) attr(sel, name string) string {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, waitLimit)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS(sel), name))
	if err != nil {
		p.t.Fatalf("%s: attribute %s of %s: %v", p.name, name, sel, err)
	}
	return v.Value
}

// until waits for a JavaScript condition to hold.
func (p *phone) until(what, expr string, d time.Duration) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, d)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(d))); err != nil {
		html, _ := chromedp.Run(p.ctx, chromedp.Evaluate[string](`document.body.outerHTML`))
		p.t.Fatalf("%s: waiting for %s: %v\npage:\n%s", p.name, what, err, html)
	}
}

// eval runs expr in the page and waits for it (and for its promise, if any).
func (p *phone) eval(expr string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, waitLimit)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](expr, chromedp.EvalAwaitPromise)); err != nil {
		p.t.Fatalf("%s: %v", p.name, err)
	}
}

type meState struct {
	OnDuty       bool   `json:"on_duty"`
	Availability string `json:"availability"`
	HasPosition  bool   `json:"has_position"`
}

// me asks the gateway, with the page's own session, what it holds for the page's
// staff member.
func (p *phone) me() meState {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, waitLimit)
	defer cancel()
	m, err := chromedp.Run(ctx, chromedp.Evaluate[meState](`fetch('/api/v1/me', {headers: {Authorization: 'Bearer ' + JSON.parse(localStorage.getItem('vakt.session')).token}}).then(r => r.json())`, chromedp.EvalAwaitPromise))
	if err != nil {
		p.t.Fatalf("%s: GET /api/v1/me: %v", p.name, err)
	}
	return m
}

func (p *phone) login(base, staff, secret string) {
	p.t.Helper()
	p.do(
		chromedp.Navigate(base+"/app/"),
		chromedp.WaitVisible(chromedp.CSS(`input[name=staff_id]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name=staff_id]`), staff),
		chromedp.SendKeys(chromedp.CSS(`input[name=secret]`), secret),
		chromedp.Click(chromedp.CSS(`#login-form button[type=submit]`)),
	)
}

// delivered waits until the page has confirmed the offer of id at least n times
// over the WebSocket, as docs/api.md requires.
func (p *phone) delivered(id string, n int) {
	p.t.Helper()
	msg := fmt.Sprintf(`{"type":"delivered","alarm_id":%q}`, id)
	p.until(fmt.Sprintf("%d delivery confirmations of %s", n, id),
		fmt.Sprintf(`window.__sent.filter((m) => m === %q).length >= %d`, msg, n), waitLimit)
}

// offerSel is the offer screen's element for an alarm; listSel the list's.
func offerSel(id string) string { return fmt.Sprintf(`[data-view=offer] [data-alarm-id=%q]`, id) }
func listSel(id string) string  { return fmt.Sprintf(`[data-view=alarms] [data-alarm-id=%q]`, id) }

func TestWebAppInBrowser(t *testing.T) {
	browsertest.Chromium(t) // skip (or fail in CI) before starting anything
	if _, err := exec.LookPath("mosquitto_pub"); err != nil {
		t.Fatal("mosquitto_pub is needed to press the demo button (Debian package mosquitto-clients)")
	}
	apiPort, brokerPort := browsertest.FreePort(t), browsertest.FreePort(t)
	logf, err := os.Create(filepath.Join(t.TempDir(), "gateway.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	g := &gateway{t: t, bin: buildGateway(t), cfg: demoConfig(t, apiPort, brokerPort), apiPort: apiPort, log: logf}
	g.start()
	t.Cleanup(g.stop)
	defer func() {
		if t.Failed() {
			t.Logf("gateway log:\n%s", g.logTail())
		}
	}()
	base := fmt.Sprintf("http://127.0.0.1:%d", apiPort)
	artefacts := browsertest.ArtefactDir(t)

	bctx := browsertest.Start(t)

	// Two phones: nurse-1's browser speaks English, nurse-2's Norwegian.
	n1 := newPage(t, bctx, "nurse-1", "en-GB,en")
	n2 := newPage(t, bctx, "nurse-2", "nb-NO,nb,no")
	lead := newPage(t, bctx, "lead-1", "en-US")
	defer n1.checkErrors()
	defer n2.checkErrors()
	defer lead.checkErrors()

	// The page's own logic (offer state machine, reconnect delay, i18n), run in the
	// browser on the served modules.
	t.Run("logic", func(t *testing.T) {
		code, err := os.ReadFile(filepath.Join("testdata", "logic_test.js"))
		if err != nil {
			t.Fatal(err)
		}
		n1.do(chromedp.Navigate(base + "/app/"))
		ctx, cancel := context.WithTimeout(n1.ctx, waitLimit)
		defer cancel()
		fails, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](string(code), chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fails {
			t.Error(f)
		}
	})

	// Log in: a wrong secret says so; the right one goes online.
	n2.login(base, "nurse-2", "wrong")
	n2.until("wrong-secret message", `document.querySelector('#login-error').textContent === 'Feil ansatt-id eller passord.'`, waitLimit)
	if _, err := chromedp.Run(n2.ctx, chromedp.Evaluate[chromedp.Void](`document.querySelector('input[name=secret]').value = ''`)); err != nil {
		t.Fatal(err)
	}
	n2.do(chromedp.SendKeys(chromedp.CSS(`input[name=secret]`), "demo"),
		chromedp.Click(chromedp.CSS(`#login-form button[type=submit]`)))
	n1.login(base, "nurse-1", "demo")
	lead.login(base, "lead-1", "demo")
	for _, p := range []*phone{n1, n2, lead} {
		p.do(chromedp.WaitVisible(chromedp.CSS(`[data-connection=online]`)))
	}
	if got := n2.text(`[data-i18n="alarms.title"]`); got != "Åpne alarmer" {
		t.Errorf("nurse-2's Norwegian browser shows %q, want bokmål", got)
	}

	// A press in room 101 takes over both screens; nurse-1 is nearer.
	press(t, brokerPort, "zigbee2mqtt/room101/sos", `{"action":"emergency","battery":97}`)
	n1.do(chromedp.WaitVisible(chromedp.CSS(`[data-view=offer] [data-alarm-id][data-state=offered]`)))
	id := n1.attr(`[data-view=offer] [data-alarm-id]`, "data-alarm-id")
	n2.do(chromedp.WaitVisible(chromedp.CSS(offerSel(id))))
	n1.delivered(id, 1)
	n2.delivered(id, 1)
	// The nurse lead is not offered it but sees it in the list of every open alarm.
	lead.do(chromedp.WaitVisible(chromedp.CSS(listSel(id) + `[data-state=offered]`)))
	if lead.attr(`body`, "data-ringing") == "true" {
		t.Error("the lead's page rings for an alarm not offered to the lead")
	}
	card := n1.text(offerSel(id))
	for _, want := range []string{"Emergency", "Room 101", "Zone east", "Floor 1", "m away", "ago", "I'm going", "Reject"} {
		if !strings.Contains(card, want) {
			t.Errorf("nurse-1's offer screen lacks %q: %q", want, card)
		}
	}
	if !strings.Contains(n2.text(offerSel(id)), "Jeg går") {
		t.Errorf("nurse-2's offer screen is not in bokmål: %q", n2.text(offerSel(id)))
	}
	d1, d2 := distance(t, card), distance(t, n2.text(offerSel(id)))
	if !(d1 < d2) {
		t.Errorf("nurse-1 should be nearer: %v m vs nurse-2 %v m", d1, d2)
	}
	if n1.attr(`body`, "data-ringing") != "true" {
		t.Error("nurse-1's page does not ring during the offer")
	}
	// The login tap unlocked Web Audio, so the offer screen does not ask for a tap.
	n1.until("sound on", `!document.querySelector('[data-view=offer] [data-sound]')`, waitLimit)
	shot, err := chromedp.Run(n1.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	shotPath := filepath.Join(artefacts, "webapp-offer.png")
	if err := os.WriteFile(shotPath, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("offer screen (%dx%d): %s", phoneWidth, phoneHeight, shotPath)
	if os.Getenv(screenshotEnv) == "1" {
		if err := os.WriteFile(filepath.Join("..", "docs", "img", "webapp-offer.png"), shot, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// nurse-1: "I'm going". nurse-2's page stops ringing and shows who took it.
	n1.do(chromedp.Click(chromedp.CSS(offerSel(id) + ` [data-action=accept]`)))
	n1.do(chromedp.WaitVisible(chromedp.CSS(listSel(id)+`[data-state=accepted] [data-action=presence]`)),
		chromedp.WaitNotVisible(chromedp.CSS(`[data-view=offer]`)))
	n2.do(chromedp.WaitVisible(chromedp.CSS(listSel(id)+`[data-state=accepted][data-gone=taken]`)),
		chromedp.WaitNotVisible(chromedp.CSS(`[data-view=offer]`)))
	if shot, err := chromedp.Run(n1.ctx, chromedp.CaptureScreenshot()); err == nil {
		_ = os.WriteFile(filepath.Join(artefacts, "webapp-accepted.png"), shot, 0o644)
	}
	if got := n2.text(listSel(id)); !strings.Contains(got, "Tatt av nurse-1") {
		t.Errorf("nurse-2 does not see who took it: %q", got)
	}
	if n2.attr(`body`, "data-ringing") != "false" {
		t.Error("nurse-2's page still rings after nurse-1 took the alarm")
	}
	lead.do(chromedp.WaitVisible(chromedp.CSS(listSel(id) + `[data-state=accepted][data-assignee=nurse-1]`)))
	if got := lead.text(listSel(id)); !strings.Contains(got, "Handled by nurse-1") {
		t.Errorf("the lead's list does not say who handles it: %q", got)
	}
	// The language switch: nurse-2 changes to English.
	n2.do(chromedp.Click(chromedp.CSS(`#lang`)))
	n2.until("English after the switch", `document.querySelector('[data-i18n="alarms.title"]').textContent === 'Open alarms'`, waitLimit)
	if got := n2.text(listSel(id)); !strings.Contains(got, "Taken by nurse-1") {
		t.Errorf("nurse-2 after the switch: %q", got)
	}

	// Presence, then complete with a visit record picked from the site's notes
	// (privacy.visit_notes): a choice, never a text field to type health data into.
	n1.do(chromedp.Click(chromedp.CSS(listSel(id)+` [data-action=presence]`)),
		chromedp.WaitVisible(chromedp.CSS(listSel(id)+`[data-state=present] [data-action=complete]`)))
	n1.until("the visit note is a choice of the site's notes", `(() => {
		const sel = document.querySelector('#alarm-list [data-alarm-id="`+id+`"] select[name=visit_note]');
		return !!sel && !document.querySelector('#alarm-list input[name=visit_note]') &&
			Array.from(sel.options).map(o => o.value).join('|') === '|assisted|false alarm|no help needed|round|done';
	})()`, waitLimit)
	n1.do(chromedp.SetValue(chromedp.CSS(listSel(id)+` select[name=visit_note]`), "assisted"),
		chromedp.Click(chromedp.CSS(listSel(id)+` [data-action=complete]`)),
		chromedp.WaitVisible(chromedp.CSS(listSel(id)+`[data-state=completed][data-gone=closed]`)))
	lead.do(chromedp.WaitVisible(chromedp.CSS(listSel(id) + `[data-gone=closed]`)))

	// A second press: nurse-2 rejects it, nurse-1 keeps ringing.
	press(t, brokerPort, "zigbee2mqtt/room102/sos", `{"action":"emergency","battery":90}`)
	n2.do(chromedp.WaitVisible(chromedp.CSS(`[data-view=offer] [data-alarm-id][data-state=offered]`)))
	id2 := n2.attr(`[data-view=offer] [data-alarm-id]`, "data-alarm-id")
	if id2 == id {
		t.Fatalf("the second press reused alarm %s", id)
	}
	n1.do(chromedp.WaitVisible(chromedp.CSS(offerSel(id2))))
	n2.do(chromedp.Click(chromedp.CSS(offerSel(id2)+` [data-action=reject]`)),
		chromedp.WaitNotVisible(chromedp.CSS(`[data-view=offer]`)),
		chromedp.WaitVisible(chromedp.CSS(listSel(id2)+`[data-gone=rejected]`)))
	n1.do(chromedp.WaitVisible(chromedp.CSS(offerSel(id2) + `[data-state=offered]`)))
	before, _ := strconv.Atoi(n1.attr(offerSel(id2), "data-offers"))

	// The gateway stops (SIGTERM) and starts again: the page says offline, then
	// online, and the open offer arrives again and still rings.
	g.stop()
	n1.do(chromedp.WaitVisible(chromedp.CSS(`[data-connection=offline]`)))
	if txt := n1.text(`#conn`); !strings.Contains(txt, "No connection") {
		t.Errorf("offline indicator says %q", txt)
	}
	if shot, err := chromedp.Run(n1.ctx, chromedp.CaptureScreenshot()); err == nil {
		_ = os.WriteFile(filepath.Join(artefacts, "webapp-offline.png"), shot, 0o644)
	}
	g.start()
	n1.doWithin(restartLimit, chromedp.WaitVisible(chromedp.CSS(`[data-connection=online]`)))
	n1.until("the offer sent again after the reconnect",
		fmt.Sprintf(`(() => { const e = document.querySelector(%q); return !!e && Number(e.dataset.offers) > %d })()`, offerSel(id2), before),
		waitLimit)
	n1.delivered(id2, 2)
	n2.doWithin(restartLimit, chromedp.WaitVisible(chromedp.CSS(`[data-connection=online]`)))

	// A reloaded page (the phone restarted) keeps its login and shows the offer again.
	n1.do(chromedp.Reload(),
		chromedp.WaitVisible(chromedp.CSS(`[data-connection=online]`)),
		chromedp.WaitVisible(chromedp.CSS(offerSel(id2)+`[data-state=offered]`)))
	n1.delivered(id2, 1)

	// nurse-2 (English since the switch): position sharing, duty, availability.
	grant := browser.SetPermissionParams{
		Permission: &browser.PermissionDescriptor{Name: "geolocation"}, Setting: browser.PermissionSettingGranted,
		Origin: base, BrowserContextID: chromedp.FromContext(n2.ctx).BrowserContextID,
	}
	if _, err := chromedp.CallBrowser(n2.ctx, browser.SetPermission, grant); err != nil {
		t.Fatal(err)
	}
	lat, lon, acc := 59.9139, 10.75245, 6.0
	if _, err := chromedp.Call(n2.ctx, emulation.SetGeolocationOverride, emulation.SetGeolocationOverrideParams{Latitude: &lat, Longitude: &lon, Accuracy: &acc}); err != nil {
		t.Fatal(err)
	}
	if got := n2.text(`.why`); !strings.Contains(got, "nearest") {
		t.Errorf("the position switch does not say why: %q", got)
	}
	n2.do(chromedp.Click(chromedp.CSS(`#share`)))
	n2.until("position shared", `document.querySelector('#share-status').textContent === 'Position shared.'`, waitLimit)
	n2.do(chromedp.Click(chromedp.CSS(`#duty`)))
	n2.until("off duty", `document.querySelector('#share').disabled && document.querySelector('#share-status').textContent === 'Go on duty to share your position.'`, waitLimit)
	if me := n2.me(); me.OnDuty || me.HasPosition {
		t.Errorf("after going off duty the gateway has on_duty=%v has_position=%v", me.OnDuty, me.HasPosition)
	}
	n2.do(chromedp.Click(chromedp.CSS(`#duty`)))
	n2.until("on duty again", `!document.querySelector('#share').disabled`, waitLimit)
	n2.eval(`(() => { const s = document.querySelector('#availability'); s.value = 'busy'; s.dispatchEvent(new Event('change')); })()`)
	n2.until("busy", `document.querySelector('#availability').value === 'busy'`, waitLimit)
	if me := n2.me(); !me.OnDuty || me.Availability != "busy" {
		t.Errorf("the gateway has on_duty=%v availability=%q, want on duty and busy", me.OnDuty, me.Availability)
	}

	// The gateway refuses a position (409) from someone off duty: the page stops
	// sharing and says why. The page is told of the duty change only by the 409.
	n2.eval(`fetch('/api/v1/me/duty', {method: 'PUT', headers: {'Content-Type': 'application/json',
		Authorization: 'Bearer ' + JSON.parse(localStorage.getItem('vakt.session')).token}, body: '{"on_duty":false}'})`)
	if me := n2.me(); me.OnDuty {
		t.Fatal("nurse-2 still on duty at the gateway")
	}
	n2.do(chromedp.Click(chromedp.CSS(`#share`)), chromedp.Click(chromedp.CSS(`#share`)))
	n2.until("position refused", `document.querySelector('#share-status').textContent.startsWith('The gateway does not keep positions now') && !document.querySelector('#share').checked`, waitLimit)
	n2.do(chromedp.Click(chromedp.CSS(`#duty`))) // the page still showed on duty: this sends off
	n2.until("off duty in the page", `!document.querySelector('#duty').checked && document.querySelector('#share').disabled`, waitLimit)
	n2.do(chromedp.Click(chromedp.CSS(`#duty`)))
	n2.until("on duty again", `document.querySelector('#duty').checked && !document.querySelector('#share').disabled`, waitLimit)
	if me := n2.me(); !me.OnDuty {
		t.Error("nurse-2 not on duty again")
	}

	// A home-care visit: start, "EPR note sent", end.
	n2.do(chromedp.SendKeys(chromedp.CSS(`#visit-form input[name=room]`), "204"),
		chromedp.SendKeys(chromedp.CSS(`#visit-form input[name=resident]`), "r-7f3a"),
		chromedp.Click(chromedp.CSS(`#visit-form button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-visit-id]`)),
		chromedp.SendKeys(chromedp.CSS(`[data-visit-id] input[name=epr_system]`), "CosDoc"),
		chromedp.Click(chromedp.CSS(`[data-visit-id] [data-visit-action=epr]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-visit-id][data-epr=sent]`)),
		chromedp.SetValue(chromedp.CSS(`[data-visit-id] select[name=end_note]`), "round"),
		chromedp.Click(chromedp.CSS(`[data-visit-id] [data-visit-action=end]`)),
		chromedp.WaitNotPresent(chromedp.CSS(`[data-visit-id]`)))

	// Accept and complete without a note; then log out.
	n1.do(chromedp.Click(chromedp.CSS(offerSel(id2)+` [data-action=accept]`)),
		chromedp.Click(chromedp.CSS(listSel(id2)+`[data-state=accepted] [data-action=complete]`)),
		chromedp.WaitVisible(chromedp.CSS(listSel(id2)+`[data-state=completed]`)),
		chromedp.Click(chromedp.CSS(`#logout`)),
		chromedp.WaitVisible(chromedp.CSS(`input[name=staff_id]`)))
}

// distance reads "N m away" from an offer card.
func distance(t *testing.T, card string) float64 {
	t.Helper()
	for _, f := range strings.Split(card, "·") {
		f = strings.TrimSpace(f)
		for _, suffix := range []string{" m away", " m unna"} {
			if i := strings.Index(f, suffix); i > 0 {
				fs := strings.Fields(f[:i])
				if v, err := strconv.ParseFloat(fs[len(fs)-1], 64); err == nil {
					return v
				}
			}
		}
	}
	t.Fatalf("no distance in %q", card)
	return 0
}

// Package browsertest starts Debian's headless Chromium for the tests of the pages
// the gateway serves (the staff web app, the technician's status page), with the
// flags this closed network needs, and finds the folder test artefacts go to.
package browsertest

import (
	"context"
	"net"
	"os"
	"os/exec"
	"testing"

	"github.com/chromedp/chromedp"
)

// Chromium finds the browser. Outside CI a missing browser skips the test with a
// clear reason; in CI (CI=true) it fails, so a missing install step is seen.
func Chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium is not installed; CI must install the Debian package \"chromium\"")
	}
	t.Skip("chromium not installed (apt-get install -y chromium); skipping the browser test")
	return ""
}

// Start runs a fresh headless browser (its own empty profile) and returns its
// context; it is closed when the test ends. Background networking, component updates
// and sync are off: this machine reaches no outside host, and Chromium would
// otherwise keep retrying them.
func Start(t *testing.T) context.Context {
	t.Helper()
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(Chromium(t)),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("mute-audio", true),
		chromedp.Flag("disable-dev-shm-usage", true), // small /dev/shm in containers
		chromedp.UserDataDir(t.TempDir()),
	)
	bctx, cancelBrowser := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancelBrowser(); cancelAlloc() })
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return bctx
}

// FreePort is a loopback port free at the time of asking.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// ArtefactDir is $VAKT_ARTEFACTS (screenshots kept after the run), else a
// temporary folder of the test.
func ArtefactDir(t *testing.T) string {
	if d := os.Getenv("VAKT_ARTEFACTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err == nil {
			return d
		}
	}
	return t.TempDir()
}

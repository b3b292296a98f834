package status

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
)

// Health answers /healthz (the process serves HTTP) and /readyz (every part the
// gateway needs is up: the store open, the routing loaded, the drivers started).
// Docker's HEALTHCHECK and the CI smoke test ask /readyz; systemd is told READY=1 at
// the same moment.
type Health struct {
	mu      sync.Mutex
	parts   []string
	ready   map[string]bool
	readyCh chan struct{}
}

// Parts of readiness the gateway reports.
const (
	PartStore   = "store"
	PartRouting = "routing"
	PartDrivers = "drivers"
)

// NewHealth expects each of parts to be reported ready.
func NewHealth(parts ...string) *Health {
	return &Health{parts: parts, ready: map[string]bool{}, readyCh: make(chan struct{})}
}

// Ready marks part as up. Once every part is, Done is closed.
func (h *Health) Ready(part string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ready[part] = true
	if len(h.missingLocked()) == 0 {
		select {
		case <-h.readyCh:
		default:
			close(h.readyCh)
		}
	}
}

// Done is closed once every part is ready.
func (h *Health) Done() <-chan struct{} { return h.readyCh }

// Missing lists the parts not ready yet.
func (h *Health) Missing() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.missingLocked()
}

func (h *Health) missingLocked() []string {
	var out []string
	for _, p := range h.parts {
		if !h.ready[p] {
			out = append(out, p)
		}
	}
	return out
}

// Healthz answers 200 while the process serves HTTP.
func (h *Health) Healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintln(w, "ok")
}

// Readyz answers 200 "ready" once every part is up, 503 with what is missing before.
func (h *Health) Readyz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if m := h.Missing(); len(m) > 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, "starting: waiting for %s\n", strings.Join(m, ", "))
		return
	}
	fmt.Fprintln(w, "ready")
}

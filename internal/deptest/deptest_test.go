package deptest

import (
	"fmt"
	"strings"
	"testing"
)

// recorder collects what Check reports instead of failing the test.
type recorder struct {
	*testing.T
	errs []string
}

func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

// TestCheckIsTransitive: net/http reaches net only through other packages, and
// Check still reports it; a boundary stops the walk and must be reached.
func TestCheckIsTransitive(t *testing.T) {
	r := &recorder{T: t}
	Check(r, "net/http", Rule{Deny: []string{"net"}})
	if len(r.errs) != 1 || !strings.Contains(r.errs[0], "net/http depends on net (denied)") {
		t.Fatalf("Check reported %q, want net denied", r.errs)
	}

	// routing reaches lib/pq only through golang-geo.
	const routing, geo, pq = "github.com/vakt/vakt/routing", "github.com/kellydunn/golang-geo", "github.com/lib/pq"
	r = &recorder{T: t}
	Check(r, routing, Rule{Deny: []string{pq}})
	if len(r.errs) != 1 || !strings.Contains(r.errs[0], "depends on "+pq) {
		t.Fatalf("without a boundary: %q, want lib/pq reported", r.errs)
	}
	r = &recorder{T: t}
	Check(r, routing, Rule{Deny: []string{pq}, Boundary: []string{geo}})
	if len(r.errs) != 0 {
		t.Fatalf("with golang-geo as the boundary: %q, want nothing", r.errs)
	}

	r = &recorder{T: t}
	Check(r, "strings", Rule{Boundary: []string{"net"}})
	if len(r.errs) != 1 || !strings.Contains(r.errs[0], "no longer reaches net") {
		t.Fatalf("an unreached boundary: %q", r.errs)
	}
}

// TestCheckAllow: a non-standard dependency outside the allow list is reported.
func TestCheckAllow(t *testing.T) {
	r := &recorder{T: t}
	Check(r, "github.com/vakt/vakt/drivers/espa", Rule{Allow: []string{"github.com/vakt/vakt/drivers/..."}})
	if len(r.errs) != 1 || !strings.Contains(r.errs[0], "depends on github.com/vakt/vakt (not in its allow list)") {
		t.Fatalf("Check reported %q", r.errs)
	}
}

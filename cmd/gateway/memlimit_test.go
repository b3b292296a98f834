package main

import (
	"runtime/debug"
	"testing"
)

// P4: without GOMEMLIMIT the gateway runs under defaultMemoryLimit; an installer's
// GOMEMLIMIT (already applied by the runtime) is left as it is.
func TestSetMemoryLimit(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(before) })

	debug.SetMemoryLimit(123 << 20) // as if GOMEMLIMIT=123MiB had been applied
	setMemoryLimit(func(k string) string {
		if k == "GOMEMLIMIT" {
			return "123MiB"
		}
		return ""
	})
	if got := debug.SetMemoryLimit(-1); got != 123<<20 {
		t.Fatalf("with GOMEMLIMIT set, limit = %d, want it untouched (%d)", got, 123<<20)
	}

	setMemoryLimit(func(string) string { return "" })
	if got := debug.SetMemoryLimit(-1); got != defaultMemoryLimit {
		t.Fatalf("without GOMEMLIMIT, limit = %d, want defaultMemoryLimit %d", got, defaultMemoryLimit)
	}
}

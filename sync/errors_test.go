package sync

import (
	"testing"
	"time"
)

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Duration{
		"":                              0,
		"30":                            30 * time.Second,
		"-5":                            0,
		"86400":                         0, // over an hour: use our own backoff
		"Tue, 01 Dec 2026 10:02:00 GMT": 2 * time.Minute,
		"Tue, 01 Dec 2026 09:00:00 GMT": 0, // in the past
		"soon":                          0,
	} {
		if got := retryAfter(in, now); got != want {
			t.Errorf("retryAfter(%q) = %v, want %v", in, got, want)
		}
	}
	// A gateway whose clock says 1970 must not wait 56 years for an HTTP date.
	if got := retryAfter("Tue, 01 Dec 2026 10:02:00 GMT", time.Unix(5, 0)); got != 0 {
		t.Errorf("with a 1970 clock: %v, want 0", got)
	}
}

func FuzzRetryAfter(f *testing.F) {
	for _, s := range []string{"30", "0", "Tue, 01 Dec 2026 10:02:00 GMT", "-1", "9999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if d := retryAfter(s, time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)); d < 0 || d > maxRetryAfter {
			t.Fatalf("retryAfter(%q) = %v", s, d)
		}
	})
}

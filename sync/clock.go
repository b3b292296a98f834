package sync

import (
	"crypto/rand"
	"encoding/hex"
	"time"
)

// NewBootID returns a random id for this process run ("b-" and 16 hex digits). Every
// outbox entry carries it, so a cloud can order and re-date entries made before the
// clock was synced by their monotonic time since the same boot.
func NewBootID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return "b-" + hex.EncodeToString(b[:])
}

// buildFloor is a time no real clock reading can be before: a box without a
// real-time clock boots in 1970 and stays there until NTP sets it.
var buildFloor = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// ClockSynced reports whether the wall clock can be trusted now: it is after 2024
// and, on Linux, the kernel does not flag it unsynchronised (adjtimex STA_UNSYNC,
// cleared by NTP or chrony once they discipline the clock).
func ClockSynced() bool { return clockSynced(time.Now(), kernelUnsynced) }

func clockSynced(now time.Time, unsynced func() (bool, bool)) bool {
	if now.Before(buildFloor) {
		return false
	}
	if u, known := unsynced(); known {
		return !u
	}
	return true
}

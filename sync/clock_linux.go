package sync

import "golang.org/x/sys/unix"

// kernelUnsynced asks adjtimex (read-only: Modes 0) whether the kernel flags the
// clock unsynchronised; known is false if it cannot say.
func kernelUnsynced() (unsynced, known bool) {
	var tx unix.Timex
	if _, err := unix.Adjtimex(&tx); err != nil {
		return false, false
	}
	return tx.Status&unix.STA_UNSYNC != 0, true
}

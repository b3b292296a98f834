package vakt

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"time"
)

// AuditEntry is one append-only, hash-chained record of who did what to which ids.
type AuditEntry struct {
	Seq     int64
	At      time.Time
	Actor   string // "staff:<id>", "transmitter:<id>", "system", "technician"
	Action  string // "alarm.raised", "alarm.accepted", ...
	Subject string // ids only, e.g. "alarm:a-12"
	Prev    string // hex hash of the previous entry ("" for the first)
	Hash    string // hex hash of this entry
}

// ChainHash computes the entry's hash from its fields and the previous hash. Any edit,
// deletion or reordering changes every later hash.
func (e AuditEntry) ChainHash() string {
	h := sha256.New()
	for _, s := range []string{
		strconv.FormatInt(e.Seq, 10), e.At.UTC().Format(time.RFC3339Nano),
		e.Actor, e.Action, e.Subject, e.Prev,
	} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

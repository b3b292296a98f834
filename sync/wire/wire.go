// Package wire is the sync contract between a Vakt gateway and its cloud, defined once:
// the envelope of an uploaded outbox entry, one typed and versioned body per outbox
// kind, the acknowledgement, the gateway state (with the audit-head anchor) and the
// directory feed. The gateway side (package sync), the reference cloud (cmd/cloudsim)
// and the conformance suite all import these types; docs/sync-protocol.md describes
// them field by field for implementers who do not read Go.
//
// Positions never leave the gateway: no type here has a position, coordinate or
// distance field (a test enforces it).
package wire

import (
	"encoding/json"
	"time"

	vakt "github.com/vakt/vakt"
)

// Protocol is the protocol's major version. It is in every path (/v1/...) and in the
// Vakt-Protocol header; a change that an old peer would misread gets a new one.
const Protocol = 1

// Paths below the cloud's base URL. {gateway} is the gateway's site id.
const (
	PathEntries   = "/v1/gateways/{gateway}/entries"   // POST a batch
	PathState     = "/v1/gateways/{gateway}/state"     // GET acked seq and audit head
	PathDirectory = "/v1/gateways/{gateway}/directory" // GET changes since a cursor
)

// Headers of the upload request.
const (
	HeaderProtocol = "Vakt-Protocol"  // "1"
	HeaderAfter    = "Vakt-After-Seq" // the batch follows this seq directly (see Batch rules)
	ContentType    = "application/x-ndjson"
)

// Outbox kinds. A cloud stores an unknown kind verbatim and acknowledges it, so a newer
// gateway is never blocked by an older cloud.
const (
	KindAlarm  = vakt.OutboxKindAlarm
	KindVisit  = vakt.OutboxKindVisit
	KindEPR    = vakt.OutboxKindEPR
	KindHealth = vakt.OutboxKindHealth
	KindAudit  = vakt.OutboxKindAudit
)

// Versions of each kind's body schema. A body gains optional fields without a new
// version; a renamed, removed or re-typed field needs one.
var Versions = vakt.OutboxVersions

// Envelope is one outbox entry on the wire: one JSON line of the upload body.
// The idempotency key is (gateway id from the path, Seq).
type Envelope struct {
	// Seq is the gateway's outbox sequence number: > 0, strictly increasing within
	// a batch and across batches, never reused by the gateway.
	Seq int64 `json:"seq"`
	// Kind is one of the Kind constants; V the version of its body schema.
	Kind string `json:"kind"`
	V    int    `json:"v"`
	// At is the gateway's wall clock when the change was made (RFC 3339, UTC).
	// Trust it only when ClockSynced is true: a box without a real-time clock may
	// boot in 1970 and make records before NTP sets its clock.
	At          time.Time `json:"at"`
	ClockSynced bool      `json:"clock_synced"`
	// Boot identifies the gateway process run that made the entry; SinceBootMS is the
	// monotonic time since that start. Together they order and re-date entries made
	// before the clock was synced, from a later synced entry of the same boot.
	Boot        string `json:"boot"`
	SinceBootMS int64  `json:"since_boot_ms,omitempty"`
	// Body is the kind's body (Alarm, Visit, EPR, Health or Audit), a JSON object.
	Body json.RawMessage `json:"body"`
}

// Ack is the cloud's answer to an accepted upload (HTTP 200).
type Ack struct {
	// Acked is the highest seq such that every entry the gateway sent up to it is
	// durably committed by the cloud (it survives a cloud crash). The gateway deletes
	// its entries up to Acked and nothing more. It may be below the batch's last seq
	// (the cloud took only a prefix); the gateway then sends the rest again.
	Acked int64 `json:"acked"`
	// Stored counts entries of this batch stored now; Repeated those that were
	// already stored (acknowledged again, not stored twice).
	Stored   int `json:"stored"`
	Repeated int `json:"repeated"`
}

// Error is the body of every non-2xx answer.
type Error struct {
	// Code is machine-readable: one of the Code constants.
	Code string `json:"code"`
	// Message is for people: what is wrong and what to change.
	Message string `json:"message"`
	// Acked is the cloud's committed seq, on gap and conflict answers.
	Acked *int64 `json:"acked,omitempty"`
}

// Error codes.
const (
	CodeUnauthorized = "unauthorized" // 401: no or unknown token
	CodeForbidden    = "forbidden"    // 403: the token belongs to another gateway
	CodeMalformed    = "malformed"    // 400: not gzip, not JSON lines, bad field, seqs not increasing
	CodeGap          = "gap"          // 409: Vakt-After-Seq is beyond what the cloud committed
	CodeConflict     = "conflict"     // 409: a seq already stored with different content
	CodeTooLarge     = "too_large"    // 413: body over the cloud's limit
	CodeBusy         = "busy"         // 429/503: retry later (Retry-After)
	CodeInternal     = "internal"     // 500: the cloud's fault; retry
)

// State is the answer to GET PathState.
type State struct {
	Protocol int `json:"protocol"`
	// Acked as in Ack: what the gateway may have deleted.
	Acked int64 `json:"acked"`
	// AuditHead is the newest audit entry the cloud received (nil before the first):
	// verify-audit compares it with the local log to see a truncated or rewritten tail.
	AuditHead *AuditHead `json:"audit_head"`
}

// AuditHead anchors the gateway's hash-chained audit log in the cloud.
type AuditHead struct {
	Seq  int64  `json:"seq"`  // audit seq (Audit.Seq), not the outbox seq
	Hash string `json:"hash"` // Audit.Hash of that entry
	// OutboxSeq is the envelope seq that carried it.
	OutboxSeq int64 `json:"outbox_seq"`
}

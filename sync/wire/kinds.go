package wire

import vakt "github.com/vakt/vakt"

// The bodies are defined once, in the root package, where the engine and the store
// produce them; these names are the contract's.
type (
	// Alarm (kind "alarm", v1) is one alarm lifecycle transition: ids and facts
	// only, never names or positions. Every transition is its own entry.
	Alarm = vakt.OutboxAlarm
	// Visit (kind "visit", v1) is a registered visit as it is now.
	Visit = vakt.OutboxVisit
	// EPR (kind "epr", v1) records that a note was sent to the EPR system, never
	// its content.
	EPR = vakt.OutboxEPR
	// Health (kind "health", v1) is what the gateway last heard from a transmitter.
	Health = vakt.OutboxHealth
	// Audit (kind "audit", v1) is one hash-chained audit entry, exactly as stored.
	Audit = vakt.OutboxAudit
)

-- The reference cloud's tables. Idempotent: run at every open.
CREATE TABLE IF NOT EXISTS entries (
	gateway_id   TEXT    NOT NULL,
	seq          INTEGER NOT NULL,
	kind         TEXT    NOT NULL,
	v            INTEGER NOT NULL,
	at           TEXT    NOT NULL, -- the gateway's wall clock (RFC 3339); see clock_synced
	clock_synced INTEGER NOT NULL,
	boot         TEXT    NOT NULL,
	body         TEXT    NOT NULL, -- the kind's JSON body as sent
	digest       TEXT    NOT NULL, -- SHA-256 of the envelope: a repeat must match it
	received_at  INTEGER NOT NULL, -- unix nanoseconds, the cloud's clock
	UNIQUE (gateway_id, seq)
);

CREATE TABLE IF NOT EXISTS gateways (
	gateway_id       TEXT PRIMARY KEY,
	acked            INTEGER NOT NULL, -- every entry up to here is committed
	audit_seq        INTEGER,          -- the newest audit entry received (the anchor)
	audit_hash       TEXT,
	audit_outbox_seq INTEGER
);

-- The directory feed: one row per change; the cursor is the last id handed out.
CREATE TABLE IF NOT EXISTS directory (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	gateway_id TEXT    NOT NULL,
	op         TEXT    NOT NULL, -- upsert, remove, erase
	staff_id   TEXT    NOT NULL,
	staff      TEXT,             -- JSON wire.Staff, for upsert
	request_id TEXT    NOT NULL DEFAULT '',
	at         INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS directory_gateway ON directory (gateway_id, id);

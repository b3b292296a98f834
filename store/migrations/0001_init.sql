-- 0001: the gateway's whole durable state.
--
-- Conventions: times are INTEGER unix nanoseconds in UTC, NULL when unset (a zero
-- time.Time). Booleans are INTEGER 0/1. JSON columns hold small arrays the store
-- encodes itself (see codec.go), never raw Go structs.
--
-- Privacy (G2): the only personal fields are the ones the privacy policy names: a
-- staff member's name, e-mail, telephone number, roles (staff), registered visits
-- (visits), EPR records without content (epr_records) and the audit log (audit, ids
-- only). Positions (staff_state.pos_*) are ephemeral and purged (G1).
--
-- No foreign keys between these tables: one stale reference (an EPR record for a
-- visit the engine has not stored) must not fail a group commit that holds other
-- sources' alarms. CHECK constraints guard only what no valid batch can break.

-- Small counters that must survive retention deletes.
CREATE TABLE meta (
	key   TEXT PRIMARY KEY,
	value INTEGER NOT NULL
) WITHOUT ROWID;
-- Highest n of an alarm id "<prefix>-<n>" ever committed; alarm ids stay unique even
-- after old alarms are deleted.
INSERT INTO meta (key, value) VALUES ('alarm_counter', 0);

-- The staff directory (local config or cloud). Exactly the personal fields of the
-- privacy policy, plus the credential hash and the primary zone.
CREATE TABLE staff (
	id          TEXT PRIMARY KEY CHECK (id <> ''),
	name        TEXT NOT NULL,
	phone       TEXT NOT NULL,
	email       TEXT NOT NULL,
	roles       TEXT NOT NULL, -- JSON array of strings
	zone        TEXT NOT NULL,
	secret_hash TEXT NOT NULL
);

-- Live per-shift state. pos_* are all NULL or all set; purged after a TTL and whenever
-- nearest-staff routing is turned off.
CREATE TABLE staff_state (
	staff_id        TEXT PRIMARY KEY CHECK (staff_id <> ''),
	on_duty         INTEGER NOT NULL,
	availability    TEXT NOT NULL,
	last_offered_at INTEGER,
	pos_lat         REAL,
	pos_lon         REAL,
	pos_floor       INTEGER,
	pos_accuracy_m  REAL,
	pos_at          INTEGER
);

-- What the gateway last heard from each transmitter.
CREATE TABLE health (
	transmitter_id TEXT PRIMARY KEY CHECK (transmitter_id <> ''),
	last_seen      INTEGER,
	battery        INTEGER,
	link_quality   INTEGER,
	online         INTEGER NOT NULL
);

-- Every event a driver delivered, acknowledged to its source only after this row
-- committed (rule 1). alarm_id is '' for events that opened no alarm (check-ins).
CREATE TABLE events (
	id           INTEGER PRIMARY KEY,
	transmitter  TEXT NOT NULL,
	kind         TEXT NOT NULL,
	priority     INTEGER NOT NULL,
	source       TEXT NOT NULL,
	source_id    TEXT NOT NULL,
	raw          BLOB,
	text         TEXT NOT NULL,
	battery      INTEGER,
	link_quality INTEGER,
	received_at  INTEGER,
	alarm_id     TEXT NOT NULL,
	duplicate    INTEGER NOT NULL
);
-- Check-ins (alarm_id '') stay out of it: a check-in writes one table page, no index.
-- There is no index on received_at or (source, source_id): Load walks the newest
-- events by id, and every index costs a page write per commit on the SD card (P6).
CREATE INDEX events_alarm ON events (alarm_id) WHERE alarm_id <> '';

-- One row per alarm, rewritten on every transition. offers is a JSON array.
CREATE TABLE alarms (
	id              TEXT PRIMARY KEY CHECK (id <> ''),
	transmitter     TEXT NOT NULL,
	kind            TEXT NOT NULL,
	priority        INTEGER NOT NULL,
	state           TEXT NOT NULL CHECK (state IN
		('raised', 'offered', 'accepted', 'present', 'completed', 'cancelled', 'forwarded')),
	raised_at       INTEGER,
	updated_at      INTEGER,
	count           INTEGER NOT NULL,
	policy          TEXT NOT NULL,
	tier            INTEGER NOT NULL,
	tier_started_at INTEGER,
	round           INTEGER NOT NULL,
	assignee        TEXT NOT NULL,
	accepted_at     INTEGER,
	offers          TEXT NOT NULL,
	deadline        INTEGER,
	forwarded       INTEGER NOT NULL,
	walk_test       INTEGER NOT NULL
);
-- Holds only open alarms, so Load reads a handful of rows however long the history.
CREATE INDEX alarms_open ON alarms (state) WHERE state NOT IN ('completed', 'cancelled');
CREATE INDEX alarms_raised ON alarms (raised_at);

-- Registered visits.
CREATE TABLE visits (
	id       TEXT PRIMARY KEY CHECK (id <> ''),
	staff_id TEXT NOT NULL,
	room     TEXT NOT NULL,
	resident TEXT NOT NULL, -- pseudonymous reference
	start_at INTEGER,
	end_at   INTEGER,
	alarm_id TEXT NOT NULL,
	note     TEXT NOT NULL  -- short record kind, no health data
);
CREATE INDEX visits_staff ON visits (staff_id);
CREATE INDEX visits_open ON visits (start_at) WHERE end_at IS NULL;

-- Only the fact that a note went to the EPR system. There is deliberately no column
-- for the note's content (G2).
CREATE TABLE epr_records (
	visit_id TEXT NOT NULL,
	system   TEXT NOT NULL,
	sent_at  INTEGER,
	staff_id TEXT NOT NULL,
	PRIMARY KEY (visit_id, system, sent_at)
);
CREATE INDEX epr_staff ON epr_records (staff_id);

-- Append-only, hash-chained (vakt.AuditEntry.ChainHash). seq is assigned by the store
-- as previous + 1, so a gap is a deleted entry. Actor and subject hold ids only.
CREATE TABLE audit (
	seq     INTEGER PRIMARY KEY,
	at      INTEGER NOT NULL,
	actor   TEXT NOT NULL,
	action  TEXT NOT NULL,
	subject TEXT NOT NULL,
	prev    TEXT NOT NULL,
	hash    TEXT NOT NULL
);

-- Changes waiting for the cloud. AUTOINCREMENT: a seq is never reused, even after the
-- table was drained empty, because the cloud drops repeats by (gateway, seq).
CREATE TABLE outbox (
	seq  INTEGER PRIMARY KEY AUTOINCREMENT,
	kind TEXT NOT NULL,
	body BLOB NOT NULL,
	at   INTEGER
);

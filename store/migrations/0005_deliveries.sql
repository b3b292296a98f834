-- 0005: the durable outbound queue (pages, ARC forwards and their resets/restores),
-- written in the same transaction as the alarm change that asked for each row.
CREATE TABLE deliveries (
	id         TEXT PRIMARY KEY,
	alarm_id   TEXT NOT NULL,
	target     TEXT NOT NULL,
	restore    INTEGER NOT NULL,
	address    TEXT NOT NULL,
	zone       INTEGER NOT NULL,
	kind       TEXT NOT NULL,
	text       TEXT NOT NULL,
	seq        INTEGER NOT NULL,
	delivered  INTEGER NOT NULL,
	created_at INTEGER NOT NULL
) WITHOUT ROWID;

-- The display text of the call that raised an alarm (an ESPA call no mapping rule
-- knows carries its call address and message), shown by the phones.
ALTER TABLE alarms ADD COLUMN text TEXT NOT NULL DEFAULT '';

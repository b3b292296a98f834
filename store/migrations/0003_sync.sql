-- 0003: what the cloud sync has reached, written in the same transaction as what it
-- describes. outbox_acked is the highest outbox seq the cloud acknowledged (the
-- next upload's Vakt-After-Seq); the directory feed's cursor is text, kept apart.
INSERT INTO meta (key, value) VALUES ('outbox_acked', 0);
CREATE TABLE sync_state (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
) WITHOUT ROWID;

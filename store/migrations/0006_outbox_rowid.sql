-- 0006: the outbox without AUTOINCREMENT (P6, SD-card wear). AUTOINCREMENT kept the
-- highest seq ever used in sqlite_sequence, a row rewritten by every commit that
-- queued an entry: one more 1 KB page in the WAL per commit, and again at the
-- checkpoint. The store now assigns each seq itself, one above the highest of: the
-- largest seq in the table, meta's outbox_acked (the acknowledgement path deletes
-- entries only up to it) and meta's outbox_floor (the highest seq retention deleted,
-- written only by the purge that deletes). A seq is still never reused, even after
-- the table was emptied and the gateway restarted; the cloud drops repeats by
-- (gateway, seq).
--
-- SQLite cannot drop AUTOINCREMENT from a table, so it is rebuilt with the same
-- columns in the same order (0001's, then 0004's), and the highest seq the old
-- table ever used becomes the floor.
INSERT INTO meta (key, value) VALUES ('outbox_floor',
	max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'outbox'), 0),
		coalesce((SELECT max(seq) FROM outbox), 0)))
	ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value);
CREATE TABLE outbox_new (
	seq           INTEGER PRIMARY KEY,
	kind          TEXT NOT NULL,
	body          BLOB NOT NULL,
	at            INTEGER,
	v             INTEGER NOT NULL DEFAULT 1,
	clock_synced  INTEGER NOT NULL DEFAULT 0,
	boot          TEXT NOT NULL DEFAULT '',
	since_boot_ms INTEGER NOT NULL DEFAULT 0,
	health_of     TEXT
);
INSERT INTO outbox_new (seq, kind, body, at, v, clock_synced, boot, since_boot_ms, health_of)
	SELECT seq, kind, body, at, v, clock_synced, boot, since_boot_ms, health_of FROM outbox ORDER BY seq;
DROP TABLE outbox;
ALTER TABLE outbox_new RENAME TO outbox;
CREATE INDEX outbox_health ON outbox (health_of, seq) WHERE health_of IS NOT NULL;

-- 0004: every outbox entry says which process run made it and whether the wall
-- clock was synchronised then (docs/sync-protocol.md, "Clocks"), and its body's
-- schema version. health_of names the transmitter of a health entry, so the
-- bounded backlog can compact superseded health samples without parsing bodies.
ALTER TABLE outbox ADD COLUMN v INTEGER NOT NULL DEFAULT 1;
ALTER TABLE outbox ADD COLUMN clock_synced INTEGER NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN boot TEXT NOT NULL DEFAULT '';
ALTER TABLE outbox ADD COLUMN since_boot_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN health_of TEXT;
CREATE INDEX outbox_health ON outbox (health_of, seq) WHERE health_of IS NOT NULL;

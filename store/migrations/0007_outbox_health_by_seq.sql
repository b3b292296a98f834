-- 0007: the index of queued health samples ordered by seq, not by transmitter (P6,
-- SD-card wear). Ordered by (health_of, seq), each new sample went into its
-- transmitter's run somewhere in the middle of the index: with thousands of samples
-- queued (the cloud away, or sync off) nearly every sample of a commit landed on
-- another leaf page, ~24 of a check-in commit's 45 WAL frames at a busy site
-- (scripts/wear.sh, after its warm-up). Ordered by seq, new samples append to the
-- rightmost leaf: one or two pages a commit. Compaction (the only reader) now scans
-- it once and groups by transmitter (store/commit.go).
DROP INDEX outbox_health;
CREATE INDEX outbox_health ON outbox (seq, health_of) WHERE health_of IS NOT NULL;

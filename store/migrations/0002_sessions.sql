-- Phone logins, so a restart does not log every phone out. Only the SHA-256 of a
-- bearer token is kept; expired rows are deleted whenever logins are written.
CREATE TABLE sessions (
	token_hash TEXT PRIMARY KEY,
	staff_id   TEXT NOT NULL,
	expires_at INTEGER NOT NULL
);
CREATE INDEX sessions_staff ON sessions (staff_id);

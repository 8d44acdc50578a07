-- One row per committed change that ends or alters a credential (an API
-- token, a session, a user, a registry client), written in the change's own
-- transaction. Every `serve` process reads the rows past the last sequence
-- number it saw, every 250 ms (and at once on a PostgreSQL NOTIFY), and drops
-- what its caches hold about the named record: so a revocation reaches every
-- replica within a second. The maintenance job deletes rows after an hour.
-- `{serial_key}` is the backend's auto-incrementing key (sql::Dialect):
-- INTEGER PRIMARY KEY AUTOINCREMENT on SQLite, an identity column on
-- PostgreSQL.
CREATE TABLE invalidations (
    seq        {serial_key},
    kind       TEXT NOT NULL,
    target_id  TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX invalidations_created ON invalidations (created_at);

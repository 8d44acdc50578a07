-- WebSocket tickets and the connections they open. A ticket is stored only
-- as its SHA-256 (hex) and taken once by one conditional DELETE … RETURNING;
-- the caller's IP only as a keyed hash. Rows past `expires_at` are purged by
-- the maintenance job; a redemption deletes an expired ticket it finds, and
-- an issue the expired tickets of its own session (so a page that asks for
-- many leaves at most a TTL's worth behind).
CREATE TABLE ws_tickets (
    ticket_hash TEXT PRIMARY KEY,
    session_id  TEXT NOT NULL,
    subject     TEXT NOT NULL,
    scope       TEXT NOT NULL,
    audience    TEXT,
    ip_hash     TEXT,
    issued_at   BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX ws_tickets_expires ON ws_tickets (expires_at);
CREATE INDEX ws_tickets_session ON ws_tickets (session_id, expires_at);

-- One row per redeemed ticket: the gateway's connection, until it reports
-- the close (code and reason as the gateway gave them).
CREATE TABLE ws_connections (
    id           TEXT PRIMARY KEY,
    session_id   TEXT NOT NULL,
    subject      TEXT NOT NULL,
    user_id      TEXT,
    client_id    TEXT NOT NULL,
    audience     TEXT,
    opened_at    BIGINT NOT NULL,
    closed_at    BIGINT,
    close_code   BIGINT,
    close_reason TEXT
);
CREATE INDEX ws_connections_session ON ws_connections (session_id);
CREATE INDEX ws_connections_closed ON ws_connections (closed_at);

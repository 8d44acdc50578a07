-- Machine API tokens, their secrets, the audit log and the event outbox.
-- Timestamps are unix milliseconds (BIGINT) on both backends so that the
-- shared SQL compares and orders them identically.
CREATE TABLE api_tokens (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    description   TEXT,
    owner         TEXT,
    scopes        TEXT NOT NULL,
    hint          TEXT NOT NULL,
    metadata      TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    expires_at    BIGINT,
    last_used_at  BIGINT,
    use_count     BIGINT NOT NULL DEFAULT 0,
    revoked_at    BIGINT,
    revoked_by    TEXT,
    revoke_reason TEXT,
    purged_at     BIGINT,
    deleted_at    BIGINT
);
CREATE INDEX api_tokens_owner_id ON api_tokens (owner, id);

-- One row per live secret. The current secret has valid_until NULL; a secret
-- replaced by a rotation with a grace period keeps working until valid_until.
CREATE TABLE api_token_secrets (
    secret_hash TEXT PRIMARY KEY,
    token_id    TEXT NOT NULL REFERENCES api_tokens (id) ON DELETE CASCADE,
    created_at  BIGINT NOT NULL,
    valid_until BIGINT
);
CREATE INDEX api_token_secrets_token ON api_token_secrets (token_id);

CREATE TABLE audit_log (
    id             TEXT PRIMARY KEY,
    at             BIGINT NOT NULL,
    actor          TEXT NOT NULL,
    action         TEXT NOT NULL,
    target_type    TEXT NOT NULL,
    target_id      TEXT,
    request_id     TEXT,
    outcome        TEXT NOT NULL,
    details        TEXT NOT NULL,
    ip_enc         TEXT,
    user_agent_enc TEXT
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_target ON audit_log (target_id, at);

CREATE TABLE outbox_events (
    id            TEXT PRIMARY KEY,
    event_type    TEXT NOT NULL,
    payload       TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    dispatched_at BIGINT
);
CREATE INDEX outbox_events_pending ON outbox_events (dispatched_at, id);

-- Invites, their usage log, and sealed outbox payloads (invite.created
-- carries the code, so its payload is stored encrypted).
ALTER TABLE outbox_events ADD COLUMN payload_sealed BIGINT NOT NULL DEFAULT 0;

CREATE TABLE invites (
    id             TEXT PRIMARY KEY,
    code_hash      TEXT NOT NULL,
    issuer_subject TEXT NOT NULL,
    issuer_role    TEXT NOT NULL,
    grant_role     TEXT NOT NULL,
    grant_scopes   TEXT NOT NULL,
    email          TEXT,
    max_uses       BIGINT NOT NULL,
    uses           BIGINT NOT NULL DEFAULT 0,
    expires_at     BIGINT NOT NULL,
    revoked_at     BIGINT,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    deleted_at     BIGINT,
    metadata       TEXT NOT NULL
);
CREATE UNIQUE INDEX invites_code_hash ON invites (code_hash);
CREATE INDEX invites_issuer_created ON invites (issuer_subject, created_at);

-- One row per issuer, locked while its daily quota is checked, so that
-- concurrent creations by one issuer cannot both slip under the limit.
CREATE TABLE invite_issuers (
    subject TEXT PRIMARY KEY
);

CREATE TABLE invite_usage_log (
    id             TEXT PRIMARY KEY,
    at             BIGINT NOT NULL,
    invite_id      TEXT,
    action         TEXT NOT NULL,
    outcome        TEXT NOT NULL,
    subject        TEXT,
    request_id     TEXT,
    ip_enc         TEXT,
    user_agent_enc TEXT
);
CREATE INDEX invite_usage_log_at ON invite_usage_log (at);
CREATE INDEX invite_usage_log_invite ON invite_usage_log (invite_id, at);

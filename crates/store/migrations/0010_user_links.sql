-- Single-use links mailed to people: password resets and e-mail
-- verifications, one table each (the names the service being replaced used),
-- with the same columns. Only an Argon2id hash of the link's secret is kept;
-- the requesting client's address only sealed (AEAD, keyed). A link works
-- while used_at and superseded_at are NULL and expires_at is ahead; using it
-- is one conditional UPDATE on those three. The maintenance job deletes rows
-- a day after they were used, superseded or expired.
CREATE TABLE password_resets (
    id                  TEXT PRIMARY KEY,
    user_id             TEXT NOT NULL,
    secret_hash         TEXT NOT NULL,
    created_at          BIGINT NOT NULL,
    expires_at          BIGINT NOT NULL,
    used_at             BIGINT,
    superseded_at       BIGINT,
    requester_ip_sealed TEXT
);
CREATE INDEX password_resets_user ON password_resets (user_id, used_at, superseded_at);
CREATE INDEX password_resets_expires ON password_resets (expires_at);

CREATE TABLE email_verifications (
    id                  TEXT PRIMARY KEY,
    user_id             TEXT NOT NULL,
    secret_hash         TEXT NOT NULL,
    created_at          BIGINT NOT NULL,
    expires_at          BIGINT NOT NULL,
    used_at             BIGINT,
    superseded_at       BIGINT,
    requester_ip_sealed TEXT
);
CREATE INDEX email_verifications_user ON email_verifications (user_id, used_at, superseded_at);
CREATE INDEX email_verifications_expires ON email_verifications (expires_at);

-- Second factors: TOTP devices (secrets sealed, with their key id so keys
-- can rotate), the replay record, attempt counters, recovery codes and
-- one-time auth codes (auth codes as keyed hashes, recovery codes as salted
-- SHA-256: never in clear).

CREATE TABLE totp_devices (
    id            TEXT PRIMARY KEY,
    subject       TEXT NOT NULL,
    name          TEXT NOT NULL,
    status        TEXT NOT NULL,
    algorithm     TEXT NOT NULL,
    digits        BIGINT NOT NULL,
    period        BIGINT NOT NULL,
    secret_enc    TEXT NOT NULL,
    secret_key_id TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    confirmed_at  BIGINT,
    last_used_at  BIGINT
);
CREATE INDEX totp_devices_subject ON totp_devices (subject, id);
CREATE INDEX totp_devices_key ON totp_devices (secret_key_id);

-- The last accepted TOTP step per subject. Accepting a code is one
-- conditional upsert on this row, so two replicas racing with the same code
-- cannot both succeed.
CREATE TABLE totp_replay (
    subject    TEXT PRIMARY KEY,
    last_step  BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX totp_replay_expires ON totp_replay (expires_at);

-- Attempts reserved per subject and factor; locked while locked_until is ahead.
CREATE TABLE mfa_attempts (
    subject      TEXT NOT NULL,
    factor       TEXT NOT NULL,
    failures     BIGINT NOT NULL,
    locked_until BIGINT,
    updated_at   BIGINT NOT NULL,
    PRIMARY KEY (subject, factor)
);

CREATE TABLE recovery_codes (
    id         TEXT PRIMARY KEY,
    subject    TEXT NOT NULL,
    code_hash  TEXT NOT NULL,
    used_at    BIGINT,
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX recovery_codes_subject_hash ON recovery_codes (subject, code_hash);

CREATE TABLE auth_codes (
    id               TEXT PRIMARY KEY,
    subject          TEXT NOT NULL,
    purpose          TEXT NOT NULL,
    channel          TEXT NOT NULL,
    destination_enc  TEXT NOT NULL,
    destination_hash TEXT NOT NULL,
    code_hash        TEXT NOT NULL,
    attempts         BIGINT NOT NULL DEFAULT 0,
    max_attempts     BIGINT NOT NULL,
    expires_at       BIGINT NOT NULL,
    sent_at          BIGINT,
    consumed_at      BIGINT,
    superseded_at    BIGINT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX auth_codes_subject ON auth_codes (subject, purpose, created_at);
CREATE INDEX auth_codes_destination ON auth_codes (destination_hash, created_at);
CREATE INDEX auth_codes_created ON auth_codes (created_at);

-- One row per subject and one per destination, locked while a subject's
-- recovery codes are replaced or its auth-code rate limits are checked.
CREATE TABLE mfa_subjects (
    subject TEXT PRIMARY KEY
);
CREATE TABLE auth_code_destinations (
    destination_hash TEXT PRIMARY KEY
);

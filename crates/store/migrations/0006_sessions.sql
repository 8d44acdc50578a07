-- Sessions for people: the built-in user store, login sessions, refresh
-- tokens (one family per session, SHA-256 only), login throttling counters,
-- single-use login challenges for the second factor, and the JWT signing
-- keys (private halves sealed).

CREATE TABLE users (
    id                TEXT PRIMARY KEY,
    -- Trimmed and lower-cased; unique among users not deleted.
    email             TEXT NOT NULL,
    email_verified_at BIGINT,
    -- A PHC string (Argon2id, or an imported hash until the next login).
    password_hash     TEXT,
    display_name      TEXT,
    locale            TEXT,
    roles             TEXT NOT NULL,
    status            TEXT NOT NULL,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    deleted_at        BIGINT,
    last_login_at     BIGINT,
    erased_at         BIGINT
);
CREATE UNIQUE INDEX users_email_live ON users (email) WHERE deleted_at IS NULL;
CREATE INDEX users_status ON users (status, id);

-- One row per session (`sid`). An access token is active only while its
-- session row is neither revoked nor expired.
CREATE TABLE sessions (
    id                TEXT PRIMARY KEY,
    subject           TEXT NOT NULL,
    user_id           TEXT,
    client_id         TEXT,
    scope             TEXT NOT NULL,
    amr               TEXT NOT NULL,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    last_refreshed_at BIGINT,
    idle_expires_at   BIGINT NOT NULL,
    expires_at        BIGINT NOT NULL,
    revoked_at        BIGINT,
    revoke_reason     TEXT,
    ip_enc            TEXT,
    user_agent_enc    TEXT
);
CREATE INDEX sessions_subject ON sessions (subject, id);
CREATE INDEX sessions_user ON sessions (user_id, id);

-- Refresh tokens: the family is the session. A token is used by one
-- conditional update (`used_at IS NULL AND revoked_at IS NULL`); while the
-- reuse grace window lasts the successor's raw value is kept sealed.
CREATE TABLE refresh_tokens (
    id                 TEXT PRIMARY KEY,
    session_id         TEXT NOT NULL,
    token_hash         TEXT NOT NULL,
    parent_id          TEXT,
    created_at         BIGINT NOT NULL,
    expires_at         BIGINT NOT NULL,
    used_at            BIGINT,
    revoked_at         BIGINT,
    successor_id       TEXT,
    successor_sealed   TEXT,
    successor_until    BIGINT
);
CREATE UNIQUE INDEX refresh_tokens_hash ON refresh_tokens (token_hash);
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);

-- Failed-login counters per key (`account:<e-mail>`, `ip:<address>`),
-- reserved before a password is checked so parallel guesses are counted.
CREATE TABLE login_attempts (
    key          TEXT PRIMARY KEY,
    failures     BIGINT NOT NULL,
    window_start BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);

-- A password was right and a second factor is due: the challenge is used once.
CREATE TABLE login_challenges (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL,
    client_id  TEXT,
    scope      TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);

-- JWT signing keys, shared by every replica. A key is published at once,
-- signs from `signs_from`, and stays published until `publish_until`
-- after it is retired.
CREATE TABLE signing_keys (
    id             TEXT PRIMARY KEY,
    algorithm      TEXT NOT NULL,
    private_sealed TEXT NOT NULL,
    key_id         TEXT NOT NULL,
    public_jwk     TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    signs_from     BIGINT NOT NULL,
    retired_at     BIGINT,
    publish_until  BIGINT
);

-- Webhook endpoints and deliveries, scheduled job leases and runs, and
-- automatic token rotation.

CREATE TABLE webhook_endpoints (
    id                    TEXT PRIMARY KEY,
    url                   TEXT NOT NULL,
    description           TEXT,
    event_types           TEXT NOT NULL,
    secret_enc            TEXT NOT NULL,
    previous_secret_enc   TEXT,
    previous_secret_until BIGINT,
    is_default            BIGINT NOT NULL DEFAULT 0,
    disabled_at           BIGINT,
    disabled_reason       TEXT,
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL,
    deleted_at            BIGINT
);

-- One row per (event, endpoint). `locked_until` is a lease: the replica that
-- claims a delivery owns it until then, so with several replicas each
-- delivery is attempted by one of them, and a crashed replica's claims lapse.
CREATE TABLE webhook_deliveries (
    id               TEXT PRIMARY KEY,
    event_id         TEXT NOT NULL,
    endpoint_id      TEXT NOT NULL,
    event_type       TEXT NOT NULL,
    status           TEXT NOT NULL,
    attempts         BIGINT NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT,
    locked_until     BIGINT,
    last_status_code BIGINT,
    last_latency_ms  BIGINT,
    last_error       TEXT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE UNIQUE INDEX webhook_deliveries_event_endpoint ON webhook_deliveries (event_id, endpoint_id);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);

CREATE TABLE webhook_attempts (
    id          TEXT PRIMARY KEY,
    delivery_id TEXT NOT NULL,
    at          BIGINT NOT NULL,
    status_code BIGINT,
    latency_ms  BIGINT NOT NULL,
    error       TEXT
);
CREATE INDEX webhook_attempts_delivery ON webhook_attempts (delivery_id, at);
CREATE INDEX webhook_attempts_at ON webhook_attempts (at);

CREATE TABLE job_leases (
    job         TEXT PRIMARY KEY,
    holder      TEXT,
    lease_until BIGINT
);

CREATE TABLE job_runs (
    id          TEXT PRIMARY KEY,
    job         TEXT NOT NULL,
    holder      TEXT NOT NULL,
    started_at  BIGINT NOT NULL,
    finished_at BIGINT NOT NULL,
    outcome     TEXT NOT NULL,
    items       BIGINT NOT NULL,
    error       TEXT
);
CREATE INDEX job_runs_job ON job_runs (job, started_at);

ALTER TABLE api_tokens ADD COLUMN auto_rotate BIGINT NOT NULL DEFAULT 0;
ALTER TABLE api_tokens ADD COLUMN successor_id TEXT;
-- The successor's raw secret, sealed, until the old token claims it once.
ALTER TABLE api_tokens ADD COLUMN successor_secret_enc TEXT;

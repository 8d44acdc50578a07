-- The managed registry of OAuth2 clients (resource servers, gateways) that
-- ask Tessera about tokens. A secret is stored only as its HMAC-SHA-256
-- under the server key; while a rotation's grace lasts the previous digest
-- is kept beside the new one. Capabilities and audiences are JSON arrays
-- (audiences NULL: any audience). A deleted client keeps its row (the audit
-- log names it) but never authenticates again.
CREATE TABLE clients (
    id                         TEXT PRIMARY KEY,
    name                       TEXT NOT NULL,
    secret_hash                TEXT NOT NULL,
    previous_secret_hash       TEXT,
    previous_secret_expires_at BIGINT,
    capabilities               TEXT NOT NULL,
    audiences                  TEXT,
    created_at                 BIGINT NOT NULL,
    updated_at                 BIGINT NOT NULL,
    deleted_at                 BIGINT
);

-- Per-token usage controls. The static ones (IP allow and deny lists, the
-- device binding mode, named rate limits) are one JSON object, read and
-- cached with the token. The state that verifications change has its own
-- columns, so that one conditional UPDATE decides it on every replica: the
-- keyed hash of the bound device (never the device id), the credits left
-- (NULL: unlimited), and the refill folded into that same UPDATE (the
-- balance is set back to the amount every interval, counted from
-- credits_refilled_at).
ALTER TABLE api_tokens ADD COLUMN controls TEXT NOT NULL DEFAULT '{}';
ALTER TABLE api_tokens ADD COLUMN bound_device TEXT;
ALTER TABLE api_tokens ADD COLUMN credits_remaining BIGINT;
ALTER TABLE api_tokens ADD COLUMN credits_refill_amount BIGINT;
ALTER TABLE api_tokens ADD COLUMN credits_refill_interval_ms BIGINT;
ALTER TABLE api_tokens ADD COLUMN credits_refilled_at BIGINT;

-- OAuth2 clients of the registry may be held to IP lists too (JSON arrays
-- of CIDR networks; empty: any address).
ALTER TABLE clients ADD COLUMN ip_allow TEXT NOT NULL DEFAULT '[]';
ALTER TABLE clients ADD COLUMN ip_deny TEXT NOT NULL DEFAULT '[]';

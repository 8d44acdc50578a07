-- Repeated failures that anyone can cause (failed token verifications) are
-- audited as one row per client, failure code and minute instead of one row
-- per failure: `occurrences` counts them, and `dedup_key` (a keyed hash of
-- the client, the code and the minute; NULL for ordinary rows) lets every
-- replica add to the same row with one upsert. NULLs are distinct in a
-- unique index on both databases, so ordinary rows never conflict.
ALTER TABLE audit_log ADD COLUMN occurrences BIGINT NOT NULL DEFAULT 1;
ALTER TABLE audit_log ADD COLUMN dedup_key TEXT;
CREATE UNIQUE INDEX audit_log_dedup_key ON audit_log (dedup_key);

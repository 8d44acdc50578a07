-- Reading the audit log (issue #13): a channel for rows that also belong to
-- a log of their own (`audit` for security events such as refresh-token
-- reuse; NULL for ordinary rows), and indexes for the listing, which pages
-- newest first by (at, id) and filters mostly by who, what and channel.
-- (target_id already has `audit_log_target`; outcome and target_type take
-- few values, so an index on them would not narrow much.)
ALTER TABLE audit_log ADD COLUMN channel TEXT;
CREATE INDEX audit_log_at_id ON audit_log (at, id);
CREATE INDEX audit_log_actor_at ON audit_log (actor, at, id);
CREATE INDEX audit_log_action_at ON audit_log (action, at, id);
CREATE INDEX audit_log_channel_at ON audit_log (channel, at, id);

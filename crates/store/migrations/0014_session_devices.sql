-- Device-bound sessions: the keyed hash of the device id a session was
-- opened from (never the id). NULL: the session is not bound and refreshes
-- from any device. A refresh of a bound session must present the same id;
-- the check is part of the conditional update that records the refresh, so
-- a refresh from another device changes no row.
ALTER TABLE sessions ADD COLUMN device_hash TEXT;

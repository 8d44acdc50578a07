-- The event stream's positions (GET /v1/events/stream). An outbox id is
-- taken before its transaction commits, so ids do not follow commit order:
-- a reader that resumed after id B would skip an event A < B that committed
-- later. So each event also gets a position, `seq`, but only once it has
-- committed: a numbering pass (any replica, `EventFeed::sequence_events`)
-- locks the single `outbox_sequence` row, numbers the committed events that
-- have none, and commits. Passes are serialised by that lock, so positions
-- become visible in increasing order, and a reader never sees a gap that a
-- later commit fills. Events written before this migration are numbered by
-- the first pass.
ALTER TABLE outbox_events ADD COLUMN seq BIGINT;
CREATE UNIQUE INDEX outbox_events_seq ON outbox_events (seq);
CREATE TABLE outbox_sequence (
    id       BIGINT PRIMARY KEY,
    last_seq BIGINT NOT NULL
);
INSERT INTO outbox_sequence (id, last_seq) VALUES (1, 0);

-- Transactional outbox: every sale, release and refund writes one event
-- row in the transaction that makes the change; a publisher copies the
-- rows to NATS JetStream with the row id as the message id, then marks
-- them published. Only the publisher reads this table, outside any
-- serializable transaction, so buyers never conflict on it.
CREATE TABLE IF NOT EXISTS outbox (
    id            TEXT PRIMARY KEY,
    sale_id       TEXT NOT NULL,
    kind          TEXT NOT NULL CHECK (kind IN ('sold', 'released', 'refunded')),
    payload       TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    published_at  TIMESTAMPTZ
);

CREATE INDEX IF NOT EXISTS outbox_unpublished ON outbox (created_at) WHERE published_at IS NULL;

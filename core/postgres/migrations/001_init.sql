-- Taquilla schema. Every statement must be valid on CockroachDB as well as
-- PostgreSQL: no PL/pgSQL, no sequences as hot counters, no triggers.

CREATE TABLE IF NOT EXISTS sales (
    id          TEXT PRIMARY KEY,
    tour        TEXT NOT NULL,
    name        TEXT NOT NULL,
    venue       TEXT NOT NULL,
    city        TEXT NOT NULL,
    starts_at   TIMESTAMPTZ NOT NULL,
    capacity    INT NOT NULL
);

CREATE TABLE IF NOT EXISTS tiers (
    sale_id     TEXT NOT NULL REFERENCES sales (id),
    id          TEXT NOT NULL,
    name        TEXT NOT NULL,
    price_cents BIGINT NOT NULL CHECK (price_cents >= 0),
    PRIMARY KEY (sale_id, id)
);

CREATE TABLE IF NOT EXISTS sections (
    sale_id     TEXT NOT NULL REFERENCES sales (id),
    id          TEXT NOT NULL,
    name        TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('seated', 'standing')),
    tier_id     TEXT NOT NULL,
    capacity    INT NOT NULL CHECK (capacity > 0),
    rank        INT NOT NULL,
    PRIMARY KEY (sale_id, id)
);

-- One row per sellable place. A standing section has one row per place of
-- its quota, so the quota can never be exceeded and no counter row is hot.
CREATE TABLE IF NOT EXISTS seats (
    sale_id     TEXT NOT NULL,
    id          TEXT NOT NULL,
    section_id  TEXT NOT NULL,
    row_label   TEXT NOT NULL DEFAULT '',
    row_no      INT NOT NULL,
    number      INT NOT NULL,
    price_cents BIGINT NOT NULL,
    state       TEXT NOT NULL DEFAULT 'AVAILABLE'
                CHECK (state IN ('AVAILABLE', 'HELD', 'CHECKOUT', 'SOLD')),
    hold_id     TEXT,
    PRIMARY KEY (sale_id, id),
    CHECK ((state = 'AVAILABLE') = (hold_id IS NULL))
);

-- No index covers state or hold_id, so a seat's state changes are
-- heap-only (HOT) updates that write no index page. PostgreSQL's
-- serializable mode keeps predicate locks on index pages; an index write
-- would make every buyer of neighbouring seats a suspected conflict.
-- Seats are found by hold through holds.seat_ids instead.
CREATE INDEX IF NOT EXISTS seats_by_place ON seats (sale_id, section_id, row_no, number);

CREATE TABLE IF NOT EXISTS holds (
    id          TEXT PRIMARY KEY,
    sale_id     TEXT NOT NULL,
    session     TEXT NOT NULL,
    idem_key    TEXT NOT NULL,
    state       TEXT NOT NULL
                CHECK (state IN ('HELD', 'CHECKOUT', 'SOLD', 'RELEASED', 'EXPIRED')),
    total_cents BIGINT NOT NULL,
    seat_count  INT NOT NULL,
    seat_ids    TEXT[] NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    order_id    TEXT,
    UNIQUE (session, idem_key)
);

-- The deadline of every live hold (in a cart or in checkout), for the
-- sweeper. It lives apart from holds so that no index of holds covers a
-- column that changes: hold updates stay heap-only, and the serializable
-- transactions that read holds by primary key see no index writes from
-- other buyers. Only the sweeper scans this index, outside any
-- serializable transaction.
CREATE TABLE IF NOT EXISTS hold_deadlines (
    hold_id     TEXT PRIMARY KEY,
    expires_at  TIMESTAMPTZ NOT NULL
);

CREATE INDEX IF NOT EXISTS hold_deadlines_by_time ON hold_deadlines (expires_at);

-- Places each fan session holds or bought per sale, for the ticket limit:
-- one small row per fan, so concurrent requests of one fan serialise on it
-- and other fans never touch it.
CREATE TABLE IF NOT EXISTS fan_tickets (
    sale_id     TEXT NOT NULL,
    session     TEXT NOT NULL,
    tickets     INT NOT NULL DEFAULT 0 CHECK (tickets >= 0),
    PRIMARY KEY (sale_id, session)
);

CREATE TABLE IF NOT EXISTS payments (
    id           TEXT PRIMARY KEY,
    hold_id      TEXT NOT NULL UNIQUE,
    state        TEXT NOT NULL
                 CHECK (state IN ('pending', 'captured', 'declined', 'void', 'refund_pending', 'refunded')),
    amount_cents BIGINT NOT NULL,
    provider_ref TEXT NOT NULL DEFAULT '',
    created_at   TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL
);

-- payments has no index on state, so state changes are heap-only updates;
-- the sweeper finds payments by state with a scan outside any serializable
-- transaction.

CREATE TABLE IF NOT EXISTS orders (
    id          TEXT PRIMARY KEY,
    sale_id     TEXT NOT NULL,
    session     TEXT NOT NULL,
    hold_id     TEXT NOT NULL UNIQUE,
    payment_id  TEXT NOT NULL UNIQUE,
    state       TEXT NOT NULL CHECK (state IN ('PAID', 'REFUNDED')),
    total_cents BIGINT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL
);

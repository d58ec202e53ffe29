-- One row per order id the reservation endpoints have seen; `released_at_ms`
-- is set once the order is released. Both endpoints write this row first, so
-- a reservation and a release of the same order never interleave (one waits
-- for the other's transaction), and a reservation arriving after its order's
-- release (a checkout the order service gave up, its request late) takes no
-- stock.
CREATE TABLE reserved_orders (
    order_id TEXT PRIMARY KEY,
    released_at_ms BIGINT
);

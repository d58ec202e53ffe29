-- Reservations to give back: checkouts that failed after asking the product
-- service to reserve their stock, which it may have done with only its answer
-- lost. A row stays until the product service confirms the release, so that
-- neither a long NATS outage nor a restart of this service leaks stock.
CREATE TABLE pending_releases (
    order_id TEXT PRIMARY KEY,
    since_ms BIGINT NOT NULL
);

-- The catalogue, its ratings and the stock reserved for orders. Portable SQL:
-- the same file runs on SQLite and Postgres.

CREATE TABLE products (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    category TEXT NOT NULL,
    price_cents BIGINT NOT NULL CHECK (price_cents >= 0),
    -- The last line of defence for "stock never goes negative".
    stock BIGINT NOT NULL CHECK (stock >= 0),
    rating_count BIGINT NOT NULL DEFAULT 0,
    rating_sum BIGINT NOT NULL DEFAULT 0,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL
);

-- Listing filters by category and pages by (name, id).
CREATE INDEX products_category ON products (category, name, id);
CREATE INDEX products_name ON products (name, id);

CREATE TABLE ratings (
    product_id TEXT NOT NULL REFERENCES products (id),
    user_id TEXT NOT NULL,
    stars BIGINT NOT NULL CHECK (stars BETWEEN 1 AND 5),
    rated_at_ms BIGINT NOT NULL,
    PRIMARY KEY (product_id, user_id)
);

CREATE TABLE reservations (
    order_id TEXT NOT NULL,
    product_id TEXT NOT NULL REFERENCES products (id),
    quantity BIGINT NOT NULL CHECK (quantity > 0),
    unit_price_cents BIGINT NOT NULL,
    category TEXT NOT NULL,
    name TEXT NOT NULL,
    PRIMARY KEY (order_id, product_id)
);

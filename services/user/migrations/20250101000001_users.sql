-- Accounts. The e-mail is stored normalised (trimmed, lower case), so its
-- UNIQUE constraint also refuses addresses that differ only by case.
CREATE TABLE users (
    id TEXT PRIMARY KEY NOT NULL,
    email TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL
);

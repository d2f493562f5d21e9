-- The ledger's schema as the first HQ made it (before versioning: user_version 0).
-- Frozen: ledgers like this exist. A test upgrades one and compares it with a new ledger.
CREATE TABLE IF NOT EXISTS api_keys (
    key_digest TEXT PRIMARY KEY,
    key_id     TEXT NOT NULL,
    owner      TEXT NOT NULL,
    issued_at  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS fulfillments (
    id              INTEGER PRIMARY KEY,
    recorded_at     TEXT NOT NULL,
    key_id          TEXT NOT NULL,
    idempotency_key TEXT,
    iridium         INTEGER NOT NULL,
    magnesite       INTEGER NOT NULL,
    replays         INTEGER NOT NULL DEFAULT 0,
    UNIQUE (key_id, idempotency_key)
);
CREATE INDEX IF NOT EXISTS fulfillments_by_idempotency_key ON fulfillments (idempotency_key);
CREATE TABLE IF NOT EXISTS published (
    message_id   TEXT PRIMARY KEY,
    run_id       TEXT NOT NULL,
    topic        TEXT NOT NULL,
    message      TEXT NOT NULL,
    published_at TEXT NOT NULL,
    subscribers  INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS published_by_run ON published (run_id);
CREATE TABLE IF NOT EXISTS deliveries (
    message_id       TEXT NOT NULL,
    subscription_arn TEXT NOT NULL,
    outcome          TEXT NOT NULL,
    attempts         INTEGER NOT NULL,
    finished_at      TEXT NOT NULL,
    PRIMARY KEY (message_id, subscription_arn)
);

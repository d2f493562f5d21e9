-- The ledger's schema at version 5 (PRAGMA user_version = 5), as HQ made it.
-- Frozen: ledgers like this exist. A test upgrades one and compares it with a new ledger.
CREATE TABLE api_keys (
    key_digest TEXT PRIMARY KEY,
    key_id     TEXT NOT NULL,
    owner      TEXT NOT NULL,
    issued_at  TEXT NOT NULL
, revoked_at TEXT, scope_key_id TEXT);
CREATE TABLE fulfillments (
    id              INTEGER PRIMARY KEY,
    recorded_at     TEXT NOT NULL,
    key_id          TEXT NOT NULL,
    idempotency_key TEXT,
    iridium         INTEGER NOT NULL,
    magnesite       INTEGER NOT NULL,
    replays         INTEGER NOT NULL DEFAULT 0, produced_by TEXT,
    UNIQUE (key_id, idempotency_key)
);
CREATE INDEX fulfillments_by_idempotency_key ON fulfillments (idempotency_key);
CREATE TABLE published (
    message_id   TEXT PRIMARY KEY,
    -- The key the services fulfil this order under (derived from the
    -- topic, the MessageId and the kind); reconciliation pairs on it.
    idempotency_key TEXT,
    run_id       TEXT NOT NULL,
    topic        TEXT NOT NULL,
    message      TEXT NOT NULL,
    published_at TEXT NOT NULL,
    subscribers  INTEGER NOT NULL
, publisher TEXT, fulfilled INTEGER, answered INTEGER, finished INTEGER, rejected INTEGER, failed INTEGER);
CREATE TABLE deliveries (
    message_id       TEXT NOT NULL,
    subscription_arn TEXT NOT NULL,
    outcome          TEXT NOT NULL,
    attempts         INTEGER NOT NULL,
    finished_at      TEXT NOT NULL,
    PRIMARY KEY (message_id, subscription_arn)
);
CREATE INDEX fulfillments_by_time
    ON fulfillments (recorded_at, produced_by, iridium, magnesite);
CREATE INDEX published_by_run_and_time ON published (run_id, published_at);
CREATE TABLE key_totals (
    key_id       TEXT PRIMARY KEY,
    fulfillments INTEGER NOT NULL,
    iridium      INTEGER NOT NULL,
    magnesite    INTEGER NOT NULL,
    replays      INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TRIGGER key_totals_add AFTER INSERT ON fulfillments BEGIN
    INSERT INTO key_totals (key_id, fulfillments, iridium, magnesite, replays)
        VALUES (NEW.key_id, 1, NEW.iridium, NEW.magnesite, NEW.replays)
        ON CONFLICT (key_id) DO UPDATE SET
            fulfillments = fulfillments + 1,
            iridium = iridium + excluded.iridium,
            magnesite = magnesite + excluded.magnesite,
            replays = replays + excluded.replays;
END;
CREATE TRIGGER key_totals_change AFTER UPDATE OF key_id, iridium, magnesite, replays ON fulfillments BEGIN
    UPDATE key_totals SET
        fulfillments = fulfillments - 1,
        iridium = iridium - OLD.iridium,
        magnesite = magnesite - OLD.magnesite,
        replays = replays - OLD.replays
    WHERE key_id = OLD.key_id;
    INSERT INTO key_totals (key_id, fulfillments, iridium, magnesite, replays)
        VALUES (NEW.key_id, 1, NEW.iridium, NEW.magnesite, NEW.replays)
        ON CONFLICT (key_id) DO UPDATE SET
            fulfillments = fulfillments + 1,
            iridium = iridium + excluded.iridium,
            magnesite = magnesite + excluded.magnesite,
            replays = replays + excluded.replays;
END;
CREATE TRIGGER key_totals_remove AFTER DELETE ON fulfillments BEGIN
    UPDATE key_totals SET
        fulfillments = fulfillments - 1,
        iridium = iridium - OLD.iridium,
        magnesite = magnesite - OLD.magnesite,
        replays = replays - OLD.replays
    WHERE key_id = OLD.key_id;
END;
CREATE INDEX published_by_idempotency_key ON published (idempotency_key);
CREATE TRIGGER published_counts_start AFTER INSERT ON published BEGIN
    UPDATE published SET
        fulfilled = (SELECT COUNT(*) FROM fulfillments f WHERE f.idempotency_key = NEW.idempotency_key),
        answered = (SELECT COUNT(*) + COALESCE(SUM(f.replays), 0) FROM fulfillments f
                    WHERE f.idempotency_key = NEW.idempotency_key),
        finished = (SELECT COUNT(*) FROM deliveries d WHERE d.message_id = NEW.message_id),
        rejected = (SELECT COUNT(*) FROM deliveries d WHERE d.message_id = NEW.message_id AND d.outcome = 'rejected'),
        failed = (SELECT COUNT(*) FROM deliveries d WHERE d.message_id = NEW.message_id AND d.outcome = 'failed')
    WHERE message_id = NEW.message_id;
END;
CREATE TRIGGER published_counts_fulfilled AFTER INSERT ON fulfillments BEGIN
    UPDATE published SET fulfilled = fulfilled + 1, answered = answered + 1 + NEW.replays
        WHERE idempotency_key = NEW.idempotency_key;
END;
CREATE TRIGGER published_counts_refulfilled AFTER UPDATE OF idempotency_key, replays ON fulfillments BEGIN
    UPDATE published SET fulfilled = fulfilled - 1, answered = answered - 1 - OLD.replays
        WHERE idempotency_key = OLD.idempotency_key;
    UPDATE published SET fulfilled = fulfilled + 1, answered = answered + 1 + NEW.replays
        WHERE idempotency_key = NEW.idempotency_key;
END;
CREATE TRIGGER published_counts_unfulfilled AFTER DELETE ON fulfillments BEGIN
    UPDATE published SET fulfilled = fulfilled - 1, answered = answered - 1 - OLD.replays
        WHERE idempotency_key = OLD.idempotency_key;
END;
CREATE TRIGGER published_counts_delivered AFTER INSERT ON deliveries BEGIN
    UPDATE published SET finished = finished + 1,
        rejected = rejected + (NEW.outcome = 'rejected'), failed = failed + (NEW.outcome = 'failed')
        WHERE message_id = NEW.message_id;
END;
CREATE TRIGGER published_counts_redelivered AFTER UPDATE OF message_id, outcome ON deliveries BEGIN
    UPDATE published SET finished = finished - 1,
        rejected = rejected - (OLD.outcome = 'rejected'), failed = failed - (OLD.outcome = 'failed')
        WHERE message_id = OLD.message_id;
    UPDATE published SET finished = finished + 1,
        rejected = rejected + (NEW.outcome = 'rejected'), failed = failed + (NEW.outcome = 'failed')
        WHERE message_id = NEW.message_id;
END;
CREATE TRIGGER published_counts_undelivered AFTER DELETE ON deliveries BEGIN
    UPDATE published SET finished = finished - 1,
        rejected = rejected - (OLD.outcome = 'rejected'), failed = failed - (OLD.outcome = 'failed')
        WHERE message_id = OLD.message_id;
END;
PRAGMA user_version = 5;

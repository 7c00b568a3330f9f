-- Accesses to women's data at this node, recorded durably before the data
-- are served, until the hub has carried them into the transparency log.
CREATE TABLE access_outbox (
    seq   INTEGER PRIMARY KEY AUTOINCREMENT,
    event TEXT NOT NULL -- JSON AccessEvent
);

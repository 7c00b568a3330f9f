-- The node's copy of the national consent register: each woman's newest
-- choices, and her opt-outs one per row so queries can exclude them in SQL.
CREATE TABLE consent_replica (
    person_id    TEXT PRIMARY KEY,
    choices      TEXT NOT NULL, -- JSON ConsentChoices
    trial_opt_in BOOLEAN NOT NULL,
    version      BIGINT NOT NULL,
    changed_at   TIMESTAMPTZ NOT NULL,
    changed_by   TEXT NOT NULL
);
CREATE TABLE consent_replica_optout (
    person_id TEXT NOT NULL,
    purpose   TEXT NOT NULL,
    PRIMARY KEY (person_id, purpose)
);
-- Which register version the replica holds, and when the hub last confirmed it.
CREATE TABLE consent_replica_state (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    version   BIGINT NOT NULL,
    synced_at TIMESTAMPTZ
);
INSERT INTO consent_replica_state (id, version, synced_at) VALUES (1, 0, NULL);

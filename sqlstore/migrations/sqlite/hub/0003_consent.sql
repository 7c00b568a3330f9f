-- The national consent register: every change to a woman's choices is a new
-- row, numbered by the register's version, so replicas can follow it.
CREATE TABLE consents (
    version    INTEGER PRIMARY KEY,
    person_id  TEXT NOT NULL,
    choices    TEXT NOT NULL, -- JSON ConsentChoices, normalised
    changed_at TEXT NOT NULL,
    changed_by TEXT NOT NULL
);
CREATE INDEX consents_person ON consents (person_id, version);

-- The register's version counter (single row); taking it serialises writers.
CREATE TABLE consent_version (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
);
INSERT INTO consent_version (id, version) VALUES (1, 0);

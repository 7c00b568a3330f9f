-- Feasibility counts (bildrum.FeasibilityStore, sqlstore/feasibility.go,
-- docs/feasibility.md).

-- Every answer the node released, one per question (query hash) at one
-- register data version and consent register version. A repeated question
-- gets the stored answer: it reveals nothing new and costs no budget.
-- Answers of older versions stay: they are the node's record of what it
-- released.
CREATE TABLE feasibility_answers (
    query_hash      TEXT    NOT NULL, -- hex SHA-256 of the canonical criteria
    data_version    INTEGER NOT NULL, -- register_version.version counted
    consent_version INTEGER NOT NULL, -- consent_replica_state.version applied
    provenance      TEXT    NOT NULL, -- bildrum.Provenance as JSON
    signed          TEXT    NOT NULL, -- the provenance as a signed note
    created_at      TEXT    NOT NULL, -- RFC 3339, UTC
    PRIMARY KEY (query_hash, data_version, consent_version)
);

-- Each requester's privacy budget spent at this node, in millionths of ε so
-- that sums are exact. A requester is a researcher's principal name and
-- organisation.
CREATE TABLE feasibility_budgets (
    name         TEXT    NOT NULL,
    organisation TEXT    NOT NULL,
    spent_micro  INTEGER NOT NULL,
    PRIMARY KEY (name, organisation)
);

-- Every charge, for audit: who asked which question at which versions.
CREATE TABLE feasibility_charges (
    id              INTEGER PRIMARY KEY,
    name            TEXT    NOT NULL,
    organisation    TEXT    NOT NULL,
    query_hash      TEXT    NOT NULL,
    data_version    INTEGER NOT NULL,
    consent_version INTEGER NOT NULL,
    epsilon_micro   INTEGER NOT NULL,
    charged_at      TEXT    NOT NULL
);
CREATE INDEX feasibility_charges_requester ON feasibility_charges (name, organisation);

-- The examinations a feasibility count reads, in woman order, with every
-- column a criterion can test: a count is one pass over this index alone
-- (attended too, though implied, or SQLite does not see it as covering),
-- grouping each woman's examinations without sorting. The fourth column is
-- the examination's age key, (YYYYMMDD of the exam) − (YYYYMMDD of birth),
-- whose ⌊/10000⌋ is her age in whole years (bildrum.AgeAt), with the birth
-- date read from the personnummer as bildrum.PersonID.BirthDate reads it (a
-- samordningsnummer's day less 60, month 00 as 01). Keeping it in the
-- index spares computing it per row; the query must spell the expression
-- exactly so (sqliteAgeKey in sqlstore/feasibility.go) for the planner to
-- read it from here.
CREATE INDEX episodes_feasibility ON episodes (
    person_id, exam_date,
    (CAST(REPLACE(exam_date, '-', '') AS INTEGER) - CAST(SUBSTR(person_id, 1, 8) AS INTEGER) + CASE WHEN SUBSTR(person_id, 7, 1) >= '6' THEN 60 ELSE 0 END - CASE WHEN SUBSTR(person_id, 5, 2) = '00' THEN 100 ELSE 0 END),
    round, consensus_birads, density, outcome, detection, tumour_size_mm, nodal_status, views, attended
) WHERE attended;

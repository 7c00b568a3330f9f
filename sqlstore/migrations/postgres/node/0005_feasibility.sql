-- Feasibility counts (bildrum.FeasibilityStore, sqlstore/feasibility.go,
-- docs/feasibility.md).

-- Every answer the node released, one per question (query hash) at one
-- register data version and consent register version. A repeated question
-- gets the stored answer: it reveals nothing new and costs no budget.
-- Answers of older versions stay: they are the node's record of what it
-- released.
CREATE TABLE feasibility_answers (
    query_hash      TEXT        NOT NULL, -- hex SHA-256 of the canonical criteria
    data_version    BIGINT      NOT NULL, -- register_version.version counted
    consent_version BIGINT      NOT NULL, -- consent_replica_state.version applied
    provenance      TEXT        NOT NULL, -- bildrum.Provenance as JSON
    signed          TEXT        NOT NULL, -- the provenance as a signed note
    created_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (query_hash, data_version, consent_version)
);

-- Each requester's privacy budget spent at this node, in millionths of ε so
-- that sums are exact. A requester is a researcher's principal name and
-- organisation.
CREATE TABLE feasibility_budgets (
    name         TEXT   NOT NULL,
    organisation TEXT   NOT NULL,
    spent_micro  BIGINT NOT NULL,
    PRIMARY KEY (name, organisation)
);

-- Every charge, for audit: who asked which question at which versions.
CREATE TABLE feasibility_charges (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name            TEXT        NOT NULL,
    organisation    TEXT        NOT NULL,
    query_hash      TEXT        NOT NULL,
    data_version    BIGINT      NOT NULL,
    consent_version BIGINT      NOT NULL,
    epsilon_micro   BIGINT      NOT NULL,
    charged_at      TIMESTAMPTZ NOT NULL
);
CREATE INDEX feasibility_charges_requester ON feasibility_charges (name, organisation);

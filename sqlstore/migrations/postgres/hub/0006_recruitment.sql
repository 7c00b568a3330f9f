-- Trial recruitment (bildrum.RecruitmentStore, sqlstore/recruitment.go,
-- docs/recruitment.md).

-- Researchers' recruitment requests and the permit authority's decision.
CREATE TABLE recruitment_requests (
    id                      TEXT        PRIMARY KEY,
    title                   TEXT        NOT NULL,
    sponsor                 TEXT        NOT NULL,
    ethics_approval         TEXT        NOT NULL,
    criteria                TEXT        NOT NULL, -- JSON Criteria, checked
    invitation_text         TEXT        NOT NULL,
    max_invitations         INTEGER     NOT NULL,
    ends                    DATE        NOT NULL, -- the last day women can answer
    researcher_name         TEXT        NOT NULL,
    researcher_organisation TEXT        NOT NULL,
    submitted_at            TIMESTAMPTZ NOT NULL,
    status                  TEXT        NOT NULL, -- pending, approved, rejected
    -- The decision, NULL until the permit authority decides.
    decision_approve        BOOLEAN,
    decision_reason         TEXT,
    decided_by              TEXT,
    decided_organisation    TEXT,
    decided_at              TIMESTAMPTZ
);
CREATE INDEX recruitment_requests_submitted ON recruitment_requests (submitted_at);
CREATE INDEX recruitment_requests_researcher ON recruitment_requests (researcher_name, researcher_organisation, submitted_at);

-- How matching went at each region's node, one row per request and region.
CREATE TABLE recruitment_regions (
    request         TEXT        NOT NULL REFERENCES recruitment_requests (id),
    region          TEXT        NOT NULL,
    status          TEXT        NOT NULL, -- ok, down, timeout, refused
    reason          TEXT        NOT NULL,
    consent_version BIGINT      NOT NULL, -- the consent register version the node matched at
    at              TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (request, region)
);

-- One woman's invitation to one request's trial: at most one per request
-- and woman. The contact details are those she gave when she accepted;
-- released is when the researcher first received them.
CREATE TABLE recruitment_invitations (
    id            TEXT        PRIMARY KEY,
    request       TEXT        NOT NULL REFERENCES recruitment_requests (id),
    person_id     TEXT        NOT NULL,
    region        TEXT        NOT NULL, -- the region whose register matched her
    status        TEXT        NOT NULL, -- pending, accepted, declined, withdrawn
    created       TIMESTAMPTZ NOT NULL,
    answered      TIMESTAMPTZ,
    contact_email TEXT        NOT NULL DEFAULT '',
    contact_phone TEXT        NOT NULL DEFAULT '',
    released      TIMESTAMPTZ,
    UNIQUE (request, person_id)
);
CREATE INDEX recruitment_invitations_person ON recruitment_invitations (person_id, created);
CREATE INDEX recruitment_invitations_status ON recruitment_invitations (request, status, answered);

-- Messages to women that their inbox has a new invitation, until sent.
CREATE TABLE recruitment_notifications (
    seq        BIGSERIAL   PRIMARY KEY,
    invitation TEXT        NOT NULL REFERENCES recruitment_invitations (id),
    person_id  TEXT        NOT NULL,
    created    TIMESTAMPTZ NOT NULL,
    sent_at    TIMESTAMPTZ
);
CREATE INDEX recruitment_notifications_unsent ON recruitment_notifications (seq) WHERE sent_at IS NULL;

-- Accesses to women's data at the hub (invitations, answers, contact
-- releases), recorded in the transaction of the change they describe, until
-- the hub has carried them into the transparency log; the same table as a
-- node's (node/0006_access_outbox.sql).
CREATE TABLE access_outbox (
    seq   BIGSERIAL PRIMARY KEY,
    event TEXT NOT NULL -- JSON AccessEvent
);

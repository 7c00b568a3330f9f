-- Trial recruitment (bildrum.RecruitmentStore, sqlstore/recruitment.go,
-- docs/recruitment.md). Times are UTC text of fixed width,
-- 2006-01-02T15:04:05.000000Z, so that they sort as they compare.

-- Researchers' recruitment requests and the permit authority's decision.
CREATE TABLE recruitment_requests (
    id                      TEXT PRIMARY KEY,
    title                   TEXT    NOT NULL,
    sponsor                 TEXT    NOT NULL,
    ethics_approval         TEXT    NOT NULL,
    criteria                TEXT    NOT NULL, -- JSON Criteria, checked
    invitation_text         TEXT    NOT NULL,
    max_invitations         INTEGER NOT NULL,
    ends                    TEXT    NOT NULL, -- YYYY-MM-DD, the last day women can answer
    researcher_name         TEXT    NOT NULL,
    researcher_organisation TEXT    NOT NULL,
    submitted_at            TEXT    NOT NULL,
    status                  TEXT    NOT NULL, -- pending, approved, rejected
    -- The decision, NULL until the permit authority decides.
    decision_approve        INTEGER,
    decision_reason         TEXT,
    decided_by              TEXT,
    decided_organisation    TEXT,
    decided_at              TEXT
);
CREATE INDEX recruitment_requests_submitted ON recruitment_requests (submitted_at);
CREATE INDEX recruitment_requests_researcher ON recruitment_requests (researcher_name, researcher_organisation, submitted_at);

-- How matching went at each region's node, one row per request and region.
CREATE TABLE recruitment_regions (
    request         TEXT    NOT NULL REFERENCES recruitment_requests (id),
    region          TEXT    NOT NULL,
    status          TEXT    NOT NULL, -- ok, down, timeout, refused
    reason          TEXT    NOT NULL,
    consent_version INTEGER NOT NULL, -- the consent register version the node matched at
    at              TEXT    NOT NULL,
    PRIMARY KEY (request, region)
);

-- One woman's invitation to one request's trial: at most one per request
-- and woman. The contact details are those she gave when she accepted;
-- released is when the researcher first received them.
CREATE TABLE recruitment_invitations (
    id            TEXT PRIMARY KEY,
    request       TEXT NOT NULL REFERENCES recruitment_requests (id),
    person_id     TEXT NOT NULL,
    region        TEXT NOT NULL, -- the region whose register matched her
    status        TEXT NOT NULL, -- pending, accepted, declined, withdrawn
    created       TEXT NOT NULL,
    answered      TEXT,
    contact_email TEXT NOT NULL DEFAULT '',
    contact_phone TEXT NOT NULL DEFAULT '',
    released      TEXT,
    UNIQUE (request, person_id)
);
CREATE INDEX recruitment_invitations_person ON recruitment_invitations (person_id, created);
CREATE INDEX recruitment_invitations_status ON recruitment_invitations (request, status, answered);

-- Messages to women that their inbox has a new invitation, until sent.
CREATE TABLE recruitment_notifications (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    invitation TEXT NOT NULL REFERENCES recruitment_invitations (id),
    person_id  TEXT NOT NULL,
    created    TEXT NOT NULL,
    sent_at    TEXT
);
CREATE INDEX recruitment_notifications_unsent ON recruitment_notifications (seq) WHERE sent_at IS NULL;

-- Accesses to women's data at the hub (invitations, answers, contact
-- releases), recorded in the transaction of the change they describe, until
-- the hub has carried them into the transparency log; the same table as a
-- node's (node/0006_access_outbox.sql).
CREATE TABLE access_outbox (
    seq   INTEGER PRIMARY KEY AUTOINCREMENT,
    event TEXT NOT NULL -- JSON AccessEvent
);

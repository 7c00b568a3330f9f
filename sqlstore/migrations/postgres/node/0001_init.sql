-- A regional node's database: its screening register and the credentials it accepts.
CREATE TABLE bildrum_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
INSERT INTO bildrum_meta (key, value) VALUES ('part', 'node');

-- Bearer credentials, by SHA-256 of the token: the database holds no usable secret.
CREATE TABLE credentials (
    token_hash   BYTEA PRIMARY KEY,
    name         TEXT NOT NULL,
    role         TEXT NOT NULL,
    organisation TEXT NOT NULL,
    region       TEXT NOT NULL DEFAULT '',
    person_id    TEXT NOT NULL DEFAULT ''
);

-- The women of the region's register; birth date derived from the identity number.
CREATE TABLE persons (
    person_id  TEXT PRIMARY KEY,
    birth_date DATE NOT NULL
);

-- One row per invitation and everything that followed it (docs/register.md).
CREATE TABLE episodes (
    id                 TEXT PRIMARY KEY,
    person_id          TEXT NOT NULL REFERENCES persons (person_id),
    region             TEXT NOT NULL,
    unit               TEXT NOT NULL,
    round              INTEGER NOT NULL,
    invitation_date    DATE NOT NULL,
    attended           BOOLEAN NOT NULL,
    exam_date          DATE,
    technical_repeat   BOOLEAN NOT NULL,
    views              TEXT NOT NULL,
    reader1_birads     TEXT NOT NULL,
    reader2_birads     TEXT NOT NULL,
    consensus_birads   TEXT NOT NULL,
    density            TEXT NOT NULL,
    recalled           BOOLEAN NOT NULL,
    result_date        DATE,
    assessment_date    DATE,
    additional_imaging BOOLEAN NOT NULL,
    ultrasound         BOOLEAN NOT NULL,
    needle_biopsy      BOOLEAN NOT NULL,
    open_biopsy        BOOLEAN NOT NULL,
    assessment_birads  TEXT NOT NULL,
    outcome            TEXT NOT NULL,
    detection          TEXT NOT NULL,
    diagnosis_date     DATE,
    tumour_size_mm     INTEGER NOT NULL,
    nodal_status       TEXT NOT NULL,
    stage              TEXT NOT NULL,
    preop_diagnosis    BOOLEAN NOT NULL,
    interval_months    INTEGER NOT NULL,
    -- SHA-256 of the row's content: an identical re-import changes nothing.
    digest             TEXT NOT NULL,
    -- data version in which the row was last written.
    version            BIGINT NOT NULL,
    -- the date the row is filed under: exam date, or invitation date if not attended.
    episode_date       DATE NOT NULL
);
CREATE INDEX episodes_person ON episodes (person_id);
CREATE INDEX episodes_date ON episodes (episode_date, id);

-- The register's data version and when it last changed (single row).
CREATE TABLE register_version (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    version    BIGINT NOT NULL,
    updated_at TEXT NOT NULL
);
INSERT INTO register_version (id, version, updated_at) VALUES (1, 0, '');

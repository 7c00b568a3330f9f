-- A regional node's database: its screening register and the credentials it accepts.
CREATE TABLE bildrum_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
INSERT INTO bildrum_meta (key, value) VALUES ('part', 'node');

-- Bearer credentials, by SHA-256 of the token: the database holds no usable secret.
CREATE TABLE credentials (
    token_hash   BLOB PRIMARY KEY,
    name         TEXT NOT NULL,
    role         TEXT NOT NULL,
    organisation TEXT NOT NULL,
    region       TEXT NOT NULL DEFAULT '',
    person_id    TEXT NOT NULL DEFAULT ''
);

-- The women of the region's register; birth date derived from the identity number.
CREATE TABLE persons (
    person_id  TEXT PRIMARY KEY,
    birth_date TEXT NOT NULL
);

-- One row per invitation and everything that followed it (docs/register.md).
CREATE TABLE episodes (
    id                 TEXT PRIMARY KEY,
    person_id          TEXT NOT NULL REFERENCES persons (person_id),
    region             TEXT NOT NULL,
    unit               TEXT NOT NULL,
    round              INTEGER NOT NULL,
    invitation_date    TEXT NOT NULL,
    attended           INTEGER NOT NULL,
    exam_date          TEXT,
    technical_repeat   INTEGER NOT NULL,
    views              TEXT NOT NULL,
    reader1_birads     TEXT NOT NULL,
    reader2_birads     TEXT NOT NULL,
    consensus_birads   TEXT NOT NULL,
    density            TEXT NOT NULL,
    recalled           INTEGER NOT NULL,
    result_date        TEXT,
    assessment_date    TEXT,
    additional_imaging INTEGER NOT NULL,
    ultrasound         INTEGER NOT NULL,
    needle_biopsy      INTEGER NOT NULL,
    open_biopsy        INTEGER NOT NULL,
    assessment_birads  TEXT NOT NULL,
    outcome            TEXT NOT NULL,
    detection          TEXT NOT NULL,
    diagnosis_date     TEXT,
    tumour_size_mm     INTEGER NOT NULL,
    nodal_status       TEXT NOT NULL,
    stage              TEXT NOT NULL,
    preop_diagnosis    INTEGER NOT NULL,
    interval_months    INTEGER NOT NULL,
    -- SHA-256 of the row's content: an identical re-import changes nothing.
    digest             TEXT NOT NULL,
    -- data version in which the row was last written.
    version            INTEGER NOT NULL,
    -- the date the row is filed under: exam date, or invitation date if not attended.
    episode_date       TEXT NOT NULL
);
CREATE INDEX episodes_person ON episodes (person_id);
CREATE INDEX episodes_date ON episodes (episode_date, id);

-- The register's data version and when it last changed (single row).
CREATE TABLE register_version (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    version    INTEGER NOT NULL,
    updated_at TEXT NOT NULL
);
INSERT INTO register_version (id, version, updated_at) VALUES (1, 0, '');

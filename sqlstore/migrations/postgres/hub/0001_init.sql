-- The national hub's database: its directory of nodes and the credentials it accepts.
CREATE TABLE bildrum_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
INSERT INTO bildrum_meta (key, value) VALUES ('part', 'hub');

-- Bearer credentials, by SHA-256 of the token: the database holds no usable secret.
CREATE TABLE credentials (
    token_hash   BYTEA PRIMARY KEY,
    name         TEXT NOT NULL,
    role         TEXT NOT NULL,
    organisation TEXT NOT NULL,
    region       TEXT NOT NULL DEFAULT '',
    person_id    TEXT NOT NULL DEFAULT ''
);

-- The regional nodes of the federation and the last status each reported.
CREATE TABLE nodes (
    region       TEXT PRIMARY KEY,
    federation   TEXT NOT NULL,
    web          TEXT NOT NULL,
    version      TEXT NOT NULL DEFAULT '',
    women        INTEGER NOT NULL DEFAULT 0,
    exams        INTEGER NOT NULL DEFAULT 0,
    data_version BIGINT NOT NULL DEFAULT 0,
    checked_at   TIMESTAMPTZ,
    latency_ms   BIGINT NOT NULL DEFAULT 0
);

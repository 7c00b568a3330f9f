-- The node's DICOM image index (bildrum.ImageIndex): what QIDO-RS searches and
-- WADO-RS uses to find the bytes of an instance, which live in the blob store.
-- Text attributes are stored as sent (trimmed, charset decoded to UTF-8), with
-- '' for absent ones; dates YYYYMMDD and times HHMMSS compare as text.

-- One row per study, with its patient's attributes and counts kept up to date
-- by every insert of an instance.
CREATE TABLE archive_studies (
    id                  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, -- insertion order: the order of results
    study_uid           TEXT NOT NULL UNIQUE,
    patient_id          TEXT NOT NULL,
    patient_name        TEXT NOT NULL,
    patient_name_key    TEXT NOT NULL,         -- upper-cased name for case-insensitive PN matching
    patient_birth_date  TEXT NOT NULL,
    patient_sex         TEXT NOT NULL,
    study_date          TEXT NOT NULL,
    study_time          TEXT NOT NULL,
    accession_number    TEXT NOT NULL,
    study_id            TEXT NOT NULL,
    study_description   TEXT NOT NULL,
    referring_physician TEXT NOT NULL,
    referring_key       TEXT NOT NULL,         -- upper-cased, as patient_name_key
    modalities          TEXT NOT NULL,         -- sorted, backslash-separated Modality of its series
    num_series          INTEGER NOT NULL,
    num_instances       INTEGER NOT NULL
);
CREATE INDEX archive_studies_patient_id ON archive_studies (patient_id);
CREATE INDEX archive_studies_patient_name ON archive_studies (patient_name_key);
CREATE INDEX archive_studies_date ON archive_studies (study_date);
CREATE INDEX archive_studies_accession ON archive_studies (accession_number);

-- One row per series.
CREATE TABLE archive_series (
    id                 BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    study              BIGINT NOT NULL REFERENCES archive_studies (id),
    series_uid         TEXT NOT NULL UNIQUE,
    modality           TEXT NOT NULL,
    series_number      TEXT NOT NULL,
    series_description TEXT NOT NULL,
    body_part          TEXT NOT NULL,
    num_instances      INTEGER NOT NULL
);
CREATE INDEX archive_series_study ON archive_series (study);
CREATE INDEX archive_series_modality ON archive_series (modality, study);

-- One row per instance and the object holding its bytes as received.
CREATE TABLE archive_instances (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    series           BIGINT NOT NULL REFERENCES archive_series (id),
    study            BIGINT NOT NULL REFERENCES archive_studies (id),
    sop_uid          TEXT NOT NULL UNIQUE,
    sop_class_uid    TEXT NOT NULL,
    instance_number  TEXT NOT NULL,
    n_rows           INTEGER NOT NULL,
    n_columns        INTEGER NOT NULL,
    bits_allocated   INTEGER NOT NULL,
    number_of_frames INTEGER NOT NULL,
    image_laterality TEXT NOT NULL,
    view_position    TEXT NOT NULL,
    transfer_syntax  TEXT NOT NULL,
    blob_key         TEXT NOT NULL,            -- content-addressed: sha256/xx/<hex>
    size             BIGINT NOT NULL,
    sha256           TEXT NOT NULL,
    received_at      TEXT NOT NULL             -- RFC 3339, UTC
);
CREATE INDEX archive_instances_series ON archive_instances (series);
CREATE INDEX archive_instances_study ON archive_instances (study);
CREATE INDEX archive_instances_blob ON archive_instances (blob_key);

-- Wildcard matching is LIKE 'prefix%': pattern indexes serve it whatever the
-- database's collation.
CREATE INDEX archive_studies_patient_id_pattern ON archive_studies (patient_id text_pattern_ops);
CREATE INDEX archive_studies_patient_name_pattern ON archive_studies (patient_name_key text_pattern_ops);
CREATE INDEX archive_studies_accession_pattern ON archive_studies (accession_number text_pattern_ops);

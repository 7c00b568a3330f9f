-- The screening counts behind the quality indicators (bildrum.CountStore,
-- sqlstore/counts.go, docs/quality.md).

-- Every column the counts read, in person order: the counts are computed in
-- one pass over this index, without touching the wide episodes rows and
-- without sorting, one woman's episodes after another's (each in invitation
-- order), so that her initial screen can be told from her later ones.
CREATE INDEX episodes_quality ON episodes (
    person_id, invitation_date, round, attended, exam_date, technical_repeat, recalled,
    result_date, assessment_date, needle_biopsy, open_biopsy, outcome, detection,
    tumour_size_mm, nodal_status, preop_diagnosis, interval_months
);

-- The counts of one register data version, one row per calendar quarter and
-- age band (years are sums of quarters). Computing them reads the whole
-- register, so they are kept for the version they describe and recomputed
-- only when the version moves (or the program's layout of them changes);
-- rows of older versions and other layouts are deleted when new ones are
-- stored.
CREATE TABLE quality_counts (
    version  INTEGER NOT NULL, -- register_version.version the counts describe
    format   INTEGER NOT NULL, -- layout of counts; a new layout recomputes them
    period   TEXT    NOT NULL, -- calendar quarter, '2021-Q3'
    age_band TEXT    NOT NULL, -- '40-49' … '70-74', 'other'
    counts   TEXT    NOT NULL, -- bildrum.ScreeningCounts as JSON
    PRIMARY KEY (version, format, period, age_band)
);

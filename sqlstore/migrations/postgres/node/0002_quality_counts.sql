-- The screening counts behind the quality indicators (bildrum.CountStore,
-- sqlstore/counts.go, docs/quality.md). PostgreSQL reads the episodes for
-- them with a sequential scan and a sort by person, so it needs no index.

-- The counts of one register data version, one row per calendar quarter and
-- age band (years are sums of quarters). Computing them reads the whole
-- register, so they are kept for the version they describe and recomputed
-- only when the version moves (or the program's layout of them changes);
-- rows of older versions and other layouts are deleted when new ones are
-- stored.
CREATE TABLE quality_counts (
    version  BIGINT  NOT NULL, -- register_version.version the counts describe
    format   INTEGER NOT NULL, -- layout of counts; a new layout recomputes them
    period   TEXT    NOT NULL, -- calendar quarter, '2021-Q3'
    age_band TEXT    NOT NULL, -- '40-49' … '70-74', 'other'
    counts   TEXT    NOT NULL, -- bildrum.ScreeningCounts as JSON
    PRIMARY KEY (version, format, period, age_band)
);

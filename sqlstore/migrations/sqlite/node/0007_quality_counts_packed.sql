-- Quality counts, second form (replaces the wide index of 0002): the counts
-- now read packed expressions, evaluated once at write time.
DROP INDEX IF EXISTS episodes_quality;

-- What the counts read of every episode and woman, computed once at write
-- time: the counts are then one pass over these two indexes, woman after
-- woman (persons_quality) and each woman's episodes (episodes_quality), with
-- no sort, no expression evaluated and no wide episode row read. The
-- expressions must stay exactly those of sqliteFactsQuery in
-- sqlstore/counts.go (TestFactsQueryPlan checks that SQLite reads them from
-- here): the episode's flags packed into one integer (constants flag* and
-- shift* there), its invitation date as YYYYMMDD, and its examination and
-- result dates as YYYYMMDD, the first times 2^25 (0 when not recorded).
CREATE INDEX episodes_quality ON episodes (
    person_id,
    (CASE WHEN round = 1 THEN 1 ELSE 0 END)
    + (CASE WHEN attended = TRUE THEN 2 ELSE 0 END)
    + (CASE WHEN technical_repeat = TRUE THEN 4 ELSE 0 END)
    + (CASE WHEN recalled = TRUE THEN 8 ELSE 0 END)
    + (CASE WHEN assessment_date IS NOT NULL THEN 16 ELSE 0 END)
    + (CASE WHEN needle_biopsy = TRUE THEN 32 ELSE 0 END)
    + (CASE WHEN open_biopsy = TRUE THEN 64 ELSE 0 END)
    + (CASE WHEN preop_diagnosis = TRUE THEN 128 ELSE 0 END)
    + (CASE outcome WHEN 'benign' THEN 256 WHEN 'dcis' THEN 512 WHEN 'invasive' THEN 768 ELSE 0 END)
    + (CASE detection WHEN 'screen' THEN 1024 WHEN 'interval' THEN 2048 ELSE 0 END)
    + (CASE nodal_status WHEN 'negative' THEN 4096 WHEN 'positive' THEN 8192 ELSE 0 END)
    + (CASE WHEN tumour_size_mm <= 0 THEN 0 WHEN tumour_size_mm <= 10 THEN 16384 WHEN tumour_size_mm < 15 THEN 32768 ELSE 49152 END)
    + (CASE WHEN detection <> 'interval' OR interval_months < 0 THEN 0 WHEN interval_months <= 11 THEN 65536
        WHEN interval_months <= 23 THEN 131072 ELSE 196608 END),
    CAST(replace(invitation_date, '-', '') AS INTEGER),
    COALESCE(CAST(replace(exam_date, '-', '') AS INTEGER), 0) * 33554432 + COALESCE(CAST(replace(result_date, '-', '') AS INTEGER), 0)
);
CREATE INDEX persons_quality ON persons (person_id, CAST(replace(birth_date, '-', '') AS INTEGER));

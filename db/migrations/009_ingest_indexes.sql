-- Ingest writes a million exposure rows in one statement; every index on exposures is one more
-- B-tree insert per row. Two of them indexed mostly nulls: a new exposure has no remediation unit
-- and no deadline yet. Partial indexes keep the lookups they serve (remediation_unit_id = $1,
-- sla_due < $1 among unresolved rows; both imply not null) and skip the rows that carry nothing.
drop index if exists exposures_unit;
create index exposures_unit on exposures (remediation_unit_id) where remediation_unit_id is not null;
drop index if exists exposures_sla_due;
create index exposures_sla_due on exposures (sla_due) where resolved_at is null and sla_due is not null;

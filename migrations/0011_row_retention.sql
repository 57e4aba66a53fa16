-- Retention of rows (issue 12): a finished job's task rows but its assembler's (which hold its
-- results), its log lines and its events but its state changes are removed once the job has been
-- over for TESSERA_TASK_ROW_RETENTION_HOURS; the job itself (its counts, usage and timestamps)
-- stays listable until TESSERA_JOB_RETENTION_DAYS, and its temporary storage is gone. The index
-- finds the jobs still to compact without reading those done.
ALTER TABLE jobs ADD COLUMN rows_compacted_at timestamptz;
CREATE INDEX jobs_to_compact ON jobs (ended_at) WHERE rows_compacted_at IS NULL AND ended_at IS NOT NULL;

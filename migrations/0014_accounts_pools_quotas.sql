-- Issue 13: an operator role, accounts that can be disabled, per-account quotas, and private
-- worker pools.
--
-- accounts.role: 'customer', or 'operator' (one account, made at start: it holds the operator's
-- keys and the shared fleet's worker tokens). Quotas are NULL for none.
ALTER TABLE accounts ADD COLUMN role text NOT NULL DEFAULT 'customer';
ALTER TABLE accounts ADD COLUMN name text NOT NULL DEFAULT '';
ALTER TABLE accounts ADD COLUMN disabled_at timestamptz;
ALTER TABLE accounts ADD COLUMN max_shared_tasks integer;
ALTER TABLE accounts ADD COLUMN max_stored_bytes bigint;
ALTER TABLE accounts ADD COLUMN max_jobs_per_minute integer;

-- A worker whose token belongs to a customer account serves that account alone (its private
-- pool); NULL: a shared worker (the operator's, or a server's own slots).
ALTER TABLE workers ADD COLUMN account_id text;

-- Leasing matches a task's account and pool in SQL. private_only: the job asked for its own
-- workers only. lease_shared: leased by a shared worker (counted against max_shared_tasks).
ALTER TABLE tasks ADD COLUMN account_id text;
ALTER TABLE tasks ADD COLUMN private_only boolean NOT NULL DEFAULT false;
ALTER TABLE tasks ADD COLUMN lease_shared boolean NOT NULL DEFAULT true;
UPDATE tasks SET account_id = jobs.account_id FROM jobs WHERE jobs.id = tasks.job_id AND tasks.state IN ('queued', 'leased', 'cancelling');

-- Bytes a job holds in the blob store (uploads, chunks, results), for the stored-bytes quota.
ALTER TABLE jobs ADD COLUMN stored_bytes bigint NOT NULL DEFAULT 0;
UPDATE jobs SET stored_bytes = held.bytes
  FROM (SELECT j.id, coalesce((SELECT sum(size) FROM job_uploads u WHERE u.job_id = j.id), 0)
                   + coalesce((SELECT sum(coalesce(t.input_size, 0)) + sum(coalesce((SELECT sum((o->>'size')::bigint) FROM jsonb_array_elements(CASE WHEN jsonb_typeof(t.outputs) = 'array' THEN t.outputs ELSE '[]'::jsonb END) o), 0))
                                FROM tasks t WHERE t.job_id = j.id), 0) AS bytes
          FROM jobs j WHERE j.blobs_deleted_at IS NULL) held
 WHERE jobs.id = held.id AND held.bytes > 0;

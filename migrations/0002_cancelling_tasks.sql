-- Aborting a job moves its running tasks to 'cancelling' until their worker confirms the process
-- stopped (or their lease runs out); the async job view reports Cancelling until then.
CREATE INDEX tasks_cancelling ON tasks (job_id, lease_expires_at) WHERE state = 'cancelling';

-- The overview page's statistics (GET /v1/customer/stats) read the tasks of an account's jobs
-- that were still running when the window began: the jobs not ended before it. Without this index
-- that is every job the account ever ran; with it, the running ones and those ended in the window.
CREATE INDEX jobs_by_account_end ON jobs (account_id, (coalesce(ended_at, 'infinity'::timestamptz)));

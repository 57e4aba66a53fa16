-- A failed attempt's retry waits out a back-off before it may be leased again (issue 30: three
-- attempts in 40 ms gave a flaky dependency no time to recover). NULL, or a time past, is due now.
-- Lost leases and released tasks are never delayed: the task did nothing wrong.
ALTER TABLE tasks ADD COLUMN not_before timestamptz;

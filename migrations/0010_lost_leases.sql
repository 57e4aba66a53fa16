-- A lease lost with its worker (it stopped heartbeating, was stopped or killed, or its embedded
-- process restarted) is no failure of the task's own: it costs no attempt (max_attempts grows by
-- one) and is counted here instead, against its own bound (TESSERA_MAX_LOST_LEASES), so a task
-- that kills every worker it lands on still ends.
ALTER TABLE tasks ADD COLUMN lost_leases integer NOT NULL DEFAULT 0;

-- The leased-tasks index serves the statements that read every leased task (the expiry sweep, a
-- stopped worker's release, the workers list) and those on a list of leases (batched completions,
-- releases, lease checks). With its predicate `state = 'leased'` alone it also matched every
-- statement on one task by id, lease token and state, and after a fan-out, when the planner's
-- statistics expect one leased task, it won against the primary key by a hair (costs 8.30 and
-- 8.31): a completion, a failure or a lease check read every leased task to find its own (four
-- such statements read 7,995 rows with 2,000 leased in a test; on a large fleet, every upload's
-- lease check did). Now the index also needs the expiry named in the query: the statements above
-- say `lease_expires_at < now()` or `lease_expires_at IS NOT NULL` (every leased task has one);
-- those on one task by id do not, and look it up in the primary key.
DROP INDEX tasks_lease_expiry;
CREATE INDEX tasks_lease_expiry ON tasks (lease_expires_at) WHERE state = 'leased' AND lease_expires_at IS NOT NULL;

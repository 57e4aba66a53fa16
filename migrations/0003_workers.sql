-- Worker agents and what they offer; tasks carry what they need (the job's regions, the
-- component's device requirements) so leasing can match the two in one statement.
CREATE TABLE workers (
  id           text PRIMARY KEY,
  name         text NOT NULL,
  region       text NOT NULL DEFAULT '',
  slots        integer NOT NULL,
  cpus         double precision NOT NULL,
  memory_gb    double precision NOT NULL,
  gpus         text[] NOT NULL DEFAULT '{}',
  started_at   timestamptz NOT NULL DEFAULT now(),
  last_seen_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX workers_last_seen ON workers (last_seen_at);

ALTER TABLE tasks
  ADD COLUMN min_cpu          double precision NOT NULL DEFAULT 0,
  ADD COLUMN min_memory_gb    double precision NOT NULL DEFAULT 0,
  -- NULL: any worker; otherwise the worker must have one of these GPU models.
  ADD COLUMN gpus             text[],
  -- NULL: any region; otherwise the worker's region must be listed.
  ADD COLUMN region_whitelist text[],
  ADD COLUMN region_blacklist text[] NOT NULL DEFAULT '{}';

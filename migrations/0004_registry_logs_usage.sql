-- The registry: apps, engines and templates belong to the account that pushed them; built-ins
-- belong to 'tessera' and every account sees them. A component's files are a content-addressed
-- archive in blob storage (components/<sha256>.tgz) that workers fetch and cache by hash.
ALTER TABLE components
  ADD COLUMN owner          text NOT NULL DEFAULT 'tessera',
  ADD COLUMN archive_sha256 text,
  ADD COLUMN archive_size   bigint,
  ADD COLUMN updated_at     timestamptz NOT NULL DEFAULT now();
ALTER TABLE components DROP CONSTRAINT components_pkey;
ALTER TABLE components ADD PRIMARY KEY (owner, kind, name, version);

ALTER TABLE templates DROP CONSTRAINT templates_pkey;
ALTER TABLE templates ADD PRIMARY KEY (owner, id);

-- Resource accounting: what each task's child process used (its last attempt), and the sums
-- over every attempt per job, kept up to date in the transaction that ends the attempt.
ALTER TABLE tasks
  ADD COLUMN cpu_seconds       double precision,
  ADD COLUMN wall_seconds      double precision,
  ADD COLUMN peak_memory_bytes bigint;
ALTER TABLE jobs
  ADD COLUMN cpu_seconds       double precision NOT NULL DEFAULT 0,
  ADD COLUMN wall_seconds      double precision NOT NULL DEFAULT 0,
  ADD COLUMN peak_memory_bytes bigint NOT NULL DEFAULT 0,
  -- vCPU·GiB·hours: each attempt's CPU hours times its peak memory in GiB.
  ADD COLUMN units             double precision NOT NULL DEFAULT 0,
  -- Failed attempts of app tasks (retried or not), for progress reports.
  ADD COLUMN attempts_failed   integer NOT NULL DEFAULT 0;

-- What partitioners, apps and assemblers wrote to stdout and stderr, a bounded number of lines
-- per attempt, for POST /v1/customer/logs and GET /v1/customer/jobs/{jobId}/logs.
CREATE TABLE task_logs (
  id          bigserial PRIMARY KEY,
  job_id      text NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
  task_id     bigint NOT NULL,
  kind        text NOT NULL,
  chunk_index integer NOT NULL,
  attempt     integer NOT NULL,
  at          timestamptz NOT NULL,
  stream      text NOT NULL,
  level       text NOT NULL,
  line        text NOT NULL
);

CREATE INDEX task_logs_by_job ON task_logs (job_id, id);

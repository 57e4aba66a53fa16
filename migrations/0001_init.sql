-- Tessera's first schema. Migrations are append-only: change the schema with a new numbered file.

-- Process-wide settings shared by every replica (e.g. the key that signs result links).
CREATE TABLE settings (
  key   text PRIMARY KEY,
  value text NOT NULL
);

CREATE TABLE accounts (
  id         text PRIMARY KEY,
  created_at timestamptz NOT NULL DEFAULT now()
);

-- Keys are stored only as SHA-256 hashes; key_prefix lets a person recognise a key in a list.
CREATE TABLE api_keys (
  id         text PRIMARY KEY,
  account_id text NOT NULL REFERENCES accounts (id),
  key_hash   text NOT NULL UNIQUE,
  key_prefix text NOT NULL,
  scope      text NOT NULL DEFAULT 'customer',
  created_at timestamptz NOT NULL DEFAULT now(),
  revoked_at timestamptz
);

-- Partitioners, apps and assemblers, by (kind, name, version). location says where the folder is.
CREATE TABLE components (
  kind        text NOT NULL,
  name        text NOT NULL,
  version     text NOT NULL,
  major       integer NOT NULL,
  minor       integer NOT NULL,
  manifest    jsonb NOT NULL,
  location    text NOT NULL,
  active      boolean NOT NULL DEFAULT true,
  created_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (kind, name, version)
);

CREATE TABLE templates (
  id          text PRIMARY KEY,
  owner       text NOT NULL,
  description text NOT NULL DEFAULT '',
  app         text NOT NULL,
  partitioner text NOT NULL,
  assembler   text NOT NULL,
  -- Job defaults: {dataSource, dataDestination, params, config}.
  defaults    jsonb NOT NULL DEFAULT '{}',
  created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE jobs (
  id               text PRIMARY KEY,
  account_id       text NOT NULL REFERENCES accounts (id),
  template_id      text NOT NULL,
  name             text NOT NULL DEFAULT '',
  description      text NOT NULL DEFAULT '',
  state            text NOT NULL DEFAULT 'JOB_STATE_NEW',
  priority         text NOT NULL DEFAULT 'EXECUTION_PRIORITY_UNDEFINED',
  config           jsonb NOT NULL DEFAULT '{}',
  regions          jsonb NOT NULL DEFAULT '{}',
  data_source      jsonb NOT NULL DEFAULT '{}',
  data_destination jsonb NOT NULL DEFAULT '{}',
  params           jsonb NOT NULL DEFAULT '{}',
  app_id           text NOT NULL DEFAULT '',
  num_chunks       integer,
  chunks_done      integer NOT NULL DEFAULT 0,
  error_message    text,
  -- {"JOB_STATE_STARTED": "2026-…", …}: when each state was entered.
  state_timestamps jsonb NOT NULL DEFAULT '{}',
  created_at       timestamptz NOT NULL DEFAULT now(),
  start_at         timestamptz,
  submitted_at     timestamptz,
  started_at       timestamptz,
  ended_at         timestamptz,
  deleted_at       timestamptz
);

CREATE INDEX jobs_by_account ON jobs (account_id, created_at DESC) WHERE deleted_at IS NULL;
-- The scheduler's sweep for running jobs (timeouts) reads only unfinished jobs.
CREATE INDEX jobs_running ON jobs (state) WHERE state NOT IN ('JOB_STATE_NEW', 'JOB_STATE_COMPLETE', 'JOB_STATE_FAILED');

-- One row per unit of work: the job's partition step, one app task per chunk, the assemble step.
CREATE TABLE tasks (
  id               bigserial PRIMARY KEY,
  job_id           text NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
  kind             text NOT NULL,
  chunk_index      integer NOT NULL DEFAULT 0,
  state            text NOT NULL DEFAULT 'queued',
  priority         integer NOT NULL DEFAULT 0,
  attempt          integer NOT NULL DEFAULT 0,
  max_attempts     integer NOT NULL DEFAULT 1,
  input_key        text,
  lease_owner      text,
  -- Fencing: a completion must carry the token of the current lease, so a worker that lost
  -- its lease (and the task was leased again) cannot complete it.
  lease_token      text,
  lease_expires_at timestamptz,
  outputs          jsonb,
  last_error       text,
  created_at       timestamptz NOT NULL DEFAULT now(),
  started_at       timestamptz,
  finished_at      timestamptz,
  -- Fan-out creates each task once: a replayed partition completion cannot add duplicates.
  UNIQUE (job_id, kind, chunk_index)
);

-- The hot queue: only queued rows are in it, so finished tasks do not slow leasing down.
CREATE INDEX tasks_queue ON tasks (priority DESC, id) WHERE state = 'queued';
CREATE INDEX tasks_lease_expiry ON tasks (lease_expires_at) WHERE state = 'leased';

-- Append-only log of what happened to a job (state changes, task failures, retries).
CREATE TABLE job_events (
  id         bigserial PRIMARY KEY,
  job_id     text NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
  at         timestamptz NOT NULL DEFAULT now(),
  kind       text NOT NULL,
  state      text,
  message    text NOT NULL DEFAULT ''
);

CREATE INDEX job_events_by_job ON job_events (job_id, id);

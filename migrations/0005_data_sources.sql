-- Data sources and destinations (issue 7).

-- Account secrets: credentials of the customer's own buckets (aws, gcp, storj) and values for
-- apps (other). The secret key is sealed with AES-256-GCM (TESSERA_SECRETS_KEY, or a key kept in
-- settings) and is never returned by the API.
CREATE TABLE secrets (
  account_id  text NOT NULL REFERENCES accounts (id),
  secret_type text NOT NULL,
  id          text NOT NULL,
  name        text NOT NULL DEFAULT '',
  access_key  text NOT NULL DEFAULT '',
  sealed_key  text NOT NULL,
  params      jsonb NOT NULL DEFAULT '{}',
  expires_at  timestamptz,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (account_id, secret_type, id)
);

-- The file source: the parts a client PUT to the job's upload link, joined in part order when
-- the job runs. upload_completed_at is set by uploadcompleted; a file job cannot run before.
CREATE TABLE job_uploads (
  job_id     text NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
  part       integer NOT NULL,
  blob_key   text NOT NULL,
  size       bigint NOT NULL,
  file_name  text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (job_id, part)
);
ALTER TABLE jobs
  ADD COLUMN upload_completed_at timestamptz,
  -- Delivery to an S3-compatible destination runs on a server after MERGED: a replica claims the
  -- job until delivery_claimed_until (a crashed replica's claim runs out and another takes over).
  ADD COLUMN delivery_claimed_until timestamptz,
  ADD COLUMN delivery_attempts      integer NOT NULL DEFAULT 0,
  -- Temporary storage (the bucket destination, uploads) is deleted after the retention period.
  ADD COLUMN blobs_deleted_at       timestamptz;

CREATE INDEX jobs_retention ON jobs (coalesce(ended_at, created_at)) WHERE blobs_deleted_at IS NULL;

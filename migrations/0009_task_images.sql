-- Container images (issue 11). A task whose component names an image this deployment's workers
-- run in containers carries it (normalised: Docker Hub's registry and namespace left out); a
-- worker leases it only when it has a container runtime or maps the image to its host sandbox
-- (host_images holds those patterns as LIKE patterns). NULL: any worker's host sandbox runs it.
-- runtime is what the worker said of its runtimes (sandbox, limits, network, container runtime,
-- images), shown in the workers list.
ALTER TABLE tasks ADD COLUMN image text;
ALTER TABLE workers
  ADD COLUMN containers  boolean NOT NULL DEFAULT false,
  ADD COLUMN host_images text[] NOT NULL DEFAULT '{}',
  ADD COLUMN runtime     jsonb;
-- Sampled like the other needs columns (0007): the lease statement filters on it.
ALTER TABLE tasks ALTER COLUMN image SET STATISTICS 10;

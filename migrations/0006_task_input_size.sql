-- The size of an app task's chunk, recorded when the partition completes, so a worker can make
-- an empty chunk without a download (NULL for tasks queued before this column existed).
ALTER TABLE tasks ADD COLUMN input_size bigint;

import type { Queryable } from './db.js';

// The parts of a file job's upload (job_uploads) and the job's upload_completed_at.

export interface UploadPart {
  part: number;
  blobKey: string;
  size: number;
  fileName: string;
}

/** Records a part (a part sent again replaces the earlier one), and the bytes it adds to the job's. */
export async function upsertUploadPart(db: Queryable, jobId: string, part: UploadPart): Promise<void> {
  await db.query(
    `WITH earlier AS (SELECT size FROM job_uploads WHERE job_id = $1 AND part = $2),
     recorded AS (
       INSERT INTO job_uploads (job_id, part, blob_key, size, file_name) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (job_id, part) DO UPDATE SET blob_key = EXCLUDED.blob_key, size = EXCLUDED.size, file_name = EXCLUDED.file_name, created_at = now()
       RETURNING 1)
     UPDATE jobs SET stored_bytes = stored_bytes + $4 - coalesce((SELECT size FROM earlier), 0)
      WHERE id = $1 AND EXISTS (SELECT 1 FROM recorded)`,
    [jobId, part.part, part.blobKey, part.size, part.fileName],
  );
}

export async function listUploadParts(db: Queryable, jobId: string): Promise<UploadPart[]> {
  const rows = await db.query<{ part: number; blob_key: string; size: string | number; file_name: string }>(
    'SELECT part, blob_key, size, file_name FROM job_uploads WHERE job_id = $1 ORDER BY part',
    [jobId],
  );
  return rows.map((row) => ({ part: row.part, blobKey: row.blob_key, size: Number(row.size), fileName: row.file_name }));
}

/** Marks the upload complete while the job is still NEW and not yet marked; false otherwise. */
export async function markUploadCompleted(db: Queryable, accountId: string, jobId: string): Promise<boolean> {
  const rows = await db.query(
    `UPDATE jobs SET upload_completed_at = now()
      WHERE id = $1 AND account_id = $2 AND state = 'JOB_STATE_NEW' AND upload_completed_at IS NULL AND deleted_at IS NULL
      RETURNING id`,
    [jobId, accountId],
  );
  return rows.length > 0;
}

import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { unpackArchive } from '../blobs/archive.js';
import type { UnpackLimits } from '../blobs/archive.js';
import type { WorkerLink } from '../domain/worker-link.js';

// Component folders on a worker, by archive hash: fetched and unpacked once, then reused by every
// task of every job that runs that component. A folder appears complete or not at all (unpacked
// beside it, then renamed), so a crash mid-unpack leaves nothing a later task could trust.

export function createComponentCache(root: string, link: Pick<WorkerLink, 'fetchComponent'>, limits: UnpackLimits) {
  const pending = new Map<string, Promise<string>>();

  async function fetchAndUnpack(sha256: string): Promise<string> {
    const folder = path.join(root, sha256);
    if (existsSync(folder)) return folder;
    await mkdir(root, { recursive: true });
    const scratch = await mkdtemp(path.join(root, `.${sha256.slice(0, 12)}-`));
    try {
      const archive = path.join(scratch, 'component.tgz');
      await link.fetchComponent(sha256, archive);
      await unpackArchive(await readFile(archive), path.join(scratch, 'folder'), limits);
      await rename(path.join(scratch, 'folder'), folder).catch((error: NodeJS.ErrnoException) => {
        // Another process of this worker's folder got there first: same hash, same files.
        if (!existsSync(folder)) throw error;
      });
      return folder;
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  }

  return {
    /** The unpacked folder of the archive with this hash. */
    folder(sha256: string): Promise<string> {
      let folder = pending.get(sha256);
      if (!folder) {
        folder = fetchAndUnpack(sha256);
        pending.set(sha256, folder);
        // A failed fetch is not remembered; the next task tries again.
        folder.catch(() => pending.delete(sha256));
      }
      return folder;
    },
  };
}

export type ComponentCache = ReturnType<typeof createComponentCache>;

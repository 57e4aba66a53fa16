import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { folderDigest, unpackArchive } from '../blobs/archive.js';
import type { UnpackLimits } from '../blobs/archive.js';
import { TesseraError } from '../domain/errors.js';
import type { Log } from '../domain/log.js';
import type { WorkerLink } from '../domain/worker-link.js';

// Component folders on a worker, by archive hash: fetched and unpacked once, then reused by every
// task of every job that runs that component. A folder appears complete or not at all (unpacked
// beside it, then renamed), so a crash mid-unpack leaves nothing a later task could trust.
//
// Tasks see a component folder read-only, but a folder on disk could still be changed from
// outside a sandbox (an unconfined run, a careless operator). So a fetched archive must have the
// hash that names it, the unpacked folder's digest (archive.ts) is kept beside it, and before this
// process first uses a folder it checks the digest again: a folder that changed is refused, removed
// and unpacked anew.

export function createComponentCache(root: string, link: Pick<WorkerLink, 'fetchComponent'>, limits: UnpackLimits, log?: Log) {
  const pending = new Map<string, Promise<string>>();

  const digestFile = (sha256: string) => path.join(root, `${sha256}.digest`);

  async function intact(sha256: string, folder: string): Promise<boolean> {
    const expected = await readFile(digestFile(sha256), 'utf8').catch(() => '');
    if (expected && (await folderDigest(folder)) === expected.trim()) return true;
    log?.warn({ component: sha256 }, 'a cached component folder differs from what was unpacked; it is removed and unpacked again');
    await rm(folder, { recursive: true, force: true });
    return false;
  }

  async function fetchAndUnpack(sha256: string): Promise<string> {
    const folder = path.join(root, sha256);
    if (existsSync(folder) && (await intact(sha256, folder))) return folder;
    await mkdir(root, { recursive: true });
    const scratch = await mkdtemp(path.join(root, `.${sha256.slice(0, 12)}-`));
    try {
      const archive = path.join(scratch, 'component.tgz');
      await link.fetchComponent(sha256, archive);
      const hash = createHash('sha256');
      for await (const chunk of createReadStream(archive)) hash.update(chunk as Buffer);
      if (hash.digest('hex') !== sha256) throw new TesseraError('UNAVAILABLE', `the component archive fetched as ${sha256} has another hash; it was not used`, { hint: 'the server or the way to it changed it: check the server' });
      const unpacked = path.join(scratch, 'folder');
      await unpackArchive(await readFile(archive), unpacked, limits);
      await writeFile(path.join(scratch, 'digest'), await folderDigest(unpacked));
      await rename(path.join(scratch, 'digest'), digestFile(sha256));
      await rename(unpacked, folder).catch((error: NodeJS.ErrnoException) => {
        // Another process of this worker's folder got there first: same hash, same files.
        if (!existsSync(folder)) throw error;
      });
      return folder;
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  }

  return {
    /** The unpacked folder of the archive with this hash, checked once per process before its first use. */
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

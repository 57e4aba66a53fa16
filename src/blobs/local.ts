import { createReadStream, createWriteStream } from 'node:fs';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { copyFile, lstat, mkdir, opendir, rename, rm, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { TesseraError, notFound } from '../domain/errors.js';
import type { BlobInfo, BlobStore } from './blob-store.js';
import { TEMPORARY_BLOB_NAME, checkBlobKey, temporaryBlobPath } from './blob-store.js';

/** Renames, making the target's folder first when it is missing (the common case has it already: one call). */
async function renameMaking(from: string, to: string): Promise<void> {
  try {
    await rename(from, to);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    await mkdir(path.dirname(to), { recursive: true });
    await rename(from, to);
  }
}

/** A write that found the disk full, said as the blob folder being full (the error keeps the system's). */
function full(root: string, error: unknown): unknown {
  const code = (error as NodeJS.ErrnoException).code;
  if (code !== 'ENOSPC' && code !== 'EDQUOT') return error;
  return new TesseraError('RESOURCE_EXHAUSTED', `the blob folder ${root} is full (${code})`, { hint: 'the operator must free space or grow its disk; retry later', cause: error });
}

/** Blobs as files under one folder (the embedded default: ./.tessera/blobs). */
export function createLocalBlobStore(root: string): BlobStore {
  const resolve = (key: string) => path.join(root, ...checkBlobKey(key).split('/'));
  const statKey = async (key: string): Promise<BlobInfo | null> => {
    try {
      const info = await stat(resolve(key));
      return info.isFile() ? { key, size: info.size } : null;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw error;
    }
  };
  const store: BlobStore = {
    kind: 'local',
    async putFile(key, filePath) {
      const target = resolve(key);
      await mkdir(path.dirname(target), { recursive: true });
      // Copy beside the target, then rename: a reader sees the old blob or the new one, never a part.
      const temporary = temporaryBlobPath(target);
      try {
        await copyFile(filePath, temporary);
        await rename(temporary, target);
      } catch (error) {
        await rm(temporary, { force: true });
        throw full(root, error);
      }
      return (await statKey(key))!;
    },
    async moveFile(key, filePath) {
      // A rename when it can be one: a partition's 100,000 chunks are each one rename instead of
      // a copy, a rename, a stat and an unlink. Not for a file with other links (the copy would
      // share its bytes with a file elsewhere) nor across file systems: those are copied.
      const info = await lstat(filePath);
      if (!info.isFile()) throw new TesseraError('INVALID_ARGUMENT', `${filePath} is not a regular file`);
      if (info.nlink === 1) {
        const target = resolve(key);
        try {
          await renameMaking(filePath, target);
          return { key, size: info.size };
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'EXDEV') throw error;
        }
      }
      const stored = await store.putFile(key, filePath);
      await unlink(filePath);
      return stored;
    },
    async putStream(key, stream, maxBytes) {
      const target = resolve(key);
      await mkdir(path.dirname(target), { recursive: true });
      const temporary = temporaryBlobPath(target);
      let size = 0;
      const limit = new Transform({
        transform(chunk: Buffer, _encoding, done) {
          size += chunk.length;
          done(size > maxBytes ? new TesseraError('RESOURCE_EXHAUSTED', `the upload is larger than ${maxBytes} bytes`) : null, chunk);
        },
      });
      try {
        await pipeline(stream, limit, createWriteStream(temporary));
        await rename(temporary, target);
      } catch (error) {
        await rm(temporary, { force: true });
        throw full(root, error);
      }
      return { key, size };
    },
    async getFile(key, filePath) {
      if (!(await statKey(key))) throw notFound('blob', key);
      await mkdir(path.dirname(filePath), { recursive: true });
      await copyFile(resolve(key), filePath);
    },
    async openRead(key) {
      const info = await statKey(key);
      if (!info) throw notFound('blob', key);
      return { stream: createReadStream(resolve(key)), size: info.size };
    },
    stat: statKey,
    async deletePrefix(prefix) {
      const trimmed = prefix.replace(/\/+$/, '');
      await rm(resolve(trimmed), { recursive: true, force: true });
    },
    async sweepAbandonedUploads(olderThanMs) {
      return removeTemporaryFiles(root, Date.now() - olderThanMs);
    },
  };
  return store;
}

/** Temporary upload files under `dir` last written before `before` (ms), removed; one folder at a time. */
async function removeTemporaryFiles(dir: string, before: number): Promise<number> {
  let removed = 0;
  let entries;
  try {
    entries = await opendir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw error;
  }
  for await (const entry of entries) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) removed += await removeTemporaryFiles(full, before);
    else if (entry.isFile() && TEMPORARY_BLOB_NAME.test(entry.name)) {
      const info = await stat(full).catch(() => null);
      if (info && info.mtimeMs < before && (await rm(full, { force: true }).then(() => true, () => false))) removed++;
    }
  }
  return removed;
}

import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import { invalidArgument, quote } from '../domain/errors.js';

// Tessera's own object storage: chunks, task results, job outputs. Keys are '/'-separated paths
// chosen by Tessera (never raw user file names), e.g. jobs/<jobId>/a1/chunks/data_0.bin.

export interface BlobInfo {
  key: string;
  size: number;
}

export interface BlobStore {
  readonly kind: 'local' | 's3';
  /** Stores a local file under `key` (replacing it whole; readers never see half a file). */
  putFile(key: string, filePath: string): Promise<BlobInfo>;
  /** Stores a local file under `key` like putFile, and removes the local file (a task's output, done with). */
  moveFile(key: string, filePath: string): Promise<BlobInfo>;
  /** Stores a stream under `key` (whole or not at all), refusing more than `maxBytes`. */
  putStream(key: string, stream: Readable, maxBytes: number): Promise<BlobInfo>;
  /** Copies the blob to a local file. */
  getFile(key: string, filePath: string): Promise<void>;
  /** A stream of the blob's bytes; NOT_FOUND if it does not exist. */
  openRead(key: string): Promise<{ stream: Readable; size: number }>;
  stat(key: string): Promise<BlobInfo | null>;
  /** Deletes every blob whose key starts with `prefix`. */
  deletePrefix(prefix: string): Promise<void>;
  /**
   * S3 only: a presigned URL to GET or PUT the blob directly, valid for `ttlSeconds`, so worker
   * agents move bytes to and from the bucket without passing them through an API server.
   */
  presign?(key: string, method: 'GET' | 'PUT', ttlSeconds: number): Promise<string>;
  /**
   * Removes what uploads cut off by a crash left behind (a killed server's unfinished multipart
   * uploads in S3, its temporary files in the blob folder), when begun more than `olderThanMs`
   * ago; returns how many. An upload still under way is younger than that (see ABANDONED_UPLOAD_MS).
   */
  sweepAbandonedUploads(olderThanMs: number): Promise<number>;
}

/**
 * The top folders of every key Tessera writes (jobs/<id>/… for chunks, results, outputs and
 * uploads; components/<sha256>.tgz for archives). A sweep of a bucket shared without a prefix
 * looks only under these.
 */
export const BLOB_KEY_ROOTS = ['jobs/', 'components/'] as const;

/** How old an unfinished upload must be to count as abandoned: a day, as S3's usual lifecycle rule. */
export const ABANDONED_UPLOAD_MS = 24 * 60 * 60 * 1000;

/**
 * The name an upload writes to before renaming it to its blob: beside it, with a character no
 * blob key may hold ("~"), so that a sweep can never take a blob for one (a result named
 * `x.<uuid>.part` is a valid key).
 */
export function temporaryBlobPath(target: string): string {
  return `${target}~${randomUUID()}.part`;
}

export const TEMPORARY_BLOB_NAME = /~[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.part$/;

const KEY_PATTERN = /^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/;

/** Keys are built by Tessera, but they end up as file paths: refuse anything that could climb out. */
export function checkBlobKey(key: string): string {
  if (key.length > 1024 || !KEY_PATTERN.test(key) || key.split('/').some((part) => part === '.' || part === '..')) {
    throw invalidArgument('key', `blob key ${quote(key)} is not a plain relative path`, 'keys use letters, digits, ".", "_", "-" and "/" between parts');
  }
  return key;
}

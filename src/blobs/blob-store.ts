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
}

const KEY_PATTERN = /^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/;

/** Keys are built by Tessera, but they end up as file paths: refuse anything that could climb out. */
export function checkBlobKey(key: string): string {
  if (key.length > 1024 || !KEY_PATTERN.test(key) || key.split('/').some((part) => part === '.' || part === '..')) {
    throw invalidArgument('key', `blob key ${quote(key)} is not a plain relative path`, 'keys use letters, digits, ".", "_", "-" and "/" between parts');
  }
  return key;
}

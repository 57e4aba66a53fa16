import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat as statFile, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { TesseraError, notFound, quote } from '../domain/errors.js';
import type { S3Settings } from '../config/config.js';
import type { BlobInfo, BlobStore } from './blob-store.js';
import { BLOB_KEY_ROOTS, checkBlobKey, temporaryBlobPath } from './blob-store.js';

// Blobs in an S3-compatible bucket (AWS, or any server that speaks the protocol: MinIO, Ceph,
// Swift's s3api). Memory stays bounded whatever the size: files go up in parts read from disk,
// streams in parts of PART_BYTES buffered one at a time, downloads are streamed to disk.

/** Parts of a multipart upload: S3's minimum is 5 MiB (but for the last part). */
export const PART_BYTES = 8 * 1024 * 1024;
/** Files up to this size go up in one PUT. */
const SINGLE_PUT_BYTES = 64 * 1024 * 1024;

/** Turns the SDK's errors into ones that say what is wrong with the settings. */
export function s3Error(error: unknown, settings: Pick<S3Settings, 'bucket' | 'endpoint'>, what: string): Error {
  if (error instanceof TesseraError) return error;
  const name = (error as { name?: string }).name ?? '';
  const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  const where = `bucket ${quote(settings.bucket)}${settings.endpoint ? ` at ${settings.endpoint}` : ''}`;
  if (name === 'NoSuchBucket') return new TesseraError('FAILED_PRECONDITION', `${what}: ${where} does not exist`, { hint: 'create the bucket, or fix the bucket name' });
  if (name === 'InvalidAccessKeyId' || name === 'SignatureDoesNotMatch' || name === 'AccessDenied' || status === 403) {
    return new TesseraError('PERMISSION_DENIED', `${what}: ${where} refused the credentials (${name || `HTTP ${status}`})`, { hint: 'check the access key id and the secret key' });
  }
  const code = (error as { code?: string }).code;
  if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || name === 'TimeoutError') {
    return new TesseraError('UNAVAILABLE', `${what}: ${where} cannot be reached (${code ?? name})`, { hint: 'check the endpoint and that the server runs' });
  }
  return new TesseraError('UNAVAILABLE', `${what}: ${where} answered ${name || 'an error'}${status ? ` (HTTP ${status})` : ''}: ${(error as Error).message}`);
}

function isMissing(error: unknown): boolean {
  const name = (error as { name?: string }).name;
  return name === 'NoSuchKey' || name === 'NotFound' || (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404 && name !== 'NoSuchBucket';
}

export function createS3Client(settings: S3Settings, requestHandler?: { httpAgent: unknown; httpsAgent: unknown }): S3Client {
  // The SDK warns on every start under Node 20 about versions after January 2027; this one is
  // pinned (package.json) and supports Node 20, so the warning would only alarm users.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  return new S3Client({
    ...(requestHandler ? { requestHandler: requestHandler as never } : {}),
    region: settings.region,
    ...(settings.endpoint ? { endpoint: settings.endpoint } : {}),
    forcePathStyle: settings.forcePathStyle,
    credentials: { accessKeyId: settings.accessKeyId, secretAccessKey: settings.secretAccessKey },
    // The SDK's default checksums (CRC32 trailers) are not understood by every S3-compatible server.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: 3,
  });
}

/** Where an upload goes, and how its errors are worded. */
export interface S3Target {
  client: S3Client;
  bucket: string;
  key: string;
  /** Turns an SDK error into one that names the bucket and what was being done. */
  explain(error: unknown): Error;
}

/** Uploads parts produced by `nextPart` (null when done); aborts the upload if anything fails. */
async function multipart(target: S3Target, nextPart: () => Promise<Buffer | Readable | null>, partLength?: (index: number) => number): Promise<void> {
  const { client, bucket, key } = target;
  const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key })).catch((error) => {
    throw target.explain(error);
  });
  const parts: { ETag: string; PartNumber: number }[] = [];
  try {
    for (let number = 1; ; number++) {
      const body = await nextPart();
      if (body === null) break;
      const length = Buffer.isBuffer(body) ? body.length : partLength!(number - 1);
      const { ETag } = await client.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId, PartNumber: number, Body: body, ContentLength: length }));
      parts.push({ ETag: ETag!, PartNumber: number });
    }
    await client.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId, MultipartUpload: { Parts: parts } }));
  } catch (error) {
    // Nothing half-written stays behind: the parts are dropped with the upload.
    await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId })).catch(() => {});
    throw target.explain(error);
  }
}

/** Uploads a local file: one PUT when small, else parts read from disk one at a time. */
export async function uploadFile(target: S3Target, filePath: string): Promise<number> {
  const { size } = await statFile(filePath);
  if (size <= SINGLE_PUT_BYTES) {
    await target.client.send(new PutObjectCommand({ Bucket: target.bucket, Key: target.key, Body: createReadStream(filePath), ContentLength: size })).catch((error) => {
      throw target.explain(error);
    });
    return size;
  }
  const count = Math.ceil(size / PART_BYTES);
  let index = 0;
  await multipart(
    target,
    async () => (index < count ? createReadStream(filePath, { start: index * PART_BYTES, end: Math.min(size, ++index * PART_BYTES) - 1 }) : null),
    (part) => Math.min(PART_BYTES, size - part * PART_BYTES),
  );
  return size;
}

/** Uploads a stream of unknown length (whole or not at all): parts are filled one at a time, so at most one is in memory. */
export async function uploadStream(target: S3Target, stream: Readable, maxBytes: number): Promise<number> {
  const iterator = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  let pending: Buffer = Buffer.alloc(0);
  let size = 0;
  let ended = false;
  const fill = async (): Promise<Buffer> => {
    const chunks: Buffer[] = [pending];
    let length = pending.length;
    while (length < PART_BYTES && !ended) {
      const { value, done } = await iterator.next();
      if (done) {
        ended = true;
        break;
      }
      const chunk = Buffer.isBuffer(value) ? value : Buffer.from(value);
      size += chunk.length;
      if (size > maxBytes) throw new TesseraError('RESOURCE_EXHAUSTED', `the upload is larger than ${maxBytes} bytes`);
      chunks.push(chunk);
      length += chunk.length;
    }
    const all = Buffer.concat(chunks);
    pending = all.subarray(PART_BYTES);
    return all.subarray(0, PART_BYTES);
  };
  const first = await fill();
  if (ended && pending.length === 0) {
    await target.client.send(new PutObjectCommand({ Bucket: target.bucket, Key: target.key, Body: first, ContentLength: first.length })).catch((error) => {
      throw target.explain(error);
    });
    return size;
  }
  let next: Buffer | null = first;
  await multipart(target, async () => {
    if (next === null) return null;
    const part: Buffer = next;
    next = ended && pending.length === 0 ? null : await fill();
    if (next !== null && next.length === 0) next = null;
    return part;
  });
  return size;
}

export function createS3BlobStore(settings: S3Settings, client: S3Client = createS3Client(settings)): BlobStore {
  const { bucket } = settings;
  const objectKey = (key: string) => `${settings.prefix}${checkBlobKey(key)}`;
  const fail = (what: string) => (error: unknown) => {
    throw s3Error(error, settings, what);
  };
  const target = (key: string): S3Target => ({ client, bucket, key: objectKey(key), explain: (error) => s3Error(error, settings, `storing ${key}`) });

  const store: BlobStore = {
    kind: 's3',

    async putFile(key, filePath) {
      return { key, size: await uploadFile(target(key), filePath) };
    },

    async moveFile(key, filePath) {
      const stored = await store.putFile(key, filePath);
      await unlink(filePath);
      return stored;
    },

    async putStream(key, stream, maxBytes) {
      return { key, size: await uploadStream(target(key), stream, maxBytes) };
    },

    async getFile(key, filePath) {
      const { stream } = await store.openRead(key);
      await mkdir(path.dirname(filePath), { recursive: true });
      // Downloaded beside the target, then renamed: a reader sees the whole file or none.
      const temporary = temporaryBlobPath(filePath);
      try {
        await pipeline(stream, createWriteStream(temporary));
        await rename(temporary, filePath);
      } catch (error) {
        await rm(temporary, { force: true });
        throw s3Error(error, settings, `reading ${key}`);
      }
    },

    async openRead(key) {
      try {
        const answer = await client.send(new GetObjectCommand({ Bucket: bucket, Key: objectKey(key) }));
        return { stream: answer.Body as Readable, size: Number(answer.ContentLength ?? 0) };
      } catch (error) {
        if (isMissing(error)) throw notFound('blob', key);
        throw s3Error(error, settings, `reading ${key}`);
      }
    },

    async stat(key): Promise<BlobInfo | null> {
      try {
        const answer = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: objectKey(key) }));
        return { key, size: Number(answer.ContentLength ?? 0) };
      } catch (error) {
        if (isMissing(error)) return null;
        throw s3Error(error, settings, `reading ${key}`);
      }
    },

    async presign(key, method, ttlSeconds) {
      const command = method === 'GET' ? new GetObjectCommand({ Bucket: bucket, Key: objectKey(key) }) : new PutObjectCommand({ Bucket: bucket, Key: objectKey(key) });
      return getSignedUrl(client, command, { expiresIn: ttlSeconds });
    },

    async deletePrefix(prefix) {
      const trimmed = prefix.replace(/\/+$/, '');
      checkBlobKey(trimmed);
      // The key itself, and everything below it as a folder; never "jobs/1" matching "jobs/10".
      await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: objectKey(trimmed) })).catch(fail(`deleting ${trimmed}`));
      let token: string | undefined;
      do {
        const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `${objectKey(trimmed)}/`, ContinuationToken: token })).catch(fail(`listing ${trimmed}/`));
        for (const object of page.Contents ?? []) {
          await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: object.Key! })).catch(fail(`deleting ${object.Key}`));
        }
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token);
    },

    async sweepAbandonedUploads(olderThanMs) {
      const before = Date.now() - olderThanMs;
      let aborted = 0;
      // Only under Tessera's own folders: a bucket shared without a prefix holds others' uploads too.
      for (const root of BLOB_KEY_ROOTS) {
        let marker: { KeyMarker?: string; UploadIdMarker?: string } = {};
        do {
          const page = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: `${settings.prefix}${root}`, ...marker })).catch(fail('listing unfinished uploads'));
          for (const upload of page.Uploads ?? []) {
            if (!upload.Key || !upload.UploadId || !upload.Initiated || upload.Initiated.getTime() >= before) continue;
            try {
              await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: upload.Key, UploadId: upload.UploadId }));
              aborted++;
            } catch (error) {
              // Finished or aborted meanwhile (another replica sweeps too): nothing left to do.
              if ((error as { name?: string }).name !== 'NoSuchUpload') throw s3Error(error, settings, `aborting the unfinished upload of ${upload.Key}`);
            }
          }
          marker = page.IsTruncated && page.NextKeyMarker ? { KeyMarker: page.NextKeyMarker, ...(page.NextUploadIdMarker ? { UploadIdMarker: page.NextUploadIdMarker } : {}) } : {};
        } while (marker.KeyMarker);
      }
      return aborted;
    },
  };
  return store;
}

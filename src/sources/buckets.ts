import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { GetObjectCommand, HeadBucketCommand, HeadObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import type { S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { createS3Client, s3Error, uploadStream } from '../blobs/s3.js';
import type { S3Settings } from '../config/config.js';
import { TesseraError, invalidArgument, quote } from '../domain/errors.js';
import { plainFileName } from '../domain/file-names.js';
import type { DataSource } from '../domain/types.js';
import { guardedLookup, isPrivateAddress, refusal } from './url.js';

// The customer's own S3-compatible buckets as sources and destinations: aws (older name s3), gcp
// and storj, each through the S3 protocol. Credentials come from an account secret (secret_id);
// `endpoint` (a Tessera extension) points at any other S3-compatible service. The endpoint is
// held to the same rule as url sources: no private or loopback address unless the operator
// allows them, checked on the address actually connected to.

export const BUCKET_DESCRIPTORS = ['aws', 's3', 'gcp', 'storj'] as const;
export type BucketDescriptor = (typeof BUCKET_DESCRIPTORS)[number];

const DEFAULT_ENDPOINTS: Partial<Record<BucketDescriptor, string>> = {
  gcp: 'https://storage.googleapis.com',
  storj: 'https://gateway.storjshare.io',
};

export function isBucketDescriptor(value: unknown): value is BucketDescriptor {
  return BUCKET_DESCRIPTORS.includes(value as BucketDescriptor);
}

/** A bucket source or destination, checked. */
export interface BucketRef {
  descriptor: BucketDescriptor;
  bucket: string;
  /** Source: the object's key (or a folder of objects when it ends with "/"). Destination: the folder the outputs go into. */
  name: string;
  region: string;
  endpoint: string | undefined;
  pathStyle: boolean;
  secretId: string;
}

const BUCKET_NAME = /^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$/;

/** Checks the params of a bucket source or destination; `field` names where they came from. */
export function bucketRefOf(source: DataSource, field: string, direction: 'source' | 'destination'): BucketRef {
  const descriptor = source.dataSourceDescriptor as BucketDescriptor;
  const params = source.params ?? {};
  const example = `{"dataSourceDescriptor":"${descriptor}","params":{"@type":"type.googleapis.com/bytenite.data_source.S3DataSource","bucketName":"my-bucket","name":"${direction === 'source' ? 'input/data.csv' : 'results'}","cloudRegion":"us-east-1","secret_id":"my-keys"}}`;
  const bucket = params.bucketName;
  if (typeof bucket !== 'string' || !BUCKET_NAME.test(bucket)) throw invalidArgument(`${field}.params.bucketName`, `bucketName ${quote(bucket)} is not a bucket name (3-63 lower-case letters, digits, ".", "-")`, `for example ${example}`);
  const name = params.name ?? '';
  if (typeof name !== 'string' || name.length > 1024 || name.includes('\u0000')) throw invalidArgument(`${field}.params.name`, `name ${quote(name)} must be an object path of at most 1024 characters`, `for example ${example}`);
  if (direction === 'source' && name.replace(/^\/+/, '') === '') throw invalidArgument(`${field}.params.name`, 'a bucket source needs params.name: the key of the object to read (or a folder ending in "/")', `for example ${example}`);
  const secretId = params.secret_id ?? params.secretId;
  if (typeof secretId !== 'string' || secretId.length === 0) throw invalidArgument(`${field}.params.secret_id`, `a ${descriptor} ${direction} needs params.secret_id, the id of an account secret holding its credentials`, 'save one with POST /v1/auth/secrets');
  const region = params.cloudRegion ?? 'us-east-1';
  if (typeof region !== 'string' || !/^[a-z0-9-]{1,64}$/.test(region)) throw invalidArgument(`${field}.params.cloudRegion`, `cloudRegion ${quote(region)} is not a region name`, 'for example "us-east-1"');
  const endpoint = params.endpoint ?? DEFAULT_ENDPOINTS[descriptor];
  if (endpoint !== undefined && (typeof endpoint !== 'string' || !/^https?:\/\/[^/?#]+\/?$/.test(endpoint))) {
    throw invalidArgument(`${field}.params.endpoint`, `endpoint ${quote(endpoint)} must be an http(s) URL with no path`, 'for example "https://s3.eu-central-1.example.com"');
  }
  const pathStyle = params.pathStyle ?? (params.endpoint !== undefined);
  if (typeof pathStyle !== 'boolean') throw invalidArgument(`${field}.params.pathStyle`, `pathStyle ${quote(pathStyle)} must be true or false`);
  return { descriptor, bucket, name: name.replace(/^\/+/, ''), region, endpoint: endpoint?.replace(/\/+$/, ''), pathStyle, secretId };
}

export function secretTypeOfBucket(descriptor: BucketDescriptor): 'aws' | 'gcp' | 'storj' {
  return descriptor === 's3' ? 'aws' : descriptor;
}

/** An open bucket: the client and how its errors read. */
export interface CustomerBucket {
  ref: BucketRef;
  client: S3Client;
  explain(error: unknown, what: string): Error;
}

export function openCustomerBucket(ref: BucketRef, credentials: { accessKeyId: string; secretAccessKey: string }, allowPrivate: boolean): CustomerBucket {
  const what = `the ${ref.descriptor} endpoint`;
  if (ref.endpoint && !allowPrivate) {
    const host = new URL(ref.endpoint).hostname.replace(/^\[|\]$/g, '');
    if (host === 'localhost' || (isIP(host) && isPrivateAddress(host))) throw refusal(host, host, what);
  }
  const settings: S3Settings = { bucket: ref.bucket, endpoint: ref.endpoint, region: ref.region, forcePathStyle: ref.pathStyle, prefix: '', ...credentials };
  const lookup = guardedLookup(allowPrivate, what);
  // One client per use (a source read, a delivery): no kept-alive sockets left behind it.
  const client = createS3Client(settings, { httpAgent: new http.Agent({ keepAlive: false, lookup }), httpsAgent: new https.Agent({ keepAlive: false, lookup }) });
  return { ref, client, explain: (error, doing) => s3Error(error, settings, doing) };
}

export interface ObjectInfo {
  key: string;
  size: number;
}

const statusOf = (error: unknown) => (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;

/** Throws a clear error when the bucket does not exist or refuses the credentials. */
export async function checkBucket(bucket: CustomerBucket): Promise<void> {
  await bucket.client.send(new HeadBucketCommand({ Bucket: bucket.ref.bucket })).catch((error) => {
    throw bucket.explain(statusOf(error) === 404 ? Object.assign(error, { name: 'NoSuchBucket' }) : error, `opening bucket ${quote(bucket.ref.bucket)}`);
  });
}

/** The objects a source names: the one object, or every object under a folder name ending in "/". */
export async function listSourceObjects(bucket: CustomerBucket, max: number): Promise<ObjectInfo[]> {
  const { client, ref } = bucket;
  if (!ref.name.endsWith('/')) {
    try {
      const head = await client.send(new HeadObjectCommand({ Bucket: ref.bucket, Key: ref.name }));
      return [{ key: ref.name, size: Number(head.ContentLength ?? 0) }];
    } catch (error) {
      // HEAD answers carry no error body: the bucket itself tells a missing bucket or refused
      // credentials from a missing object.
      await checkBucket(bucket);
      if (statusOf(error) === 404) throw new TesseraError('FAILED_PRECONDITION', `the source object s3://${ref.bucket}/${ref.name} does not exist`, { hint: 'check params.name (a folder of objects ends with "/")' });
      throw bucket.explain(error, `reading s3://${ref.bucket}/${ref.name}`);
    }
  }
  const found: ObjectInfo[] = [];
  let token: string | undefined;
  do {
    const page = await client.send(new ListObjectsV2Command({ Bucket: ref.bucket, Prefix: ref.name, ContinuationToken: token })).catch((error) => {
      throw bucket.explain(error, `listing s3://${ref.bucket}/${ref.name}`);
    });
    for (const object of page.Contents ?? []) {
      if (object.Key && !object.Key.endsWith('/')) found.push({ key: object.Key, size: Number(object.Size ?? 0) });
      if (found.length >= max) return found;
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return found;
}

/** Streams one object into `folder`, named after the last part of its key; refuses more than maxBytes. */
export async function downloadObject(bucket: CustomerBucket, object: ObjectInfo, folder: string, maxBytes: number): Promise<string> {
  const where = `s3://${bucket.ref.bucket}/${object.key}`;
  if (object.size > maxBytes) throw new TesseraError('RESOURCE_EXHAUSTED', `the source ${where} is ${object.size} bytes, over the limit of ${maxBytes}`, { hint: 'the operator can raise TESSERA_MAX_SOURCE_BYTES' });
  const target = path.join(folder, plainFileName(object.key.split('/').filter(Boolean).pop() ?? ''));
  try {
    const answer = await bucket.client.send(new GetObjectCommand({ Bucket: bucket.ref.bucket, Key: object.key }));
    await pipeline(answer.Body as Readable, createWriteStream(target));
  } catch (error) {
    await rm(target, { force: true });
    throw bucket.explain(error, `reading ${where}`);
  }
  return target;
}

/** Uploads one output file into the destination folder (multipart for large files); returns its key. */
export async function uploadOutput(bucket: CustomerBucket, name: string, stream: Readable): Promise<string> {
  const folder = bucket.ref.name.replace(/\/+$/, '');
  const key = folder ? `${folder}/${name}` : name;
  await uploadStream({ client: bucket.client, bucket: bucket.ref.bucket, key, explain: (error) => bucket.explain(error, `writing s3://${bucket.ref.bucket}/${key}`) }, stream, Number.MAX_SAFE_INTEGER);
  return key;
}

/** A presigned GET link to one object, valid for `seconds`. */
export function presignObject(bucket: CustomerBucket, key: string, seconds: number): Promise<string> {
  return getSignedUrl(bucket.client, new GetObjectCommand({ Bucket: bucket.ref.bucket, Key: key }), { expiresIn: seconds });
}

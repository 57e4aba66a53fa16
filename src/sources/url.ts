import { lookup as dnsLookup } from 'node:dns';
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import { BlockList, isIP } from 'node:net';
import type { LookupFunction } from 'node:net';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { TesseraError, invalidArgument, quote } from '../domain/errors.js';
import { plainFileName } from '../domain/file-names.js';
import { PRIVATE_IPV4_RANGES, PRIVATE_IPV6_RANGES } from '../domain/private-ranges.js';

// The url data source: one HTTP(S) GET streamed to a file. Guarded because the server fetches
// what a customer names: private and loopback addresses are refused unless the operator allows
// them (checked on the address actually connected to, so DNS tricks do not get around it),
// redirects are bounded, and size and time are capped.

export interface UrlFetchOptions {
  allowPrivate: boolean;
  maxBytes: number;
  timeoutMs: number;
  maxRedirects?: number;
  signal?: AbortSignal;
}

const PRIVATE = new BlockList();
for (const [network, prefix] of PRIVATE_IPV4_RANGES) PRIVATE.addSubnet(network, prefix, 'ipv4');
for (const [network, prefix] of PRIVATE_IPV6_RANGES) PRIVATE.addSubnet(network, prefix, 'ipv6');

export function isPrivateAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return PRIVATE.check(address, 'ipv4');
  if (family === 6) {
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
    return mapped ? PRIVATE.check(mapped[1]!, 'ipv4') : PRIVATE.check(address, 'ipv6');
  }
  return true;
}

export function refusal(host: string, address: string, what = 'the url source'): TesseraError {
  return new TesseraError('PERMISSION_DENIED', `${what} points at ${quote(host)} (${address}), a private or loopback address`, {
    hint: 'use a public URL, or let the operator allow private addresses with TESSERA_ALLOW_PRIVATE_URLS=1',
  });
}

export function guardedLookup(allowPrivate: boolean, what?: string): LookupFunction {
  return (hostname, options, callback) => {
    dnsLookup(hostname, { ...options, all: true }, (error, addresses) => {
      if (error) return callback(error, '', 0);
      const list = addresses as unknown as { address: string; family: number }[];
      const bad = allowPrivate ? undefined : list.find((entry) => isPrivateAddress(entry.address));
      if (bad) return callback(refusal(hostname, bad.address, what) as unknown as NodeJS.ErrnoException, '', 0);
      if ((options as { all?: boolean }).all) return (callback as unknown as (e: null, a: typeof list) => void)(null, list);
      callback(null, list[0]!.address, list[0]!.family);
    });
  };
}

/** GETs `url`, following redirects (bounded, each checked); resolves with the 200 response, unread. */
async function openUrl(url: string, options: UrlFetchOptions): Promise<{ response: http.IncomingMessage; url: URL }> {
  let current = new URL(url);
  const maxRedirects = options.maxRedirects ?? 5;
  for (let redirects = 0; ; redirects++) {
    const response = await request(current, options);
    const status = response.statusCode ?? 0;
    if (status >= 300 && status < 400 && response.headers.location) {
      response.resume();
      if (redirects >= maxRedirects) throw new TesseraError('FAILED_PRECONDITION', `the url source redirected more than ${maxRedirects} times (last: ${current.href})`, { hint: 'give the final URL directly' });
      current = new URL(response.headers.location, current);
      if (current.protocol !== 'http:' && current.protocol !== 'https:') throw invalidArgument('dataSource.params.url', `the url source redirected to ${quote(current.href)}, which is not http(s)`);
      continue;
    }
    if (status !== 200) {
      response.resume();
      // A refusal (404, 403, 410…) says the same again; a server error, a timeout or a throttle may pass.
      const passing = status >= 500 || status === 408 || status === 429;
      throw new TesseraError(passing ? 'UNAVAILABLE' : 'INVALID_ARGUMENT', `fetching the url source ${current.href} answered HTTP ${status}`, { field: 'dataSource.params.url', hint: passing ? 'the source may answer later; the task is tried again' : 'check that the URL is right and publicly readable' });
    }
    const declared = Number(response.headers['content-length']);
    if (Number.isFinite(declared) && declared > options.maxBytes) {
      response.destroy();
      throw tooLarge(current.href, options.maxBytes);
    }
    return { response, url: current };
  }
}

/** Checks that `url` answers (the same rules as a download) without reading its body: its file name and declared size (-1 when not declared). */
export async function probeUrl(url: string, options: UrlFetchOptions): Promise<{ name: string; size: number; url: string }> {
  const { response, url: final } = await openUrl(url, options);
  response.destroy();
  const declared = Number(response.headers['content-length']);
  return { name: fileNameFor(final), size: Number.isFinite(declared) ? declared : -1, url: final.href };
}

/** Downloads `url` into `folder`, naming the file after the URL's last path segment. Returns the file path. */
export async function fetchUrlToFolder(url: string, folder: string, options: UrlFetchOptions): Promise<string> {
  const { response, url: current } = await openUrl(url, options);
  const target = path.join(folder, fileNameFor(current));
  let received = 0;
  const limiter = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      received += chunk.length;
      done(received > options.maxBytes ? tooLarge(current.href, options.maxBytes) : null, chunk);
    },
  });
  try {
    await pipeline(response, limiter, createWriteStream(target));
  } catch (error) {
    await rm(target, { force: true });
    throw error;
  }
  return target;
}

function tooLarge(url: string, maxBytes: number): TesseraError {
  return new TesseraError('RESOURCE_EXHAUSTED', `the url source ${url} is larger than the limit of ${maxBytes} bytes`, { hint: 'the operator can raise TESSERA_MAX_SOURCE_BYTES' });
}

/** A safe local name from the URL's last segment: never a path, never empty. */
export function fileNameFor(url: URL): string {
  return plainFileName(decodeURIComponent(url.pathname.split('/').filter(Boolean).pop() ?? ''));
}

function request(url: URL, options: UrlFetchOptions): Promise<http.IncomingMessage> {
  if (!options.allowPrivate && isIP(url.hostname.replace(/^\[|\]$/g, '')) && isPrivateAddress(url.hostname.replace(/^\[|\]$/g, ''))) {
    return Promise.reject(refusal(url.hostname, url.hostname));
  }
  const client = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    let response: http.IncomingMessage | undefined;
    const req = client.get(url, { lookup: guardedLookup(options.allowPrivate), timeout: options.timeoutMs, signal: options.signal }, (answer) => {
      response = answer;
      resolve(answer);
    });
    // The socket went quiet (before the headers, or in the middle of the body): the reader of the
    // body gets this error, not a bare "aborted".
    req.on('timeout', () => {
      const error = new TesseraError('DEADLINE_EXCEEDED', `the url source ${url.href} did not answer within ${options.timeoutMs} ms`, { hint: 'check the server, or ask the operator to raise TESSERA_URL_TIMEOUT_MS' });
      if (response) response.destroy(error);
      req.destroy(error);
    });
    req.on('error', (error) => reject(error instanceof TesseraError ? error : new TesseraError('UNAVAILABLE', `fetching the url source ${url.href} failed: ${error.message}`, { hint: 'check that the host exists and is reachable from the Tessera server' })));
  });
}

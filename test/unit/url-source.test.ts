import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { TesseraError } from '../../src/domain/errors.js';
import { fetchUrlToFolder, isPrivateAddress, probeUrl } from '../../src/sources/url.js';

// The url data source against a real HTTP server on loopback: refused unless private addresses
// are allowed (also through DNS and redirects), streamed to disk, capped in size.

let server: http.Server;
let base = '';
const body = 'x'.repeat(10_000);

before(async () => {
  server = http.createServer((request, response) => {
    if (request.url === '/redirect') return void response.writeHead(302, { location: `${base}/file.txt` }).end();
    if (request.url === '/missing') return void response.writeHead(404).end();
    if (request.url === '/loop') return void response.writeHead(302, { location: `${base}/loop` }).end();
    // Headers at once, then the body stalls: a stuck download must end too, not only a silent server.
    if (request.url === '/stall') return void response.writeHead(200, { 'content-length': '100' }).write('partial');
    if (request.url === '/silent') return;
    response.writeHead(200, { 'content-length': body.length }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => new Promise<void>((resolve) => {
  server.closeAllConnections();
  server.close(() => resolve());
}));

const options = { allowPrivate: false, maxBytes: 1_000_000, timeoutMs: 5000 };

function folder(): string {
  return mkdtempSync(path.join(tmpdir(), 'url-source-'));
}

test('private and loopback addresses are refused, by literal and by name', async () => {
  for (const url of [`${base}/file.txt`, `${base.replace('127.0.0.1', 'localhost')}/file.txt`]) {
    const dir = folder();
    await assert.rejects(fetchUrlToFolder(url, dir, options), (error: unknown) => error instanceof TesseraError && error.code === 'PERMISSION_DENIED' && /private or loopback/.test(error.message));
    assert.deepEqual(readdirSync(dir), []);
    rmSync(dir, { recursive: true });
  }
  for (const address of ['10.1.2.3', '192.168.0.1', '169.254.169.254', '::1', '::ffff:127.0.0.1', 'fd00::1']) assert.equal(isPrivateAddress(address), true, address);
  for (const address of ['8.8.8.8', '2001:4860:4860::8888']) assert.equal(isPrivateAddress(address), false, address);
});

test('allowed, a URL is streamed to a file named after its path, following redirects', async () => {
  const dir = folder();
  try {
    const file = await fetchUrlToFolder(`${base}/redirect`, dir, { ...options, allowPrivate: true });
    assert.equal(path.basename(file), 'file.txt');
    assert.equal(readFileSync(file, 'utf8'), body);
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test('too large or failing sources leave no partial file', async () => {
  const dir = folder();
  try {
    await assert.rejects(fetchUrlToFolder(`${base}/big.bin`, dir, { ...options, allowPrivate: true, maxBytes: 100 }), /larger than the limit of 100 bytes/);
    await assert.rejects(fetchUrlToFolder(`${base}/missing`, dir, { ...options, allowPrivate: true }), /answered HTTP 404/);
    assert.equal(existsSync(path.join(dir, 'big.bin')), false);
    assert.deepEqual(readdirSync(dir), []);
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test('a silent or stalled source times out, endless redirects stop, and nothing partial is left', async () => {
  const dir = folder();
  const allowed = { ...options, allowPrivate: true, timeoutMs: 300 };
  try {
    for (const route of ['silent', 'stall']) {
      await assert.rejects(fetchUrlToFolder(`${base}/${route}`, dir, allowed), (error: unknown) => error instanceof TesseraError && error.code === 'DEADLINE_EXCEEDED' && /did not answer within 300 ms/.test(error.message), route);
    }
    await assert.rejects(fetchUrlToFolder(`${base}/loop`, dir, allowed), /redirected more than 5 times/);
    assert.deepEqual(readdirSync(dir), []);
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test('probing a source reads its name and size, under the same rules', async () => {
  assert.deepEqual(await probeUrl(`${base}/redirect`, { ...options, allowPrivate: true }), { name: 'file.txt', size: 10_000, url: `${base}/file.txt` });
  await assert.rejects(probeUrl(`${base}/file.txt`, options), /private or loopback/);
  await assert.rejects(probeUrl(`${base}/file.txt`, { ...options, allowPrivate: true, maxBytes: 10 }), /larger than the limit of 10 bytes/);
});

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { loadConfig } from '../../src/config/config.js';
import { imageMatches, likePatterns } from '../../src/domain/images.js';

// The settings of the runtime layer (issue 11) and secrets read from files: each bad value stops
// start-up with the setting's name, the value and an example.

test('secrets can come from files (X_FILE), never both ways, and an unreadable or empty file says which', (t) => {
  const folder = mkdtempSync(path.join(tmpdir(), 'tessera-secret-files-'));
  t.after(() => rmSync(folder, { recursive: true, force: true }));
  const file = (name: string, content: string) => {
    writeFileSync(path.join(folder, name), content, { mode: 0o600 });
    return path.join(folder, name);
  };
  const config = loadConfig({}, {
    TESSERA_SECRETS_KEY_FILE: file('sealing', 'a-sealing-key-of-at-least-32-characters-long\n'),
    TESSERA_METRICS_TOKEN_FILE: file('metrics', 'metrics-token-0123456789'),
    DATABASE_URL_FILE: file('database', 'postgres://tessera:pw@db.example:5432/tessera\n'),
    TESSERA_WORKER_TOKEN_FILE: file('worker', 'tsk_worker_token'),
  });
  assert.equal(config.secretsKey, 'a-sealing-key-of-at-least-32-characters-long', 'one trailing newline is dropped');
  assert.equal(config.metricsToken, 'metrics-token-0123456789');
  assert.equal(config.databaseUrl, 'postgres://tessera:pw@db.example:5432/tessera');
  assert.equal(config.workerToken, 'tsk_worker_token');
  assert.throws(() => loadConfig({}, { TESSERA_SECRETS_KEY: 'x'.repeat(40), TESSERA_SECRETS_KEY_FILE: file('again', 'y'.repeat(40)) }), /both TESSERA_SECRETS_KEY and TESSERA_SECRETS_KEY_FILE are set/);
  assert.throws(() => loadConfig({}, { TESSERA_API_KEY_FILE: path.join(folder, 'missing') }), /TESSERA_API_KEY_FILE = ".*missing" cannot be read: ENOENT/);
  assert.throws(() => loadConfig({}, { TESSERA_METRICS_TOKEN_FILE: file('empty', '\n') }), /TESSERA_METRICS_TOKEN_FILE = ".*empty" names an empty file/);
  // A value from a file is checked like one from the environment (and never echoed whole).
  assert.throws(() => loadConfig({}, { TESSERA_SECRETS_KEY_FILE: file('short', 'too-short') }), (error: Error) => /TESSERA_SECRETS_KEY/.test(error.message) && !error.message.includes('too-short'));
});

test('the sandbox is on unless turned off, and its limits, user, network and images are checked', () => {
  const defaults = loadConfig({}, {});
  assert.equal(defaults.sandbox, true);
  assert.deepEqual(defaults.taskUser, { uid: 65534, gid: 65534 });
  assert.equal(defaults.taskMemoryBytes, 2048 * 2 ** 20);
  assert.equal(defaults.taskProcesses, 512);
  assert.equal(defaults.taskNetwork, 'none');
  assert.equal(defaults.containerRuntime, 'auto');
  assert.equal(defaults.hostImages, undefined, 'unset: the command decides (tessera up maps python:* and node:*)');
  assert.equal(defaults.runtimeDir, path.join(defaults.home, 'runtime'));
  for (const [raw, on] of [['off', false], ['OFF', false], ['on', true], ['false', false], ['1', true]] as const) assert.equal(loadConfig({}, { TESSERA_SANDBOX: raw }).sandbox, on, raw);
  assert.throws(() => loadConfig({}, { TESSERA_SANDBOX: 'sometimes' }), /TESSERA_SANDBOX = "sometimes" is invalid: expected on or off/);
  assert.deepEqual(loadConfig({}, { TESSERA_TASK_USER: '1500:1600' }).taskUser, { uid: 1500, gid: 1600 });
  assert.throws(() => loadConfig({}, { TESSERA_TASK_USER: '0:0' }), /TESSERA_TASK_USER = "0:0" is invalid: expected uid:gid, two numbers other than 0 \(root\)/);
  assert.throws(() => loadConfig({}, { TESSERA_TASK_USER: 'nobody' }), /TESSERA_TASK_USER/);
  assert.equal(loadConfig({}, { TESSERA_TASK_NETWORK: 'public' }).taskNetwork, 'public');
  assert.throws(() => loadConfig({}, { TESSERA_TASK_NETWORK: 'everything' }), /TESSERA_TASK_NETWORK = "everything" is invalid: expected one of none, public/);
  assert.throws(() => loadConfig({}, { TESSERA_TASK_MEMORY_MB: '8' }), /TESSERA_TASK_MEMORY_MB = "8" is invalid: expected a whole number from 16/);
  assert.deepEqual(loadConfig({}, { TESSERA_HOST_IMAGES: 'python:*, node:20*,' }).hostImages, ['python:*', 'node:20*']);
  // Retention: task rows in hours (fractions too, for a short test), jobs in days.
  assert.equal(defaults.taskRowRetentionSeconds, 7 * 24 * 3600);
  assert.equal(defaults.jobRetentionSeconds, 90 * 86400);
  assert.equal(loadConfig({}, { TESSERA_TASK_ROW_RETENTION_HOURS: '0.5' }).taskRowRetentionSeconds, 1800);
  assert.throws(() => loadConfig({}, { TESSERA_TASK_ROW_RETENTION_HOURS: '0' }), /TESSERA_TASK_ROW_RETENTION_HOURS = "0" is invalid: expected a number ≥ 0.01/);
  assert.equal(defaults.maxLostLeases, 10);
  assert.deepEqual(loadConfig({}, { TESSERA_HOST_IMAGES: '' }).hostImages, [], 'set and empty: no image runs on the host');
  assert.throws(() => loadConfig({}, { TESSERA_HOST_IMAGES: 'python:*,bad image' }), /TESSERA_HOST_IMAGES = "bad image" is invalid/);
});

test('host-image patterns take images by name, with Docker Hub\'s defaults left out, in code and in SQL alike', () => {
  assert.ok(imageMatches('python:*', 'python:3.11-slim'));
  assert.ok(imageMatches('python:*', 'docker.io/library/python:3.11'));
  assert.ok(imageMatches('*', 'ghcr.io/acme/whisper:2'));
  assert.ok(!imageMatches('python:*', 'pythonista:1'));
  assert.ok(!imageMatches('python:3.1?', 'python:3.11'), '"?" is no wildcard');
  assert.ok(!imageMatches('node:20', 'node:20-slim'));
  assert.deepEqual(likePatterns(['python:*', 'a_b%c\\d']), ['python:%', 'a\\_b\\%c\\\\d']);
});

test('trusted proxies are off, a number of hops, or addresses and ranges; the failure limit is a positive number', () => {
  assert.equal(loadConfig({}, {}).trustProxy, false);
  assert.equal(loadConfig({}, { TESSERA_TRUST_PROXY: 'off' }).trustProxy, false);
  assert.equal(loadConfig({}, { TESSERA_TRUST_PROXY: '2' }).trustProxy, 2);
  assert.deepEqual(loadConfig({}, { TESSERA_TRUST_PROXY: '10.0.0.0/8, 127.0.0.1,fd00::/8' }).trustProxy, ['10.0.0.0/8', '127.0.0.1', 'fd00::/8']);
  for (const bad of ['10.0.0.0/33', 'proxy.example', '10.0.0.1/8/1', 'yes']) {
    assert.throws(() => loadConfig({}, { TESSERA_TRUST_PROXY: bad }), /setting TESSERA_TRUST_PROXY = .* is invalid: expected off, a number of proxy hops, or proxy addresses and CIDR ranges/, bad);
  }
  assert.equal(loadConfig({}, {}).authFailuresPerMinute, 50);
  assert.equal(loadConfig({}, { TESSERA_AUTH_FAILURES_PER_MINUTE: '5' }).authFailuresPerMinute, 5);
  assert.throws(() => loadConfig({}, { TESSERA_AUTH_FAILURES_PER_MINUTE: '0' }), /TESSERA_AUTH_FAILURES_PER_MINUTE/);
});

test('the retry back-off is a base and a cap in seconds, checked', () => {
  assert.deepEqual(loadConfig({}, {}).retryBackoff, { baseSeconds: 1, maxSeconds: 30 });
  assert.deepEqual(loadConfig({}, { TESSERA_RETRY_BACKOFF_SECONDS: '0' }).retryBackoff, { baseSeconds: 0, maxSeconds: 30 });
  assert.deepEqual(loadConfig({}, { TESSERA_RETRY_BACKOFF_SECONDS: '0.5', TESSERA_RETRY_BACKOFF_MAX_SECONDS: '4' }).retryBackoff, { baseSeconds: 0.5, maxSeconds: 4 });
  assert.throws(() => loadConfig({}, { TESSERA_RETRY_BACKOFF_SECONDS: 'soon' }), /TESSERA_RETRY_BACKOFF_SECONDS = "soon" is invalid: expected a number/);
  assert.throws(() => loadConfig({}, { TESSERA_RETRY_BACKOFF_SECONDS: '7200' }), /TESSERA_RETRY_BACKOFF_SECONDS = "7200" is invalid: expected seconds from 0 \(retry at once\) to 3600/);
  assert.throws(() => loadConfig({}, { TESSERA_RETRY_BACKOFF_SECONDS: '10', TESSERA_RETRY_BACKOFF_MAX_SECONDS: '5' }), /TESSERA_RETRY_BACKOFF_MAX_SECONDS = "5" is invalid: expected seconds from TESSERA_RETRY_BACKOFF_SECONDS \(10\) to 86400/);
});

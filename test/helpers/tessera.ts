import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import type { RunningTessera } from '../../src/cli/start.js';
import { startTessera } from '../../src/cli/start.js';
import type { Config } from '../../src/config/config.js';
import { loadConfig } from '../../src/config/config.js';
import { createKey } from '../../src/engine/accounts.js';
import { createLogger } from '../../src/cli/logger.js';
import type { Db } from '../../src/store/db.js';
import type { RuntimeDescription } from '../../src/runner/runtime.js';

// A whole Tessera (API on an ephemeral port, scheduler, in-process worker slots) over the test's
// fresh database, with two accounts, and a small client that speaks the public HTTP API.

export interface TestTessera extends RunningTessera {
  config: Config;
  apiKey: string;
  otherApiKey: string;
  /** The operator's key (/v1/operator). */
  operatorKey: string;
  /** Calls the API as the first account (or with `key`); returns status and parsed body. */
  call(method: string, route: string, body?: unknown, key?: string | null): Promise<{ status: number; body: any }>;
}

/** Pass `logs` to receive every log line the server writes (at trace level), e.g. to search it for secrets. */
export async function startTestTessera(db: Db, overrides: Partial<Config> = {}, options: { logs?: string[] } = {}): Promise<TestTessera> {
  const home = mkdtempSync(path.join(tmpdir(), 'tessera-test-'));
  // Only PATH from the real environment: a developer's DATABASE_URL or TESSERA_* must not leak in.
  // Retries back off by tens of milliseconds: tests of failures keep their retries without
  // waiting seconds for each (the back-off's own test sets it longer).
  const testEnv = { PATH: process.env.PATH, TESSERA_RETRY_BACKOFF_SECONDS: '0.05', TESSERA_RETRY_BACKOFF_MAX_SECONDS: '0.2' };
  const config: Config = { ...loadConfig({ home, port: 0, slots: 2 }, testEnv), allowPrivateUrls: true, ...overrides };
  const logger = options.logs
    ? createLogger('trace', { write: (line: string) => void options.logs!.push(line) })
    : pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
  const tessera = await startTessera({ config, logger, db });
  // A second start on the same database finds its first account made: it gets a key of its own.
  const apiKey = tessera.engine.firstKey?.apiKey ?? (await createKey(db, {})).apiKey;
  const otherApiKey = (await createKey(db, { newAccount: true })).apiKey;
  const operatorKey = tessera.engine.operatorKey?.apiKey ?? (await createKey(db, { scope: 'operator' })).apiKey;
  return {
    ...tessera,
    config,
    apiKey,
    otherApiKey,
    operatorKey,
    async call(method, route, body, key = apiKey) {
      const headers: Record<string, string> = {};
      if (key !== null) headers.authorization = `Bearer ${key}`;
      let payload: string | undefined;
      if (body !== undefined) {
        headers['content-type'] = 'application/json';
        payload = typeof body === 'string' && body.startsWith('RAW:') ? body.slice(4) : JSON.stringify(body);
      }
      const response = await fetch(`${tessera.url}${route}`, { method, headers, ...(payload === undefined ? {} : { body: payload }) });
      const text = await response.text();
      let parsed: unknown = text;
      try {
        parsed = JSON.parse(text);
      } catch {
        // Not JSON (a file download): keep the text.
      }
      return { status: response.status, body: parsed };
    },
    async stop() {
      await tessera.stop();
      rmSync(home, { recursive: true, force: true });
    },
  };
}

/** Polls `check` until it returns a value, or fails after `timeoutMs` with `what` in the message. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined | null | false>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${String(last)})` : ''}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Whether a process exists (signal 0 checks without sending anything). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** An in-process worker's identity for tests that start their own worker. */
export function testWorker(name: string, offer: Partial<{ region: string; cpus: number; memoryGb: number; gpus: string[]; containers: boolean; hostImages: string[] }> = {}) {
  const runtime: RuntimeDescription = { sandbox: 'test', limits: 'test', network: 'none', containers: null, images: [], hostImages: ['*'] };
  return { id: `${name}-${process.pid}`, name, slots: 2, region: '', cpus: 4, memoryGb: 8, gpus: [], containers: false, hostImages: ['*'], runtime, ...offer };
}

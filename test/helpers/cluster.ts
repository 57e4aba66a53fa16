import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { packageRoot } from '../../src/config/config.js';
import type { ApiCaller } from './components.js';

// Real `tessera server` and `tessera worker` processes sharing one PostgreSQL schema and one
// blob folder, for the multi-process and chaos tests.

const BIN = path.join(packageRoot(), 'bin', 'tessera.js');

export interface Process {
  child: ChildProcess;
  info: Record<string, any>;
  output: () => string;
}

export async function startProcess(args: string[], env: Record<string, string>): Promise<Process> {
  const child = spawn(process.execPath, [BIN, ...args], { env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stderr!.on('data', (chunk) => (output = (output + chunk).slice(-20_000)));
  const info = await new Promise<Record<string, any>>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', (line) => resolve(JSON.parse(line)));
    child.once('exit', (code, signal) => reject(new Error(`tessera ${args[0]} exited (${code ?? signal}): ${output}`)));
  });
  return { child, info, output: () => output };
}

export async function stopProcess(process: Process | undefined, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (!process || process.child.exitCode !== null || process.child.signalCode !== null) return;
  const exited = new Promise((resolve) => process.child.once('exit', resolve));
  process.child.kill(signal);
  await exited;
}

export function clusterEnv(databaseUrl: string, schema: string, home: string, extra: Record<string, string> = {}): Record<string, string> {
  // The test apps name python images; their agents run them in the host sandbox, as `tessera up` does.
  return { DATABASE_URL: databaseUrl, TESSERA_DATABASE_SCHEMA: schema, TESSERA_HOME: home, TESSERA_ALLOW_PRIVATE_URLS: '1', TESSERA_LOG_LEVEL: 'warn', TESSERA_HOST_IMAGES: 'python:*', TESSERA_RETRY_BACKOFF_SECONDS: '0.05', TESSERA_RETRY_BACKOFF_MAX_SECONDS: '0.2', ...extra };
}

/** The API of a server process as the account of `key` (a key or a full Authorization value). */
export function apiCaller(base: string, key: string): ApiCaller {
  const authorization = /^bearer /i.test(key) ? key : `Bearer ${key}`;
  return {
    async call(method, route, body) {
      const response = await fetch(`${base}${route}`, { method, headers: { authorization, ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
      const text = await response.text();
      let parsed: unknown = text;
      try {
        parsed = JSON.parse(text);
      } catch {
        // Not JSON: keep the text.
      }
      return { status: response.status, body: parsed };
    },
  };
}

import { spawn } from 'node:child_process';
import path from 'node:path';
import { packageRoot } from '../../src/config/config.js';

// Runs the real `tessera` command (bin/tessera.js over dist/) as a child process.

export const TESSERA_BIN = path.join(packageRoot(), 'bin', 'tessera.js');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runCli(args: string[], options: { cwd?: string; env?: Record<string, string>; timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [TESSERA_BIN, ...args], {
      cwd: options.cwd ?? process.cwd(),
      // Only PATH and what the test gives: a developer's TESSERA_* must not leak in.
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 120_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Parses the --json line a command printed, with the command's output in the error if it is not JSON. */
export function jsonOf(result: CliResult): any {
  try {
    return JSON.parse(result.stdout.trim().split('\n').at(-1) ?? '');
  } catch {
    throw new Error(`expected JSON on stdout (exit ${result.code}):\nstdout: ${result.stdout}\nstderr: ${result.stderr}`);
  }
}

#!/usr/bin/env node
// Runs every compiled test file (dist/test/**/*.test.js) with node's test runner, streams its
// report, and ends with the line CI reads: "N passed, N failed".
// TEST_FILTER=store runs only the files whose path contains "store".
import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const testDir = path.join(root, 'dist', 'test');

function findTests(dir) {
  const found = [];
  for (const entry of readdirSync(dir).sort()) {
    const full = path.join(dir, entry);
    if (statSync(full).isDirectory()) found.push(...findTests(full));
    else if (entry.endsWith('.test.js')) found.push(full);
  }
  return found;
}

const filter = process.env.TEST_FILTER ?? '';
const files = findTests(testDir).filter((file) => path.relative(testDir, file).includes(filter));
if (files.length === 0) {
  console.error(`no test files under ${testDir}${filter ? ` matching TEST_FILTER=${filter}` : ''}; run npm run build first`);
  console.log('0 passed, 1 failed');
  process.exit(1);
}

// Ordinary files two at a time (the machine has two cores); the heavy ones (many processes,
// tens of thousands of requests, the benchmarks' smoke run) afterwards, one at a time, so they
// do not starve each other.
const HEAVY = [`${path.sep}cluster${path.sep}`, `${path.sep}fuzz${path.sep}`, `${path.sep}bench${path.sep}`];
const heavy = files.filter((file) => HEAVY.some((part) => file.includes(part)));
const light = files.filter((file) => !heavy.includes(file));

const totals = { pass: 0, fail: 0, cancelled: 0, skipped: 0 };
let runnerFailed = false;

function run(group, concurrency) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--test', '--test-reporter=spec', `--test-concurrency=${concurrency}`, ...group], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
    // The runner's summary lines ("ℹ pass 12"), wherever they fall: a long list of failures follows them.
    const summary = new Map();
    let partial = '';
    child.stdout.on('data', (chunk) => {
      process.stdout.write(chunk);
      const lines = (partial + chunk.toString()).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        const match = /^ℹ (tests|pass|fail|cancelled|skipped|todo) (\d+)$/.exec(line);
        if (match) summary.set(match[1], Number(match[2]));
      }
    });
    child.on('close', (code, signal) => {
      if (!summary.has('pass') || !summary.has('fail')) {
        console.error(`the test runner ended (code ${code}, signal ${signal}) without its summary`);
        runnerFailed = true;
      } else if (code !== 0 && summary.get('fail') === 0 && summary.get('cancelled') === 0) {
        runnerFailed = true;
      }
      for (const key of Object.keys(totals)) totals[key] += summary.get(key) ?? 0;
      resolve();
    });
  });
}

if (light.length > 0) await run(light, 2);
if (heavy.length > 0) await run(heavy, 1);
const failed = totals.fail + totals.cancelled + (runnerFailed && totals.fail + totals.cancelled === 0 ? 1 : 0);
if (totals.skipped > 0) console.log(`${totals.skipped} skipped`);
console.log(`${totals.pass} passed, ${failed} failed`);
process.exit(failed > 0 ? 1 : 0);

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

// Two files at a time: the machine has two cores, and each file starts real servers and children.
const child = spawn(process.execPath, ['--test', '--test-reporter=spec', '--test-concurrency=2', ...files], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
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
  const count = (label) => summary.get(label) ?? Number.NaN;
  const passed = count('pass');
  let failed = count('fail') + (Number.isNaN(count('cancelled')) ? 0 : count('cancelled'));
  const skipped = count('skipped');
  if (Number.isNaN(passed) || Number.isNaN(failed)) {
    console.error(`the test runner ended (code ${code}, signal ${signal}) without its summary`);
    console.log(`${Number.isNaN(passed) ? 0 : passed} passed, ${Math.max(1, Number.isNaN(failed) ? 1 : failed)} failed`);
    process.exit(1);
  }
  if (code !== 0 && failed === 0) failed = 1;
  if (skipped > 0) console.log(`${skipped} skipped`);
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed > 0 ? 1 : 0);
});

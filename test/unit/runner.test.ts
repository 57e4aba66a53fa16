import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { failureSummary, runProcess } from '../../src/runner/runner.js';
import { alive } from '../helpers/tessera.js';

// Real child processes: exit codes, stderr tails, and timeouts that kill the whole process group.


test('a failing child reports its exit code and the tail of its stderr', async () => {
  const cwd = mkdtempSync(path.join(tmpdir(), 'runner-'));
  try {
    const result = await runProcess({ command: 'python3', args: ['-c', 'import sys\nfor i in range(5000): print("line", i, file=sys.stderr)\nsys.exit(4)'], cwd, env: { PATH: process.env.PATH ?? '' }, outputLimit: 1024 });
    assert.equal(result.exitCode, 4);
    assert.ok(result.stderrTail.length <= 1024);
    assert.match(result.stderrTail, /line 4999\n$/);
    assert.match(failureSummary(result, 'app x@1.0'), /^app x@1\.0 exited with code 4: [\s\S]*line 4999$/);
  } finally {
    rmSync(cwd, { recursive: true, force: true });
  }
});

test('a timeout kills the child and the processes it started', async () => {
  const cwd = mkdtempSync(path.join(tmpdir(), 'runner-'));
  try {
    // The shell starts a grandchild that would outlive a plain kill of the shell.
    const result = await runProcess({ command: 'sh', args: ['-c', 'sleep 60 & echo $! ; wait'], cwd, env: { PATH: process.env.PATH ?? '' }, timeoutMs: 500 });
    assert.equal(result.timedOut, true);
    const grandchild = Number(result.stdoutTail.trim());
    assert.ok(grandchild > 0);
    const deadline = Date.now() + 5000;
    while (alive(grandchild) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(alive(grandchild), false, 'the grandchild was killed with its group');
    assert.match(failureSummary(result, 'app', 500), /timed out after 1 s and was killed/);
  } finally {
    rmSync(cwd, { recursive: true, force: true });
  }
});

test('children see only the environment they are given', async () => {
  const cwd = mkdtempSync(path.join(tmpdir(), 'runner-'));
  try {
    const result = await runProcess({ command: 'sh', args: ['-c', 'env'], cwd, env: { PATH: process.env.PATH ?? '', ONLY: 'this' } });
    assert.equal(result.exitCode, 0);
    assert.match(result.stdoutTail, /ONLY=this/);
    assert.doesNotMatch(result.stdoutTail, /DATABASE_URL|TESSERA_/);
  } finally {
    rmSync(cwd, { recursive: true, force: true });
  }
});

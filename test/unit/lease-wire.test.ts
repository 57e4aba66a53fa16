import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { WireLease } from '../../src/domain/lease-wire.js';
import { compactLeases, expandLeases } from '../../src/domain/lease-wire.js';

// The compact form of a lease answer: what is shared is sent once per (job, kind, attempts), and
// expanding it gives every lease back whole, in order, however the groups interleave.

function lease(taskId: number, jobId: string, kind: WireLease['kind'], maxAttempts: number): WireLease {
  return {
    taskId, leaseToken: `token-${taskId}`, jobId, accountId: `account-of-${jobId}`, kind, chunkIndex: taskId * 2, attempt: 1, maxAttempts,
    inputKey: kind === 'app' ? `jobs/${jobId}/chunks/${taskId}` : null, inputSize: taskId % 3 === 0 ? 0 : 100 + taskId,
    component: kind === 'app' ? { manifest: { name: `app-of-${jobId}` } as never, archive: { sha256: `sha-${jobId}`, size: 10 } } : null,
    params: { job: jobId, kind }, timeoutMs: 60_000, inputUrl: kind === 'app' ? `http://server/jobs/${jobId}/chunks/${taskId}` : null,
  };
}

test('leases of interleaved groups come back whole and in order, each group sent once', () => {
  const leases = [
    lease(1, 'job-a', 'app', 3), lease(2, 'job-a', 'app', 3), lease(3, 'job-b', 'app', 1), lease(4, 'job-a', 'app', 3),
    lease(5, 'job-a', 'partition', 3), lease(6, 'job-a', 'app', 2), lease(7, 'job-b', 'app', 1), lease(8, 'job-b', 'assemble', 1),
  ];
  const compact = compactLeases(leases);
  assert.deepEqual(Object.keys(compact.groups).sort(), ['job-a/app/2', 'job-a/app/3', 'job-a/partition/3', 'job-b/app/1', 'job-b/assemble/1']);
  assert.deepEqual(compact.leases.map((own) => own.group), ['job-a/app/3', 'job-a/app/3', 'job-b/app/1', 'job-a/app/3', 'job-a/partition/3', 'job-a/app/2', 'job-b/app/1', 'job-b/assemble/1']);
  assert.deepEqual(expandLeases(compact), leases);
  assert.deepEqual(expandLeases(JSON.parse(JSON.stringify(compact))), leases, 'the same after a trip through JSON');
  assert.deepEqual(compactLeases([]), { groups: {}, leases: [] });
});

test('a lease naming a group the answer does not hold is an error, not a half-built lease', () => {
  const compact = compactLeases([lease(1, 'job-a', 'app', 3)]);
  compact.leases[0]!.group = 'job-z/app/3';
  assert.throws(() => expandLeases(compact), /lease of task 1 names group "job-z\/app\/3", which the answer does not contain/);
});

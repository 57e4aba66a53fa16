import assert from 'node:assert/strict';
import path from 'node:path';
import { packFolder } from '../../src/blobs/archive.js';
import { packageRoot } from '../../src/config/config.js';
import type { ApiCaller } from './components.js';
import { endedJob, firstResult, installTemplate } from './components.js';

// A hostile tenant's app (test/fixtures/hostile), pushed like any app, and the attacks it tries
// from inside a task: the hostile-app suites (embedded and server + agent) run them and check
// that nothing got through.

/** Pushes the hostile app and its template ("hostile": passthrough partitioner and assembler). */
export async function installHostile(api: ApiCaller): Promise<void> {
  const archive = (await packFolder(path.join(packageRoot(), 'test', 'fixtures', 'hostile'))).toString('base64');
  const pushed = await api.call('POST', '/v1/dev/apps', { data: archive });
  assert.equal(pushed.status, 200, JSON.stringify(pushed.body));
  await installTemplate(api, { id: 'hostile', description: 'attacks', app: 'hostile', partitioner: 'passthrough', assembler: 'passthrough', dataSource: { dataSourceDescriptor: 'bypass' }, config: { maxTaskRetries: 0 } });
}

export interface AttackOutcome {
  job: any;
  /** What the app reported (result.json), when the job completed. */
  result: any;
}

/** Starts an attack and returns its job id (for attacks that run beside others). */
export async function startAttack(api: ApiCaller, attack: string, params: Record<string, unknown> = {}, config: Record<string, unknown> = {}): Promise<string> {
  const created = await api.call('POST', '/v1/customer/jobs', { templateId: 'hostile', params: { app: { attack, ...params } }, config });
  assert.equal(created.status, 200, JSON.stringify(created.body));
  const jobId = created.body.job.id as string;
  assert.equal((await api.call('POST', `/v1/customer/jobs/${jobId}/run`)).status, 200);
  return jobId;
}

export async function attackOutcome(api: ApiCaller, jobId: string, timeoutMs = 60_000): Promise<AttackOutcome> {
  const job = await endedJob(api, jobId, timeoutMs);
  return { job, result: job.state === 'JOB_STATE_COMPLETE' ? JSON.parse(await firstResult(api, jobId)) : undefined };
}

/** Runs one attack to its end: the job, and what the app found when it completed. */
export async function attack(api: ApiCaller, name: string, params: Record<string, unknown> = {}, config: Record<string, unknown> = {}): Promise<AttackOutcome> {
  return attackOutcome(api, await startAttack(api, name, params, config));
}

/** The result of an attack that must complete (its app reports what it found). */
export async function completedAttack(api: ApiCaller, name: string, params: Record<string, unknown> = {}): Promise<any> {
  const outcome = await attack(api, name, params);
  assert.equal(outcome.job.state, 'JOB_STATE_COMPLETE', `${name}: ${outcome.job.errorMessage}`);
  return outcome.result;
}

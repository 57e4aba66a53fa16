import assert from 'node:assert/strict';
import { TesseraError } from '../../src/domain/errors.js';
import type { JobDraft } from '../../src/store/jobs.js';
import { insertAccount } from '../../src/store/accounts.js';
import type { Db } from '../../src/store/db.js';
import { BUILTIN_OWNER, getTemplate, upsertTemplate } from '../../src/store/catalog.js';
import { getJobView, listJobsFiltered } from '../../src/store/job-queries.js';
import { failJob, getJob, insertJob, listJobEvents, softDeleteJob, transitionJob, updateNewJob } from '../../src/store/jobs.js';
import { forEachEngine } from '../helpers/db.js';

// Jobs in the store: tenant scoping, guarded transitions, listing and filtering.

const draft = (overrides: Partial<JobDraft> = {}): JobDraft => ({
  templateId: 'word-count',
  name: '',
  description: '',
  priority: 'EXECUTION_PRIORITY_UNDEFINED',
  config: { taskTimeout: 60 },
  regions: {},
  dataSource: { dataSourceDescriptor: 'bypass', params: {} },
  dataDestination: { dataSourceDescriptor: 'bucket', params: {} },
  params: {},
  appId: 'word-count',
  startAt: null,
  ...overrides,
});

async function setUp(db: Db): Promise<void> {
  await insertAccount(db, 'alice01');
  await insertAccount(db, 'bob0001');
}

forEachEngine('a job belongs to its account and changes only while NEW', async (db) => {
  await setUp(db);
  const job = await insertJob(db, { id: 'J1', accountId: 'alice01', ...draft({ name: 'first' }) });
  assert.equal(job.state, 'JOB_STATE_NEW');
  assert.ok(job.stateTimestamps.JOB_STATE_NEW instanceof Date);
  assert.equal((await getJob(db, 'alice01', 'J1'))?.name, 'first');
  assert.equal(await getJob(db, 'bob0001', 'J1'), null, "another account's job does not exist for it");
  assert.equal(await updateNewJob(db, 'bob0001', 'J1', draft({ name: 'stolen' })), null);
  assert.equal((await updateNewJob(db, 'alice01', 'J1', draft({ name: 'renamed' })))?.name, 'renamed');

  assert.deepEqual([job.submittedAt, job.startedAt, job.endedAt], [null, null, null]);

  assert.equal(await transitionJob(db, 'J1', 'JOB_STATE_STARTED', 'JOB_STATE_UPLOADING'), false, 'the guard refuses a wrong "from"');
  assert.equal((await getJob(db, 'alice01', 'J1'))?.state, 'JOB_STATE_NEW', 'and changes nothing');
  assert.equal(await transitionJob(db, 'J1', 'JOB_STATE_NEW', 'JOB_STATE_STARTED'), true);
  assert.equal(await transitionJob(db, 'J1', 'JOB_STATE_NEW', 'JOB_STATE_STARTED'), false, 'the guard refuses a second start');
  assert.equal(await updateNewJob(db, 'alice01', 'J1', draft({ name: 'late' })), null, 'no change after NEW');
  let current = (await getJob(db, 'alice01', 'J1'))!;
  assert.equal(current.state, 'JOB_STATE_STARTED');
  // submittedAt marks STARTED (validated and accepted), startedAt the first real work (UPLOADING).
  assert.ok(current.submittedAt instanceof Date && current.startedAt === null && current.endedAt === null);
  assert.equal(await transitionJob(db, 'J1', 'JOB_STATE_STARTED', 'JOB_STATE_UPLOADING', { numChunks: 4 }), true);
  current = (await getJob(db, 'alice01', 'J1'))!;
  assert.ok(current.startedAt instanceof Date && current.endedAt === null);
  assert.equal(current.numChunks, 4);
  assert.deepEqual(Object.keys(current.stateTimestamps), ['JOB_STATE_NEW', 'JOB_STATE_STARTED', 'JOB_STATE_UPLOADING']);
  assert.ok(current.stateTimestamps.JOB_STATE_NEW! <= current.stateTimestamps.JOB_STATE_STARTED! && current.stateTimestamps.JOB_STATE_STARTED! <= current.stateTimestamps.JOB_STATE_UPLOADING!);

  assert.equal(await failJob(db, 'J1', 'chunk 3 failed'), true);
  assert.equal(await failJob(db, 'J1', 'again'), false, 'a final state is final');
  assert.equal(await transitionJob(db, 'J1', 'JOB_STATE_UPLOADING', 'JOB_STATE_PARTITIONING'), false);
  current = (await getJob(db, 'alice01', 'J1'))!;
  assert.equal(current.state, 'JOB_STATE_FAILED');
  assert.equal(current.errorMessage, 'chunk 3 failed', 'the first failure is the one kept');
  assert.ok(current.endedAt instanceof Date && current.stateTimestamps.JOB_STATE_FAILED instanceof Date);
  const events = await listJobEvents(db, 'J1');
  assert.deepEqual(events.map((event) => event.state), ['JOB_STATE_NEW', 'JOB_STATE_STARTED', 'JOB_STATE_UPLOADING', 'JOB_STATE_FAILED']);

  assert.equal(await softDeleteJob(db, 'bob0001', 'J1'), false);
  assert.equal(await softDeleteJob(db, 'alice01', 'J1'), true);
  assert.equal(await getJob(db, 'alice01', 'J1'), null);
}, { migrated: true });

forEachEngine('COMPLETE is final too: endedAt is set and a late failure is refused', async (db) => {
  await setUp(db);
  await insertJob(db, { id: 'J3', accountId: 'alice01', ...draft() });
  const path = ['JOB_STATE_NEW', 'JOB_STATE_STARTED', 'JOB_STATE_UPLOADING', 'JOB_STATE_PARTITIONING', 'JOB_STATE_PARTITIONED', 'JOB_STATE_TASKS_COMPLETED',
    'JOB_STATE_MERGING', 'JOB_STATE_MERGED', 'JOB_STATE_DOWNLOADING', 'JOB_STATE_COMPLETE'] as const;
  for (let step = 1; step < path.length; step++) {
    assert.equal((await getJob(db, 'alice01', 'J3'))?.endedAt, null, `not ended in ${path[step - 1]}`);
    assert.equal(await transitionJob(db, 'J3', path[step - 1]!, path[step]!), true, `${path[step - 1]} → ${path[step]}`);
  }
  const done = (await getJob(db, 'alice01', 'J3'))!;
  assert.ok(done.endedAt instanceof Date);
  assert.deepEqual(Object.keys(done.stateTimestamps), [...path]);
  assert.equal(await failJob(db, 'J3', 'too late'), false);
  assert.equal((await getJob(db, 'alice01', 'J3'))?.errorMessage, null);
  assert.deepEqual((await listJobEvents(db, 'J3')).map((event) => event.state), [...path]);
}, { migrated: true });

forEachEngine('only one of many concurrent transitions wins', async (db) => {
  await setUp(db);
  await insertJob(db, { id: 'J2', accountId: 'alice01', ...draft() });
  const results = await Promise.all(Array.from({ length: 8 }, () => db.transaction((tx) => transitionJob(tx, 'J2', 'JOB_STATE_NEW', 'JOB_STATE_STARTED'))));
  assert.equal(results.filter(Boolean).length, 1);
  assert.equal((await listJobEvents(db, 'J2')).filter((event) => event.state === 'JOB_STATE_STARTED').length, 1);
}, { migrated: true });

forEachEngine('jobs are listed, ordered, paged and filtered per account', async (db) => {
  await setUp(db);
  for (let index = 0; index < 5; index++) {
    await insertJob(db, { id: `L${index}`, accountId: 'alice01', ...draft({ name: `job ${index}`, config: { taskTimeout: 10 * index }, regions: { whitelist: index % 2 ? ['eu'] : ['us'] } }) });
  }
  await insertJob(db, { id: 'B0', accountId: 'bob0001', ...draft({ name: 'job 9' }) });
  await transitionJob(db, 'L3', 'JOB_STATE_NEW', 'JOB_STATE_STARTED');

  const all = await listJobsFiltered(db, 'alice01', { limit: 2, offset: 1, orderBy: 'name asc' });
  assert.equal(all.total, 5);
  assert.deepEqual(all.jobs.map((job) => job.id), ['L1', 'L2']);
  const ids = async (filters: Parameters<typeof listJobsFiltered>[2]['filters']) =>
    (await listJobsFiltered(db, 'alice01', { limit: 50, offset: 0, orderBy: 'name', filters })).jobs.map((job) => job.id);
  assert.deepEqual(await ids([{ field: 'state', condition: 'FILTER_CONDITION_EQ', value: 'JOB_STATE_STARTED' }]), ['L3']);
  assert.deepEqual(await ids([{ field: 'state', condition: 'FILTER_CONDITION_NEQ', value: { '@type': 'type.googleapis.com/google.protobuf.Value', value: 'JOB_STATE_STARTED' } }]), ['L0', 'L1', 'L2', 'L4']);
  assert.deepEqual(await ids([{ field: 'config.taskTimeout', condition: 'FILTER_CONDITION_GTE', value: '20' }]), ['L2', 'L3', 'L4']);
  assert.deepEqual(await ids([{ field: 'name', condition: 'FILTER_CONDITION_LIKE', value: 'job _' }, { field: 'id', condition: 'FILTER_CONDITION_IN', value: ['L0', 'L4', 'B0'] }]), ['L0', 'L4']);
  assert.deepEqual(await ids([{ field: 'regions.whitelist', condition: 'FILTER_CONDITION_ARRAY_CONTAINS', value: 'eu' }]), ['L1', 'L3']);
  assert.deepEqual(await ids([{ field: 'createdAt', condition: 'FILTER_CONDITION_LT', value: '2000-01-01T00:00:00Z' }]), []);
  // Hostile input stays data: it is a bound parameter, never SQL.
  assert.deepEqual(await ids([{ field: 'name', condition: 'FILTER_CONDITION_EQ', value: "x' OR '1'='1" }]), []);

  const refused = async (filters: Parameters<typeof listJobsFiltered>[2]['filters'], orderBy?: string) =>
    assert.rejects(listJobsFiltered(db, 'alice01', { limit: 5, offset: 0, orderBy, filters }), (error: unknown) => error instanceof TesseraError && error.code === 'INVALID_ARGUMENT');
  await refused([{ field: 'account_id', condition: 'FILTER_CONDITION_EQ', value: 'bob0001' }]);
  await refused([{ field: 'createdAt', condition: 'FILTER_CONDITION_LIKE', value: '%' }]);
  await refused([{ field: 'numChunks', condition: 'FILTER_CONDITION_GT', value: 'many' }]);
  await refused([], 'name; DROP TABLE jobs');
}, { migrated: true });

forEachEngine('a job is read with the template it names in one query: the account\'s own before the built-in, none once it is gone', async (db) => {
  await setUp(db);
  const template = { app: 'an-app', partitioner: 'a-partitioner', assembler: 'an-assembler', params: { app: { words: 3 } }, config: { taskTimeout: 9 }, jobType: 'jt' };
  await upsertTemplate(db, { id: 'shared-t', owner: BUILTIN_OWNER, description: 'the built-in one', ...template });
  await upsertTemplate(db, { id: 'shared-t', owner: 'alice01', description: 'alice\'s own', ...template, params: { app: { words: 5 } } });
  await insertJob(db, { id: 'J1', accountId: 'alice01', ...draft({ templateId: 'shared-t', name: 'mine' }) });
  await insertJob(db, { id: 'J2', accountId: 'bob0001', ...draft({ templateId: 'shared-t' }) });
  await insertJob(db, { id: 'J3', accountId: 'alice01', ...draft({ templateId: 'gone-t' }) });

  const mine = await getJobView(db, 'alice01', 'J1');
  assert.deepEqual(mine?.job, await getJob(db, 'alice01', 'J1'), 'the job as getJob reads it');
  assert.equal(mine?.template?.description, "alice's own");
  assert.deepEqual(mine?.template, await getTemplate(db, 'alice01', 'shared-t'), 'the template as getTemplate reads it, defaults and all');
  assert.deepEqual(mine?.template?.params, { app: { words: 5 } });
  const bobs = await getJobView(db, 'bob0001', 'J2');
  assert.equal(bobs?.template?.description, 'the built-in one', 'an account without its own template gets the built-in');
  assert.deepEqual(bobs?.template, await getTemplate(db, 'bob0001', 'shared-t'));
  const orphan = await getJobView(db, 'alice01', 'J3');
  assert.equal(orphan?.job.id, 'J3');
  assert.equal(orphan?.template, null, 'a template deleted since is no template, not a missing job');
  assert.equal(await getJobView(db, 'bob0001', 'J1'), null, "another account's job does not exist for it");
  assert.equal(await getJobView(db, 'alice01', 'nope'), null);
  assert.equal(await softDeleteJob(db, 'alice01', 'J1'), true);
  assert.equal(await getJobView(db, 'alice01', 'J1'), null, 'a deleted job is gone');
}, { migrated: true });

import assert from 'node:assert/strict';
import { TesseraError } from '../../src/domain/errors.js';
import { insertAccount } from '../../src/store/accounts.js';
import type { Db } from '../../src/store/db.js';
import type { FilterCondition, JobFilter } from '../../src/store/job-queries.js';
import { listJobsFiltered } from '../../src/store/job-queries.js';
import type { JobDraft } from '../../src/store/jobs.js';
import { failJob, insertJob, transitionJob } from '../../src/store/jobs.js';
import { forEachEngine } from '../helpers/db.js';

// Every filter condition on every kind of job field, values given plain and as protobuf Value
// JSON, on both databases; and the type mismatches that must be refused.

const base: JobDraft = {
  templateId: 't1', name: '', description: '', priority: 'EXECUTION_PRIORITY_UNDEFINED', config: {}, regions: {},
  dataSource: { dataSourceDescriptor: 'bypass' }, dataDestination: { dataSourceDescriptor: 'bucket' }, params: {}, appId: 'a1', startAt: null,
};

async function seed(db: Db): Promise<void> {
  await insertAccount(db, 'alice01');
  await insertAccount(db, 'bob0001');
  await insertJob(db, { id: 'J0', accountId: 'alice01', ...base, name: 'alpha', priority: 'EXECUTION_PRIORITY_CHEAP', config: { taskTimeout: 10, isTestJob: true }, regions: { whitelist: ['eu', 'us'] } });
  await insertJob(db, { id: 'J1', accountId: 'alice01', ...base, name: 'beta', priority: 'EXECUTION_PRIORITY_FAST', appId: 'a2', config: { taskTimeout: 20 }, regions: { whitelist: ['us'] } });
  await insertJob(db, { id: 'J2', accountId: 'alice01', ...base, templateId: 't2', name: "gamma%_x'", priority: 'EXECUTION_PRIORITY_BALANCED', config: { taskTimeout: 30, jobTimeout: 100 }, regions: { blacklist: ['cn'] } });
  await insertJob(db, { id: 'B0', accountId: 'bob0001', ...base, name: 'alpha' });
  await transitionJob(db, 'J1', 'JOB_STATE_NEW', 'JOB_STATE_STARTED', { numChunks: 4 });
  await failJob(db, 'J2', 'boom');
  // J2 ran for 90 seconds (duration is ended_at minus started_at).
  await db.query(`UPDATE jobs SET started_at = ended_at - interval '90 seconds' WHERE id = 'J2'`);
  for (const [id, at] of [['J0', '2026-01-01T00:00:00Z'], ['J1', '2026-02-01T00:00:00Z'], ['J2', '2026-03-01T00:00:00Z']]) {
    await db.query('UPDATE jobs SET created_at = $2 WHERE id = $1', [id, at]);
  }
}

type Case = [field: string, condition: FilterCondition, value: unknown, expected: string[]];

const CASES: Case[] = [
  ['name', 'FILTER_CONDITION_EQ', 'beta', ['J1']],
  ['name', 'FILTER_CONDITION_NEQ', 'beta', ['J0', 'J2']],
  ['name', 'FILTER_CONDITION_GT', 'alpha', ['J1', 'J2']],
  ['name', 'FILTER_CONDITION_GTE', 'beta', ['J1', 'J2']],
  ['name', 'FILTER_CONDITION_LT', 'beta', ['J0']],
  ['name', 'FILTER_CONDITION_LTE', 'beta', ['J0', 'J1']],
  ['name', 'FILTER_CONDITION_IN', ['alpha', "gamma%_x'"], ['J0', 'J2']],
  ['name', 'FILTER_CONDITION_NOT_IN', ['alpha'], ['J1', 'J2']],
  ['name', 'FILTER_CONDITION_LIKE', 'gam%', ['J2']],
  ['name', 'FILTER_CONDITION_LIKE', '_eta', ['J1']],
  ['name', 'FILTER_CONDITION_EQ', "alpha' OR '1'='1", []],
  ['name', 'FILTER_CONDITION_EQ', "gamma%_x'", ['J2']],
  ['name', 'FILTER_CONDITION_EQ', 'x'.repeat(10_000), []],
  ['id', 'FILTER_CONDITION_IN', ['J0', 'J2', 'B0'], ['J0', 'J2']],
  ['templateId', 'FILTER_CONDITION_NEQ', 't1', ['J2']],
  ['state', 'FILTER_CONDITION_EQ', 'JOB_STATE_FAILED', ['J2']],
  ['state', 'FILTER_CONDITION_IN', ['JOB_STATE_NEW', 'JOB_STATE_STARTED'], ['J0', 'J1']],
  ['priority', 'FILTER_CONDITION_EQ', 'EXECUTION_PRIORITY_FAST', ['J1']],
  ['appId', 'FILTER_CONDITION_EQ', 'a1', ['J0', 'J2']],
  ['errorMessage', 'FILTER_CONDITION_LIKE', 'bo%', ['J2']],
  ['config.taskTimeout', 'FILTER_CONDITION_EQ', 20, ['J1']],
  ['config.taskTimeout', 'FILTER_CONDITION_NEQ', '20', ['J0', 'J2']],
  ['config.taskTimeout', 'FILTER_CONDITION_GT', 10, ['J1', 'J2']],
  ['config.taskTimeout', 'FILTER_CONDITION_GTE', 20, ['J1', 'J2']],
  ['config.taskTimeout', 'FILTER_CONDITION_LT', 20, ['J0']],
  ['config.taskTimeout', 'FILTER_CONDITION_LTE', 20, ['J0', 'J1']],
  ['config.taskTimeout', 'FILTER_CONDITION_IN', [10, '30'], ['J0', 'J2']],
  ['config.taskTimeout', 'FILTER_CONDITION_NOT_IN', [10], ['J1', 'J2']],
  ['config.jobTimeout', 'FILTER_CONDITION_GT', 50, ['J2']],
  ['config.isTestJob', 'FILTER_CONDITION_EQ', true, ['J0']],
  ['config.isTestJob', 'FILTER_CONDITION_NEQ', true, ['J1', 'J2']],
  ['createdAt', 'FILTER_CONDITION_EQ', '2026-02-01T00:00:00Z', ['J1']],
  ['createdAt', 'FILTER_CONDITION_NEQ', '2026-02-01T00:00:00Z', ['J0', 'J2']],
  ['createdAt', 'FILTER_CONDITION_GT', '2026-01-15T00:00:00Z', ['J1', 'J2']],
  ['createdAt', 'FILTER_CONDITION_GTE', '2026-02-01T00:00:00Z', ['J1', 'J2']],
  ['createdAt', 'FILTER_CONDITION_LT', '2026-02-01T00:00:00+00:00', ['J0']],
  ['createdAt', 'FILTER_CONDITION_LTE', '2026-02-01T00:00:00Z', ['J0', 'J1']],
  ['createdAt', 'FILTER_CONDITION_IN', ['2026-01-01T00:00:00Z', '2026-03-01T00:00:00Z'], ['J0', 'J2']],
  ['createdAt', 'FILTER_CONDITION_NOT_IN', ['2026-01-01T00:00:00Z'], ['J1', 'J2']],
  ['numChunks', 'FILTER_CONDITION_EQ', 4, ['J1']],
  ['numChunks', 'FILTER_CONDITION_LT', 10, ['J1']],
  ['numChunks', 'FILTER_CONDITION_NEQ', 4, ['J0', 'J2']],
  ['duration', 'FILTER_CONDITION_GTE', 90, ['J2']],
  ['duration', 'FILTER_CONDITION_LT', 60, []],
  ['startedAt', 'FILTER_CONDITION_LT', '2100-01-01T00:00:00Z', ['J2']],
  ['submittedAt', 'FILTER_CONDITION_GT', '2000-01-01T00:00:00Z', ['J1']],
  ['endedAt', 'FILTER_CONDITION_GT', '2000-01-01T00:00:00Z', ['J2']],
  ['regions.whitelist', 'FILTER_CONDITION_ARRAY_CONTAINS', 'us', ['J0', 'J1']],
  ['regions.whitelist', 'FILTER_CONDITION_ARRAY_CONTAINS_ANY', ['eu', 'cn'], ['J0']],
  ['regions.blacklist', 'FILTER_CONDITION_ARRAY_CONTAINS_ANY', ['cn'], ['J2']],
  ['regions.whitelist', 'FILTER_CONDITION_EQ', ['us'], ['J1']],
  ['regions.whitelist', 'FILTER_CONDITION_NEQ', ['us'], ['J0', 'J2']],
  ['template_id', 'FILTER_CONDITION_EQ', 't2', ['J2']],
];

const MISMATCHES: [field: string, condition: string, value: unknown, mentions: RegExp][] = [
  ['name', 'FILTER_CONDITION_GT', 5, /name with FILTER_CONDITION_GT needs a string, got 5/],
  ['config.taskTimeout', 'FILTER_CONDITION_EQ', 'ten', /config\.taskTimeout with FILTER_CONDITION_EQ needs a number, got "ten"/],
  ['createdAt', 'FILTER_CONDITION_LT', 'yesterday', /createdAt with FILTER_CONDITION_LT needs an RFC 3339 date-time/],
  ['config.isTestJob', 'FILTER_CONDITION_EQ', 'yes', /needs true or false, got "yes"/],
  ['regions.whitelist', 'FILTER_CONDITION_ARRAY_CONTAINS_ANY', 'eu', /needs a list of 1 to 1000 values, got "eu"/],
  ['state', 'FILTER_CONDITION_IN', [], /needs a list of 1 to 1000 values/],
  ['createdAt', 'FILTER_CONDITION_LIKE', '2026%', /FILTER_CONDITION_LIKE does not apply to createdAt/],
  ['name', 'FILTER_CONDITION_ARRAY_CONTAINS', 'a', /FILTER_CONDITION_ARRAY_CONTAINS does not apply to name/],
  ['name', 'FILTER_CONDITION_EQ', 'x'.repeat(10_001), /10001 characters; the limit is 10000/],
  ['accountId', 'FILTER_CONDITION_EQ', 'bob0001', /unknown job field "accountId"/],
  ['name; DROP TABLE jobs', 'FILTER_CONDITION_EQ', 'x', /unknown job field/],
];

const wrap = (value: unknown) => ({ '@type': 'type.googleapis.com/google.protobuf.Value', value });

forEachEngine('each filter condition on each field type, plain and protobuf-wrapped values', async (db) => {
  await seed(db);
  for (const [field, condition, value, expected] of CASES) {
    for (const given of [value, wrap(value)]) {
      const filters: JobFilter[] = [{ field, condition, value: given }];
      const { jobs, total } = await listJobsFiltered(db, 'alice01', { limit: 50, offset: 0, orderBy: 'createdAt asc', filters });
      assert.deepEqual(jobs.map((job) => job.id), expected, `${field} ${condition} ${JSON.stringify(given).slice(0, 80)}`);
      assert.equal(total, expected.length);
    }
  }
  for (const [field, condition, value, mentions] of MISMATCHES) {
    await assert.rejects(
      listJobsFiltered(db, 'alice01', { limit: 5, offset: 0, filters: [{ field, condition: condition as FilterCondition, value }] }),
      (error: unknown) => error instanceof TesseraError && error.code === 'INVALID_ARGUMENT' && mentions.test(error.message),
      `${field} ${condition} ${JSON.stringify(value).slice(0, 40)}`,
    );
  }
  assert.equal((await db.query<{ count: number }>('SELECT count(*)::int AS count FROM jobs'))[0]!.count, 4, 'hostile filters changed nothing');
}, { migrated: true });

forEachEngine('ordering by each orderable field, both directions, and pagination edges', async (db) => {
  await seed(db);
  const order = async (orderBy: string, limit = 50, offset = 0) => (await listJobsFiltered(db, 'alice01', { limit, offset, orderBy })).jobs.map((job) => job.id);
  assert.deepEqual(await order('createdAt'), ['J0', 'J1', 'J2']);
  assert.deepEqual(await order('createdAt desc'), ['J2', 'J1', 'J0']);
  assert.deepEqual(await order('-createdAt'), ['J2', 'J1', 'J0']);
  assert.deepEqual(await order('name DESC'), ['J2', 'J1', 'J0']);
  assert.deepEqual(await order('state asc'), ['J0', 'J1', 'J2'], 'NEW, STARTED, FAILED: lifecycle order');
  assert.deepEqual(await order('priority'), ['J0', 'J2', 'J1'], 'CHEAP, BALANCED, FAST: by rank');
  assert.deepEqual(await order('priority desc'), ['J1', 'J2', 'J0']);
  assert.deepEqual(await order('submittedAt asc'), ['J1', 'J0', 'J2'], 'jobs without the timestamp come last');
  assert.deepEqual(await order('created_at desc'), ['J2', 'J1', 'J0']);
  assert.deepEqual(await order(''), ['J2', 'J1', 'J0'], 'newest first by default');
  assert.deepEqual(await order('createdAt', 2, 0), ['J0', 'J1']);
  assert.deepEqual(await order('createdAt', 2, 2), ['J2']);
  assert.deepEqual(await order('createdAt', 2, 3), []);
  assert.equal((await listJobsFiltered(db, 'alice01', { limit: 2, offset: 5 })).total, 3, 'total is counted past the end too');
  for (const bad of ['colour', 'name sideways', 'name; DROP TABLE jobs', 'accountId']) {
    await assert.rejects(listJobsFiltered(db, 'alice01', { limit: 5, offset: 0, orderBy: bad }), /cannot order jobs by[\s\S]*/);
  }
}, { migrated: true });

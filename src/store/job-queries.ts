import { invalidArgument, quote } from '../domain/errors.js';
import { JOB_STATES } from '../domain/job-state.js';
import type { Job, Template } from '../domain/types.js';
import { PRIORITIES } from '../domain/types.js';
import type { Queryable } from './db.js';
import { chosenTemplateSql, rowToTemplate } from './catalog.js';
import type { TemplateRow } from './catalog.js';
import { JOB_COLUMNS, rowToJob } from './jobs.js';
import type { JobRow } from './jobs.js';

// Listing and filtering a customer's jobs. Filters come from the request as data and are turned
// into SQL here with bound parameters only: field names are looked up in a fixed table, values
// are always parameters, never text pasted into the statement.

type FieldType = 'text' | 'number' | 'timestamp' | 'boolean' | 'array';

interface FieldSpec {
  type: FieldType;
  sql: string;
}

const FIELDS: Record<string, FieldSpec> = {
  id: { type: 'text', sql: 'id' },
  templateId: { type: 'text', sql: 'template_id' },
  name: { type: 'text', sql: 'name' },
  description: { type: 'text', sql: 'description' },
  state: { type: 'text', sql: 'state' },
  priority: { type: 'text', sql: 'priority' },
  appId: { type: 'text', sql: 'app_id' },
  errorMessage: { type: 'text', sql: 'error_message' },
  numChunks: { type: 'number', sql: 'num_chunks' },
  duration: { type: 'number', sql: 'extract(epoch from (ended_at - COALESCE(started_at, submitted_at)))' },
  createdAt: { type: 'timestamp', sql: 'created_at' },
  startAt: { type: 'timestamp', sql: 'start_at' },
  submittedAt: { type: 'timestamp', sql: 'submitted_at' },
  startedAt: { type: 'timestamp', sql: 'started_at' },
  endedAt: { type: 'timestamp', sql: 'ended_at' },
  'config.taskTimeout': { type: 'number', sql: `(CASE WHEN jsonb_typeof(config->'taskTimeout') = 'number' THEN (config->>'taskTimeout')::float8 END)` },
  'config.jobTimeout': { type: 'number', sql: `(CASE WHEN jsonb_typeof(config->'jobTimeout') = 'number' THEN (config->>'jobTimeout')::float8 END)` },
  'config.isTestJob': { type: 'boolean', sql: `COALESCE((config->>'isTestJob')::boolean, false)` },
  'regions.whitelist': { type: 'array', sql: `COALESCE(regions->'whitelist', '[]'::jsonb)` },
  'regions.blacklist': { type: 'array', sql: `COALESCE(regions->'blacklist', '[]'::jsonb)` },
};

// Accept the protobuf spellings too (template_id, config.task_timeout).
const FIELD_ALIASES: Record<string, string> = Object.fromEntries(
  Object.keys(FIELDS).map((field) => [field.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`), field]),
);

export const FILTER_CONDITIONS = [
  'FILTER_CONDITION_EQ',
  'FILTER_CONDITION_NEQ',
  'FILTER_CONDITION_GT',
  'FILTER_CONDITION_GTE',
  'FILTER_CONDITION_LT',
  'FILTER_CONDITION_LTE',
  'FILTER_CONDITION_ARRAY_CONTAINS',
  'FILTER_CONDITION_ARRAY_CONTAINS_ANY',
  'FILTER_CONDITION_IN',
  'FILTER_CONDITION_NOT_IN',
  'FILTER_CONDITION_LIKE',
] as const;
export type FilterCondition = (typeof FILTER_CONDITIONS)[number];

const CONDITIONS_BY_TYPE: Record<FieldType, FilterCondition[]> = {
  text: ['FILTER_CONDITION_EQ', 'FILTER_CONDITION_NEQ', 'FILTER_CONDITION_GT', 'FILTER_CONDITION_GTE', 'FILTER_CONDITION_LT', 'FILTER_CONDITION_LTE', 'FILTER_CONDITION_IN', 'FILTER_CONDITION_NOT_IN', 'FILTER_CONDITION_LIKE'],
  number: ['FILTER_CONDITION_EQ', 'FILTER_CONDITION_NEQ', 'FILTER_CONDITION_GT', 'FILTER_CONDITION_GTE', 'FILTER_CONDITION_LT', 'FILTER_CONDITION_LTE', 'FILTER_CONDITION_IN', 'FILTER_CONDITION_NOT_IN'],
  timestamp: ['FILTER_CONDITION_EQ', 'FILTER_CONDITION_NEQ', 'FILTER_CONDITION_GT', 'FILTER_CONDITION_GTE', 'FILTER_CONDITION_LT', 'FILTER_CONDITION_LTE', 'FILTER_CONDITION_IN', 'FILTER_CONDITION_NOT_IN'],
  boolean: ['FILTER_CONDITION_EQ', 'FILTER_CONDITION_NEQ'],
  array: ['FILTER_CONDITION_ARRAY_CONTAINS', 'FILTER_CONDITION_ARRAY_CONTAINS_ANY', 'FILTER_CONDITION_EQ', 'FILTER_CONDITION_NEQ'],
};

const COMPARISON: Partial<Record<FilterCondition, string>> = {
  FILTER_CONDITION_EQ: '=',
  FILTER_CONDITION_NEQ: 'IS DISTINCT FROM',
  FILTER_CONDITION_GT: '>',
  FILTER_CONDITION_GTE: '>=',
  FILTER_CONDITION_LT: '<',
  FILTER_CONDITION_LTE: '<=',
};

export interface JobFilter {
  field: string;
  condition: FilterCondition;
  value: unknown;
}

// Enums sort by meaning, not spelling: priority by rank, state by its place in the lifecycle.
const enumOrder = (column: string, values: readonly string[]) => `array_position(ARRAY[${values.map((value) => `'${value}'`).join(', ')}]::text[], ${column})`;
const ORDER_SQL: Record<string, string> = {
  priority: enumOrder('priority', PRIORITIES),
  state: enumOrder('state', JOB_STATES),
};

const ORDERABLE = ['createdAt', 'startAt', 'submittedAt', 'startedAt', 'endedAt', 'name', 'state', 'priority'];

export interface JobListQuery {
  limit: number;
  offset: number;
  orderBy?: string | undefined;
  filters?: JobFilter[];
}

/** Unwraps `{"@type": "type.googleapis.com/google.protobuf.Value", "value": X}` to X; plain JSON passes through. */
function unwrapValue(value: unknown): unknown {
  if (typeof value === 'object' && value !== null && !Array.isArray(value) && '@type' in value) {
    return (value as { value?: unknown }).value;
  }
  return value;
}

function resolveField(name: string, where: string): FieldSpec & { name: string } {
  const canonical = FIELDS[name] ? name : FIELD_ALIASES[name];
  if (!canonical) {
    throw invalidArgument(where, `unknown job field ${quote(name)}`, `use one of: ${Object.keys(FIELDS).join(', ')}`);
  }
  return { ...FIELDS[canonical]!, name: canonical };
}

class SqlBuilder {
  readonly params: unknown[] = [];
  bind(value: unknown): string {
    this.params.push(value);
    return `$${this.params.length}`;
  }
}

function scalarParam(type: FieldType, value: unknown, field: string, condition: string, where: string): unknown {
  const mismatch = (expected: string) =>
    invalidArgument(where, `filter on ${field} with ${condition} needs ${expected}, got ${quote(value)}`);
  switch (type) {
    case 'text':
      if (typeof value !== 'string') throw mismatch('a string');
      if (value.length > 10_000) throw invalidArgument(where, `filter value for ${field} is ${value.length} characters; the limit is 10000`);
      return value;
    case 'number': {
      const number = typeof value === 'string' && /^-?\d+(\.\d+)?$/.test(value) ? Number(value) : value;
      if (typeof number !== 'number' || !Number.isFinite(number)) throw mismatch('a number');
      return number;
    }
    case 'timestamp': {
      const date = typeof value === 'string' ? new Date(value) : typeof value === 'number' ? new Date(value) : null;
      if (!date || Number.isNaN(date.getTime())) throw mismatch('an RFC 3339 date-time such as "2026-01-31T12:00:00Z"');
      return date.toISOString();
    }
    case 'boolean':
      if (typeof value !== 'boolean') throw mismatch('true or false');
      return value;
    case 'array':
      if (typeof value !== 'string') throw mismatch('a string');
      return value;
  }
}

const SQL_CAST: Record<FieldType, string> = { text: 'text', number: 'float8', timestamp: 'timestamptz', boolean: 'boolean', array: 'text' };

function filterToSql(filter: JobFilter, index: number, sql: SqlBuilder): string {
  const where = `filters[${index}]`;
  const field = resolveField(filter.field, `${where}.field`);
  const condition = filter.condition ?? 'FILTER_CONDITION_EQ';
  if (!CONDITIONS_BY_TYPE[field.type].includes(condition)) {
    throw invalidArgument(`${where}.condition`, `condition ${condition} does not apply to ${field.name} (a ${field.type} field)`, `use one of: ${CONDITIONS_BY_TYPE[field.type].join(', ')}`);
  }
  const value = unwrapValue(filter.value);
  const cast = SQL_CAST[field.type];
  const list = (): unknown[] => {
    if (!Array.isArray(value) || value.length === 0 || value.length > 1000) {
      throw invalidArgument(`${where}.value`, `filter on ${field.name} with ${condition} needs a list of 1 to 1000 values, got ${quote(value)}`);
    }
    return value.map((item) => scalarParam(field.type, unwrapValue(item), field.name, condition, `${where}.value`));
  };
  if (field.type === 'array') {
    switch (condition) {
      case 'FILTER_CONDITION_ARRAY_CONTAINS':
        return `${field.sql} ? ${sql.bind(scalarParam('array', value, field.name, condition, `${where}.value`))}`;
      case 'FILTER_CONDITION_ARRAY_CONTAINS_ANY':
        return `${field.sql} ?| ${sql.bind(list())}::text[]`;
      case 'FILTER_CONDITION_EQ':
      case 'FILTER_CONDITION_NEQ': {
        const items = Array.isArray(value) ? value.map((item) => scalarParam('array', unwrapValue(item), field.name, condition, `${where}.value`)) : list();
        return `${field.sql} ${condition === 'FILTER_CONDITION_EQ' ? '=' : '<>'} ${sql.bind(JSON.stringify(items))}::jsonb`;
      }
      default:
        throw invalidArgument(`${where}.condition`, `condition ${condition} does not apply to ${field.name}`);
    }
  }
  switch (condition) {
    case 'FILTER_CONDITION_IN':
      return `${field.sql} = ANY(${sql.bind(list())}::${cast}[])`;
    case 'FILTER_CONDITION_NOT_IN':
      return `NOT (${field.sql} = ANY(${sql.bind(list())}::${cast}[]))`;
    case 'FILTER_CONDITION_LIKE':
      // The value is a SQL LIKE pattern by design (% and _ are wildcards), still bound as a parameter.
      return `${field.sql} LIKE ${sql.bind(scalarParam('text', value, field.name, condition, `${where}.value`))}`;
    default:
      return `${field.sql} ${COMPARISON[condition]!} ${sql.bind(scalarParam(field.type, value, field.name, condition, `${where}.value`))}::${cast}`;
  }
}

export function parseOrderBy(orderBy: string | undefined): string {
  if (orderBy === undefined || orderBy.trim() === '') return 'created_at DESC, id DESC';
  const match = /^\s*(-)?([A-Za-z_.]+)(?:\s+(asc|desc))?\s*$/i.exec(orderBy);
  const name = match?.[2];
  const canonical = name && (ORDERABLE.includes(name) ? name : FIELD_ALIASES[name]);
  if (!match || !canonical || !ORDERABLE.includes(canonical)) {
    throw invalidArgument('orderBy', `cannot order jobs by ${quote(orderBy)}`, `use one of ${ORDERABLE.join(', ')}, optionally followed by " asc" or " desc"`);
  }
  const direction = match[1] ? 'DESC' : (match[3] ?? 'asc').toUpperCase();
  return `${ORDER_SQL[canonical] ?? FIELDS[canonical]!.sql} ${direction} NULLS LAST, id ${direction}`;
}

export async function listJobsFiltered(db: Queryable, accountId: string, query: JobListQuery): Promise<{ jobs: Job[]; total: number }> {
  const sql = new SqlBuilder();
  const conditions = [`account_id = ${sql.bind(accountId)}`, 'deleted_at IS NULL'];
  (query.filters ?? []).forEach((filter, index) => conditions.push(filterToSql(filter, index, sql)));
  const order = parseOrderBy(query.orderBy);
  const where = conditions.join(' AND ');
  const [{ total }] = (await db.query<{ total: number }>(`SELECT count(*)::int AS total FROM jobs WHERE ${where}`, sql.params)) as [{ total: number }];
  const rows = await db.query<Parameters<typeof rowToJob>[0]>(
    `SELECT ${JOB_COLUMNS} FROM jobs WHERE ${where} ORDER BY ${order} LIMIT ${sql.bind(query.limit)} OFFSET ${sql.bind(query.offset)}`,
    sql.params,
  );
  return { jobs: rows.map(rowToJob), total };
}

/**
 * A customer's job and the template it names (the account's own, else the built-in one) in one
 * query: GET job is the call clients poll, and the template was a second round trip each time.
 */
export async function getJobView(db: Queryable, accountId: string, jobId: string): Promise<{ job: Job; template: Template | null } | null> {
  const [row] = await db.query<JobRow & { template: TemplateRow | null }>(
    `SELECT ${JOB_COLUMNS},
            (SELECT row_to_json(chosen) FROM (${chosenTemplateSql('jobs.template_id', 'jobs.account_id')}) AS chosen) AS template
       FROM jobs WHERE id = $1 AND account_id = $2 AND deleted_at IS NULL`,
    [jobId, accountId],
  );
  return row ? { job: rowToJob(row), template: row.template ? rowToTemplate(row.template) : null } : null;
}

/**
 * Tasks running now (leased) per job, for the account's jobs among `jobIds`; a job of the
 * account with none running is 0, an id that is not one of its jobs is left out.
 */
export async function countRunningTasks(db: Queryable, accountId: string, jobIds: string[]): Promise<Map<string, number>> {
  const rows = await db.query<{ id: string; running: number }>(
    `SELECT j.id, (SELECT count(*)::int FROM tasks t WHERE t.job_id = j.id AND t.state = 'leased') AS running
       FROM jobs j WHERE j.account_id = $1 AND j.id = ANY($2::text[]) AND j.deleted_at IS NULL`,
    [accountId, jobIds],
  );
  return new Map(rows.map((row) => [row.id, row.running]));
}

import { isIP } from 'node:net';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { TesseraError, quote } from '../domain/errors.js';

// Configuration is read here once, from flags and the environment, into one typed object.
// Nothing else in Tessera reads process.env.

/** An S3-compatible bucket for Tessera's own blobs (TESSERA_BLOBS=s3://bucket/prefix?endpoint=…). */
export interface S3Settings {
  bucket: string;
  endpoint: string | undefined;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** Path-style URLs (endpoint/bucket/key), which most self-hosted servers need. */
  forcePathStyle: boolean;
  /** Keys are stored under this prefix (e.g. "tessera/"), so a bucket can be shared. */
  prefix: string;
}

export type BlobSettings = { kind: 'local' } | { kind: 's3'; s3: S3Settings };

export interface Config {
  /** Folder holding the embedded database and the local blob store. */
  home: string;
  host: string;
  port: number;
  /** When set, the PostgreSQL server to use instead of embedded PGlite. */
  databaseUrl: string | undefined;
  /** PostgreSQL schema to keep Tessera's tables in (created if missing); default the connection's own. */
  databaseSchema: string | undefined;
  /** Base URL used for links handed to clients; by default taken from each request's Host. */
  publicUrl: string | undefined;
  /**
   * Tasks a worker leases ahead of its free slots (a local queue), so many short tasks share a
   * round trip. 0: lease only for idle slots, which spreads long tasks best over many workers.
   * 'auto' (the default): one per slot while the worker's recent tasks were short, else none.
   */
  workerPrefetch: number | 'auto';
  /** In-process worker slots (embedded mode). */
  workerSlots: number;
  /** Key to create for the first account on an empty database (scripts set it; otherwise one is generated). */
  initialApiKey: string | undefined;
  /** Likewise the operator's first key (TESSERA_OPERATOR_KEY). */
  initialOperatorKey: string | undefined;
  allowPrivateUrls: boolean;
  /**
   * Python entrypoints run in processes forked from a warm interpreter, one per worker
   * (runner/python-forkserver.ts), rather than each started from scratch.
   */
  pythonForkServer: boolean;
  maxSourceBytes: number;
  urlTimeoutMs: number;
  leaseSeconds: number;
  /** A job whose queued task no connected worker can run fails after this long, saying why. */
  unservedGraceSeconds: number;
  defaultMaxTaskRetries: number;
  /**
   * A failed attempt is retried after this back-off: base × 2^(failures − 1) seconds, at most the
   * cap, ±20% (TESSERA_RETRY_BACKOFF_SECONDS, 0 for at once; TESSERA_RETRY_BACKOFF_MAX_SECONDS).
   */
  retryBackoff: { baseSeconds: number; maxSeconds: number };
  /** A task lost with its worker this many times (TESSERA_MAX_LOST_LEASES) fails; a lost lease costs no attempt. */
  maxLostLeases: number;
  resultLinkTtlSeconds: number;
  examplesDir: string;
  logLevel: string;
  python: string;
  /** What this process's worker slots offer: its region and GPU models (cores and memory are measured). */
  workerRegion: string;
  workerGpus: string[];
  /** Client commands (whoami): the server to talk to and the key to use. */
  serverUrl: string;
  clientApiKey: string | undefined;
  /** `tessera worker`: the token it authenticates with (--token / TESSERA_WORKER_TOKEN). */
  workerToken: string | undefined;
  /** Origins allowed to call the API from a browser (CORS): empty for none, ['*'] for any. */
  corsOrigins: string[];
  /**
   * Proxies in front of the API whose X-Forwarded-For is believed (TESSERA_TRUST_PROXY): false,
   * a number of hops, or addresses and CIDR ranges. Failed logins are counted per client address.
   */
  trustProxy: false | number | string[];
  /** Failed authentications one address may make in a minute before it is answered 429 (TESSERA_AUTH_FAILURES_PER_MINUTE). */
  authFailuresPerMinute: number;
  /** Scratch space for running tasks (temporary folders, removed after each task). */
  workDir: string;
  /**
   * The whole environment a partitioner/app/assembler child starts from. Children never inherit
   * the server's environment: it holds DATABASE_URL, TESSERA_API_KEY and other secrets.
   */
  childEnv: Record<string, string>;
  /** Registry: largest archive a push may send (compressed) and what it may unpack to. */
  maxArchiveBytes: number;
  maxUnpackedBytes: number;
  maxArchiveEntries: number;
  /** Log lines kept per task attempt (stdout and stderr together); the rest is counted, not kept. */
  maxLogLinesPerTask: number;
  /** Where chunks, results and archives live: the home folder (default) or an S3-compatible bucket. */
  blobs: BlobSettings;
  /** Resource accounting: price of one vCPU·GiB·hour, the unit of numUnitsEstimation. */
  pricePerUnit: number;
  /**
   * Seals account secrets (TESSERA_SECRETS_KEY). Unset: a key kept in the database is used, so a
   * copy of the database alone would open them; set it on a shared PostgreSQL server.
   */
  secretsKey: string | undefined;
  /**
   * The bearer token GET /metrics asks for (TESSERA_METRICS_TOKEN). Unset: /metrics is open, as
   * Prometheus endpoints usually are; set it when the API is reachable by others.
   */
  metricsToken: string | undefined;
  /** How long a file job's upload link (params.tempUrl) works. */
  uploadLinkTtlSeconds: number;
  /** Temporary storage (results in the bucket destination, uploads) is deleted this long after the job ends. */
  retentionSeconds: number;
  /** A finished job's task rows, log lines and events are deleted this long after it ended (TESSERA_TASK_ROW_RETENTION_HOURS). */
  taskRowRetentionSeconds: number;
  /** A finished job itself is deleted this long after it ended (TESSERA_JOB_RETENTION_DAYS). */
  jobRetentionSeconds: number;
  /** TESSERA_SANDBOX: every task process confined (the default); false only for a single-user laptop. */
  sandbox: boolean;
  /** The host user a task runs as when the worker is root (TESSERA_TASK_USER, uid:gid). */
  taskUser: { uid: number; gid: number };
  /** A task's memory when its app's min_memory asks for less (TESSERA_TASK_MEMORY_MB). */
  taskMemoryBytes: number;
  /** Processes (and threads) one task may have at once (TESSERA_TASK_PROCESSES). */
  taskProcesses: number;
  /** Open files per process of a task (TESSERA_TASK_OPEN_FILES). */
  taskOpenFiles: number;
  /** The largest file a task may write (TESSERA_TASK_MAX_FILE_MB). */
  taskMaxFileBytes: number;
  /** What one task may hand over in all: chunks, results or output (TESSERA_TASK_MAX_OUTPUT_MB). */
  taskMaxOutputBytes: number;
  /** Whether a task whose app asks for the public internet gets it (TESSERA_TASK_NETWORK: none or public). */
  taskNetwork: 'none' | 'public';
  /** TESSERA_CONTAINER_RUNTIME: "auto" (podman, then docker), "off", or a command with its flags. */
  containerRuntime: string;
  /**
   * TESSERA_HOST_IMAGES: image patterns whose tasks run in the host sandbox rather than a container.
   * Undefined when not set: `tessera up` then maps python:* and node:* (a laptop needs nothing
   * installed), a worker agent maps none.
   */
  hostImages: string[] | undefined;
  /** This worker's own folder for its launchers, sockets and bootstraps: no task sees it. */
  runtimeDir: string;
}

/** Command-line flags; `defaultHome` is the home folder a command uses when neither --home nor TESSERA_HOME names one. */
export type Flags = Partial<Record<'home' | 'defaultHome' | 'host' | 'port' | 'databaseUrl' | 'publicUrl' | 'slots' | 'prefetch' | 'logLevel' | 'server' | 'key' | 'region' | 'token', string | number | undefined>>;

type Env = Record<string, string | undefined>;

/** The most tasks --prefetch may keep leased ahead (a lease call's limit). */
const MAX_PREFETCH = 1000;

const PACKAGE_ROOT = path.resolve(new URL('.', import.meta.url).pathname, '../../..');

export function packageRoot(): string {
  return PACKAGE_ROOT;
}

/** Tessera's version, from its own package.json, the one place it is written. */
export function packageVersion(): string {
  return (JSON.parse(readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
}

/**
 * Settings that hold secrets, which may also come from a file (`X_FILE`, as container platforms
 * mount their secrets): then the secret is in no process's environment at all.
 */
export const SECRET_SETTINGS = [
  'DATABASE_URL', 'TESSERA_API_KEY', 'TESSERA_OPERATOR_KEY', 'TESSERA_SECRETS_KEY', 'TESSERA_METRICS_TOKEN', 'TESSERA_WORKER_TOKEN',
  'TESSERA_S3_ACCESS_KEY_ID', 'TESSERA_S3_SECRET_ACCESS_KEY', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY',
] as const;

/** The environment with every `X_FILE` of SECRET_SETTINGS read into X (one trailing newline dropped). */
function withSecretFiles(env: Env): Env {
  const merged: Env = { ...env };
  for (const name of SECRET_SETTINGS) {
    const file = env[`${name}_FILE`];
    if (file === undefined || file === '') continue;
    if (env[name] !== undefined && env[name] !== '') {
      throw new TesseraError('INVALID_ARGUMENT', `both ${name} and ${name}_FILE are set`, { hint: `set one of them: ${name}_FILE names a file holding the value` });
    }
    let value: string;
    try {
      value = readFileSync(file, 'utf8').replace(/\r?\n$/, '');
    } catch (error) {
      throw new TesseraError('INVALID_ARGUMENT', `setting ${name}_FILE = ${quote(file)} cannot be read: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, { hint: `for example ${name}_FILE=/run/secrets/${name.toLowerCase()}, a file the Tessera process may read` });
    }
    if (value === '') throw new TesseraError('INVALID_ARGUMENT', `setting ${name}_FILE = ${quote(file)} names an empty file`, { hint: 'write the value into the file' });
    merged[name] = value;
  }
  return merged;
}

export function loadConfig(flags: Flags = {}, givenEnv: Env = process.env): Config {
  const env = withSecretFiles(givenEnv);
  const home = path.resolve(String(flags.home ?? env.TESSERA_HOME ?? flags.defaultHome ?? '.tessera'));
  return {
    home,
    host: String(flags.host ?? env.TESSERA_HOST ?? '127.0.0.1'),
    port: integerSetting('--port / TESSERA_PORT', flags.port ?? env.TESSERA_PORT, 8080, 0, 65535, '8080'),
    databaseUrl: nonEmpty(flags.databaseUrl ?? env.DATABASE_URL, 'DATABASE_URL', /^postgres(ql)?:\/\//, 'postgres://user@127.0.0.1:5432/tessera'),
    databaseSchema: nonEmpty(env.TESSERA_DATABASE_SCHEMA, 'TESSERA_DATABASE_SCHEMA', /^[a-z_][a-z0-9_]{0,62}$/, 'tessera'),
    publicUrl: nonEmpty(flags.publicUrl ?? env.TESSERA_PUBLIC_URL, 'TESSERA_PUBLIC_URL', /^https?:\/\/[^/]+/, 'https://tessera.example.com')?.replace(/\/+$/, ''),
    workerSlots: integerSetting('--slots / TESSERA_WORKER_SLOTS', flags.slots ?? env.TESSERA_WORKER_SLOTS, availableParallelism(), 0, 256, '4'),
    workerPrefetch: prefetchSetting(flags.prefetch ?? env.TESSERA_WORKER_PREFETCH),
    initialApiKey: nonEmpty(env.TESSERA_API_KEY, 'TESSERA_API_KEY', /^\S{16,512}$/, 'a random string of at least 16 characters'),
    initialOperatorKey: nonEmpty(env.TESSERA_OPERATOR_KEY, 'TESSERA_OPERATOR_KEY', /^\S{16,512}$/, 'a random string of at least 16 characters'),
    allowPrivateUrls: booleanSetting('TESSERA_ALLOW_PRIVATE_URLS', env.TESSERA_ALLOW_PRIVATE_URLS, false),
    pythonForkServer: booleanSetting('TESSERA_PYTHON_FORKSERVER', env.TESSERA_PYTHON_FORKSERVER, true),
    maxSourceBytes: integerSetting('TESSERA_MAX_SOURCE_BYTES', env.TESSERA_MAX_SOURCE_BYTES, 10 * 1024 ** 3, 1, Number.MAX_SAFE_INTEGER, '1073741824'),
    urlTimeoutMs: integerSetting('TESSERA_URL_TIMEOUT_MS', env.TESSERA_URL_TIMEOUT_MS, 5 * 60_000, 100, 24 * 3_600_000, '300000'),
    leaseSeconds: integerSetting('TESSERA_LEASE_SECONDS', env.TESSERA_LEASE_SECONDS, 30, 2, 3600, '30'),
    unservedGraceSeconds: integerSetting('TESSERA_UNSERVED_GRACE_SECONDS', env.TESSERA_UNSERVED_GRACE_SECONDS, 120, 1, 7 * 24 * 3600, '120'),
    defaultMaxTaskRetries: integerSetting('TESSERA_MAX_TASK_RETRIES', env.TESSERA_MAX_TASK_RETRIES, 2, 0, 100, '2'),
    retryBackoff: retryBackoffSetting(env.TESSERA_RETRY_BACKOFF_SECONDS, env.TESSERA_RETRY_BACKOFF_MAX_SECONDS),
    maxLostLeases: integerSetting('TESSERA_MAX_LOST_LEASES', env.TESSERA_MAX_LOST_LEASES, 10, 1, 1000, '10'),
    resultLinkTtlSeconds: integerSetting('TESSERA_LINK_TTL_SECONDS', env.TESSERA_LINK_TTL_SECONDS, 48 * 3600, 1, 30 * 24 * 3600, '172800'),
    examplesDir: path.resolve(env.TESSERA_EXAMPLES_DIR ?? path.join(PACKAGE_ROOT, 'examples')),
    logLevel: String(flags.logLevel ?? env.TESSERA_LOG_LEVEL ?? 'info'),
    python: env.TESSERA_PYTHON ?? 'python3',
    corsOrigins: originList(env.TESSERA_CORS_ORIGINS),
    trustProxy: trustProxySetting(env.TESSERA_TRUST_PROXY),
    authFailuresPerMinute: integerSetting('TESSERA_AUTH_FAILURES_PER_MINUTE', env.TESSERA_AUTH_FAILURES_PER_MINUTE, 50, 1, 1_000_000, '50'),
    workerRegion: nonEmpty(flags.region ?? env.TESSERA_WORKER_REGION, '--region / TESSERA_WORKER_REGION', /^[A-Za-z0-9._-]{1,64}$/, 'eu-west') ?? '',
    workerGpus: (env.TESSERA_WORKER_GPUS ?? '').split(',').map((model) => model.trim()).filter(Boolean),
    serverUrl: (nonEmpty(flags.server ?? env.TESSERA_URL, '--server / TESSERA_URL', /^https?:\/\/[^/,]+(\/?,https?:\/\/[^/,]+)*\/?$/, 'http://127.0.0.1:8080 (or several, comma-separated)') ?? 'http://127.0.0.1:8080').replace(/\/+$/, ''),
    workerToken: nonEmpty(flags.token ?? env.TESSERA_WORKER_TOKEN, '--token / TESSERA_WORKER_TOKEN', /^\S{1,512}$/, 'tsk_… (made by tessera key create --worker)'),
    clientApiKey: nonEmpty(flags.key ?? env.TESSERA_API_KEY, '--key / TESSERA_API_KEY', /^\S{1,512}$/, 'tsk_…'),
    workDir: path.join(home, 'work'),
    maxArchiveBytes: integerSetting('TESSERA_MAX_ARCHIVE_BYTES', env.TESSERA_MAX_ARCHIVE_BYTES, 64 * 1024 ** 2, 1024, 1024 ** 3, '67108864'),
    maxUnpackedBytes: integerSetting('TESSERA_MAX_UNPACKED_BYTES', env.TESSERA_MAX_UNPACKED_BYTES, 256 * 1024 ** 2, 1024, 4 * 1024 ** 3, '268435456'),
    maxArchiveEntries: integerSetting('TESSERA_MAX_ARCHIVE_ENTRIES', env.TESSERA_MAX_ARCHIVE_ENTRIES, 20_000, 1, 1_000_000, '20000'),
    maxLogLinesPerTask: integerSetting('TESSERA_MAX_LOG_LINES', env.TESSERA_MAX_LOG_LINES, 1000, 0, 1_000_000, '1000'),
    blobs: blobSettings(env),
    pricePerUnit: decimalSetting('TESSERA_PRICE_PER_UNIT', env.TESSERA_PRICE_PER_UNIT, 0.01, '0.01'),
    secretsKey: nonEmpty(env.TESSERA_SECRETS_KEY, 'TESSERA_SECRETS_KEY', /^\S{32,512}$/, 'the output of: openssl rand -base64 32'),
    metricsToken: nonEmpty(env.TESSERA_METRICS_TOKEN, 'TESSERA_METRICS_TOKEN', /^[\x21-\x7e]{16,512}$/, 'the output of: openssl rand -hex 24'),
    uploadLinkTtlSeconds: integerSetting('TESSERA_UPLOAD_LINK_TTL_SECONDS', env.TESSERA_UPLOAD_LINK_TTL_SECONDS, 24 * 3600, 1, 30 * 24 * 3600, '86400'),
    retentionSeconds: integerSetting('TESSERA_RETENTION_HOURS', env.TESSERA_RETENTION_HOURS, 48, 1, 24 * 365, '48') * 3600,
    taskRowRetentionSeconds: Math.round(decimalSetting('TESSERA_TASK_ROW_RETENTION_HOURS', env.TESSERA_TASK_ROW_RETENTION_HOURS, 7 * 24, '168', 0.01) * 3600),
    jobRetentionSeconds: integerSetting('TESSERA_JOB_RETENTION_DAYS', env.TESSERA_JOB_RETENTION_DAYS, 90, 1, 3650, '90') * 86400,
    sandbox: switchSetting('TESSERA_SANDBOX', env.TESSERA_SANDBOX, true),
    taskUser: userSetting(env.TESSERA_TASK_USER),
    taskMemoryBytes: integerSetting('TESSERA_TASK_MEMORY_MB', env.TESSERA_TASK_MEMORY_MB, 2048, 16, 16 * 1024 * 1024, '4096') * 2 ** 20,
    taskProcesses: integerSetting('TESSERA_TASK_PROCESSES', env.TESSERA_TASK_PROCESSES, 512, 8, 1_000_000, '512'),
    taskOpenFiles: integerSetting('TESSERA_TASK_OPEN_FILES', env.TESSERA_TASK_OPEN_FILES, 4096, 64, 1_048_576, '4096'),
    taskMaxFileBytes: integerSetting('TESSERA_TASK_MAX_FILE_MB', env.TESSERA_TASK_MAX_FILE_MB, 10 * 1024, 1, 1024 * 1024 * 1024, '10240') * 2 ** 20,
    taskMaxOutputBytes: integerSetting('TESSERA_TASK_MAX_OUTPUT_MB', env.TESSERA_TASK_MAX_OUTPUT_MB, 10 * 1024, 1, 1024 * 1024 * 1024, '10240') * 2 ** 20,
    taskNetwork: choiceSetting('TESSERA_TASK_NETWORK', env.TESSERA_TASK_NETWORK, ['none', 'public'] as const, 'none'),
    containerRuntime: (env.TESSERA_CONTAINER_RUNTIME ?? '').trim() || 'auto',
    hostImages: env.TESSERA_HOST_IMAGES === undefined ? undefined : imagePatterns(env.TESSERA_HOST_IMAGES),
    runtimeDir: path.join(home, 'runtime'),
    childEnv: {
      PATH: env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
      LANG: env.LANG ?? 'C.UTF-8',
      ...(env.TZ ? { TZ: env.TZ } : {}),
    },
  };
}

/** What a client command (`tessera job …`, `whoami`) needs: the server and the key, and where the key came from. */
export interface ClientConfig {
  serverUrl: string;
  apiKey: string | undefined;
  keySource: string;
}

/**
 * The client's settings only: a client command must not be refused by a server setting (the
 * server's rule for TESSERA_API_KEY is for choosing a first key, 16+ characters, and says so).
 */
export function loadClientConfig(flags: { server?: string; key?: string } = {}, givenEnv: Env = process.env): ClientConfig {
  const env = withSecretFiles(givenEnv);
  const keySource = flags.key !== undefined ? '--key' : givenEnv.TESSERA_API_KEY_FILE ? 'TESSERA_API_KEY_FILE' : 'TESSERA_API_KEY';
  const serverUrl = (nonEmpty(flags.server ?? env.TESSERA_URL, '--server / TESSERA_URL', /^https?:\/\/[^/,]+(\/?,https?:\/\/[^/,]+)*\/?$/, 'http://127.0.0.1:8080 (or several, comma-separated)') ?? 'http://127.0.0.1:8080').replace(/\/+$/, '');
  const apiKey = flags.key ?? env.TESSERA_API_KEY;
  if (apiKey === undefined || apiKey === '') return { serverUrl, apiKey: undefined, keySource };
  // Keys are tsk_ and 32 random characters, or a first key of 16+ chosen at `tessera up`; access tokens are longer.
  if (!/^\S{16,512}$/.test(apiKey)) {
    const shown = apiKey.slice(0, Math.min(12, Math.floor(apiKey.length / 3)));
    throw new TesseraError('UNAUTHENTICATED', `the API key from ${keySource} ("${shown}…", ${apiKey.length} characters) is not a Tessera key: keys are 16 to 512 characters without spaces`, {
      hint: 'use the key `tessera up` printed (tsk_…), or make one with `tessera key create`',
    });
  }
  return { serverUrl, apiKey, keySource };
}

function settingError(name: string, value: unknown, expected: string, example: string): TesseraError {
  return new TesseraError('INVALID_ARGUMENT', `setting ${name} = ${quote(value)} is invalid: ${expected}`, { hint: `for example ${example}` });
}

function integerSetting(name: string, raw: string | number | undefined, fallback: number, min: number, max: number, example: string): number {
  if (raw === undefined || raw === '') return fallback;
  const value = typeof raw === 'number' ? raw : /^-?\d+$/.test(raw.trim()) ? Number(raw.trim()) : Number.NaN;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw settingError(name, raw, `expected a whole number from ${min} to ${max}`, example);
  }
  return value;
}

/** --prefetch: "auto" (the default) or a fixed number of tasks from 0 to 1000. */
function prefetchSetting(raw: string | number | undefined): number | 'auto' {
  if (raw === undefined || raw === '' || (typeof raw === 'string' && raw.trim() === 'auto')) return 'auto';
  const name = '--prefetch / TESSERA_WORKER_PREFETCH';
  try {
    return integerSetting(name, raw, 0, 0, MAX_PREFETCH, '1000');
  } catch {
    throw settingError(name, raw, `expected auto or a whole number from 0 to ${MAX_PREFETCH}`, 'auto');
  }
}

function decimalSetting(name: string, raw: string | undefined, fallback: number, example: string, min = 0): number {
  if (raw === undefined || raw === '') return fallback;
  const value = /^\d+(\.\d+)?$/.test(raw.trim()) ? Number(raw.trim()) : Number.NaN;
  if (!Number.isFinite(value) || value < min) throw settingError(name, raw, `expected a number ≥ ${min} such as 0.5`, example);
  return value;
}

/** The retry back-off: a base of 0 to 3600 s (default 1) and a cap of at least the base, up to a day (default 30). */
function retryBackoffSetting(rawBase: string | undefined, rawMax: string | undefined): { baseSeconds: number; maxSeconds: number } {
  const baseSeconds = decimalSetting('TESSERA_RETRY_BACKOFF_SECONDS', rawBase, 1, '1');
  if (baseSeconds > 3600) throw settingError('TESSERA_RETRY_BACKOFF_SECONDS', rawBase, 'expected seconds from 0 (retry at once) to 3600', '1');
  const maxSeconds = decimalSetting('TESSERA_RETRY_BACKOFF_MAX_SECONDS', rawMax, Math.max(30, baseSeconds), '30');
  if (maxSeconds < baseSeconds || maxSeconds > 86_400) {
    throw settingError('TESSERA_RETRY_BACKOFF_MAX_SECONDS', rawMax, `expected seconds from TESSERA_RETRY_BACKOFF_SECONDS (${baseSeconds}) to 86400`, String(Math.max(30, baseSeconds)));
  }
  return { baseSeconds, maxSeconds };
}

/**
 * TESSERA_BLOBS: unset or "local" for the home folder, or s3://bucket[/prefix]?endpoint=URL
 * &region=R&pathStyle=true|false, with the credentials in TESSERA_S3_ACCESS_KEY_ID and
 * TESSERA_S3_SECRET_ACCESS_KEY (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY).
 */
function blobSettings(env: Env): BlobSettings {
  const raw = env.TESSERA_BLOBS?.trim();
  if (!raw || raw === 'local') return { kind: 'local' };
  const example = 's3://my-bucket/tessera?endpoint=http://127.0.0.1:9000&region=us-east-1';
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw settingError('TESSERA_BLOBS', raw, 'expected "local" or an s3:// URL', example);
  }
  if (url.protocol !== 's3:' || !/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(url.hostname)) throw settingError('TESSERA_BLOBS', raw, 'expected s3://<bucket>[/prefix]', example);
  const endpoint = url.searchParams.get('endpoint') ?? undefined;
  if (endpoint !== undefined && !/^https?:\/\/[^/]+/.test(endpoint)) throw settingError('TESSERA_BLOBS', raw, 'endpoint must be an http(s) URL', example);
  const accessKeyId = env.TESSERA_S3_ACCESS_KEY_ID ?? env.AWS_ACCESS_KEY_ID;
  const secretAccessKey = env.TESSERA_S3_SECRET_ACCESS_KEY ?? env.AWS_SECRET_ACCESS_KEY;
  if (!accessKeyId || !secretAccessKey) {
    throw new TesseraError('INVALID_ARGUMENT', 'TESSERA_BLOBS names an S3 bucket but no credentials are set', { hint: 'set TESSERA_S3_ACCESS_KEY_ID and TESSERA_S3_SECRET_ACCESS_KEY (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)' });
  }
  const prefix = url.pathname.replace(/^\/+|\/+$/g, '');
  return {
    kind: 's3',
    s3: {
      bucket: url.hostname,
      endpoint,
      region: url.searchParams.get('region') ?? env.AWS_REGION ?? 'us-east-1',
      accessKeyId,
      secretAccessKey,
      forcePathStyle: (url.searchParams.get('pathStyle') ?? (endpoint ? 'true' : 'false')) !== 'false',
      prefix: prefix ? `${prefix}/` : '',
    },
  };
}

/** TESSERA_SANDBOX: on (the default) or off; the words of a boolean setting work too. */
function switchSetting(name: string, raw: string | undefined, fallback: boolean): boolean {
  if (raw !== undefined && /^(on|off)$/i.test(raw.trim())) return raw.trim().toLowerCase() === 'on';
  try {
    return booleanSetting(name, raw, fallback);
  } catch {
    throw settingError(name, raw, 'expected on or off', 'on');
  }
}

function choiceSetting<T extends string>(name: string, raw: string | undefined, choices: readonly T[], fallback: T): T {
  if (raw === undefined || raw.trim() === '') return fallback;
  const value = raw.trim() as T;
  if (!choices.includes(value)) throw settingError(name, raw, `expected one of ${choices.join(', ')}`, fallback);
  return value;
}

/** TESSERA_TASK_USER: "uid:gid" (numbers), the host user of a root worker's tasks; default nobody (65534). */
function userSetting(raw: string | undefined): { uid: number; gid: number } {
  if (raw === undefined || raw.trim() === '') return { uid: 65534, gid: 65534 };
  const match = /^(\d{1,10}):(\d{1,10})$/.exec(raw.trim());
  const uid = Number(match?.[1]);
  const gid = Number(match?.[2]);
  if (!match || uid === 0 || gid === 0 || uid > 4294967294 || gid > 4294967294) throw settingError('TESSERA_TASK_USER', raw, 'expected uid:gid, two numbers other than 0 (root)', '65534:65534');
  return { uid, gid };
}

/** TESSERA_HOST_IMAGES: comma-separated image names, where * matches anything ("python:*,node:20*"); empty for none. */
function imagePatterns(raw: string): string[] {
  return raw.split(',').map((entry) => entry.trim()).filter(Boolean).map((pattern) => {
    if (!/^[A-Za-z0-9*][A-Za-z0-9*._\-/:@]{0,254}$/.test(pattern)) throw settingError('TESSERA_HOST_IMAGES', pattern, 'expected image names, where * matches any text', 'python:*,node:*');
    return pattern;
  });
}

function booleanSetting(name: string, raw: string | undefined, fallback: boolean): boolean {
  if (raw === undefined || raw === '') return fallback;
  if (/^(1|true|yes|on)$/i.test(raw)) return true;
  if (/^(0|false|no|off)$/i.test(raw)) return false;
  throw settingError(name, raw, 'expected 1/0, true/false, yes/no or on/off', '1');
}

function nonEmpty(raw: string | number | undefined, name: string, pattern: RegExp, example: string): string | undefined {
  if (raw === undefined || raw === '') return undefined;
  const value = String(raw);
  // Never echo a secret-looking value back whole: keys and URLs with passwords end up in terminals and CI logs.
  // At most a third of it, and never more than 12 characters: a short secret is not shown whole either.
  if (!pattern.test(value)) throw settingError(name, value.replace(/\/\/[^@/]*@/, '//***@').slice(0, Math.min(12, Math.floor(value.length / 3))) + '…', `expected ${pattern}`, example);
  return value;
}

/** TESSERA_CORS_ORIGINS: "*" or a comma-separated list of origins such as https://app.example.com */
/** TESSERA_TRUST_PROXY: off (default), a number of proxy hops, or proxy addresses and CIDR ranges. */
function trustProxySetting(raw: string | undefined): false | number | string[] {
  const value = raw?.trim() ?? '';
  if (value === '' || value === 'off' || value === 'false' || value === '0') return false;
  if (/^\d{1,2}$/.test(value)) return Number(value);
  const entries = value.split(',').map((entry) => entry.trim());
  for (const entry of entries) {
    const [address = '', bits, extra] = entry.split('/');
    const ip = isIP(address);
    const okBits = bits === undefined || (/^\d{1,3}$/.test(bits) && Number(bits) <= (ip === 6 ? 128 : 32));
    if (!ip || !okBits || extra !== undefined) throw settingError('TESSERA_TRUST_PROXY', entry, 'expected off, a number of proxy hops, or proxy addresses and CIDR ranges', '10.0.0.0/8,127.0.0.1');
  }
  return entries;
}

function originList(raw: string | undefined): string[] {
  if (raw === undefined || raw.trim() === '') return [];
  if (raw.trim() === '*') return ['*'];
  return raw.split(',').map((entry) => {
    const origin = entry.trim();
    let parsed: URL | undefined;
    try {
      parsed = new URL(origin);
    } catch {
      parsed = undefined;
    }
    if (!parsed || parsed.origin !== origin) throw settingError('TESSERA_CORS_ORIGINS', origin, 'expected "*" or origins like scheme://host[:port], without a path', 'https://app.example.com,http://localhost:5173');
    return origin;
  });
}

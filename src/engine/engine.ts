import { randomBytes } from 'node:crypto';
import path from 'node:path';
import type { BlobStore } from '../blobs/blob-store.js';
import { createLocalBlobStore } from '../blobs/local.js';
import { createS3BlobStore } from '../blobs/s3.js';
import { createLinkSigner } from '../blobs/signed-links.js';
import { createLeaseTokens } from './lease-tokens.js';
import type { Config } from '../config/config.js';
import type { Log } from '../domain/log.js';
import type { WorkerLink } from '../domain/worker-link.js';
import type { Db } from '../store/db.js';
import { openDb } from '../store/db.js';
import { migrate } from '../store/migrate.js';
import { TASKS_CHANNEL } from '../store/tasks.js';
import { getOrCreateSetting } from '../store/settings.js';
import type { TokenIssuer } from './access-tokens.js';
import type { AsyncJobs } from './async-jobs.js';
import { createAsyncJobs } from './async-jobs.js';
import { createTokenIssuer } from './access-tokens.js';
import type { KeyCheck, NewKey } from './accounts.js';
import type { AccountKeys } from './accounts.js';
import { createAccountKeys, createKeyCheck, ensureFirstAccount } from './accounts.js';
import type { Operator } from './operator.js';
import { createOperator } from './operator.js';
import type { Catalog } from './catalog.js';
import { createCatalog } from './catalog.js';
import type { JobFeeds } from './job-feeds.js';
import { createJobFeeds } from './job-feeds.js';
import { createMetrics } from './metrics.js';
import { createCustomerJobs } from './customer-jobs.js';
import type { EngineDeps } from './deps.js';
import { createSignals } from './deps.js';
import { createLocalLink } from './local-link.js';
import type { RemoteWorkers } from './remote-workers.js';
import { createRemoteWorkers } from './remote-workers.js';
import { createScheduler } from './scheduler.js';
import { createDeliveries } from './deliveries.js';
import type { Deliveries } from './deliveries.js';
import { createUploads } from './uploads.js';
import type { Uploads } from './uploads.js';
import { createSecrets, sealingKeyFrom } from './secrets.js';
import { createTaskFlow } from './task-flow.js';
import { likePatterns } from '../domain/images.js';

// Assembles the engine from a database and a blob store: customer operations, the task flow
// workers use, and the scheduler's sweep.

export interface Engine {
  deps: EngineDeps;
  jobs: ReturnType<typeof createCustomerJobs>;
  /** The registry of apps, engines and templates (/v1/dev). */
  catalog: Catalog;
  /** Logs and live events of jobs. */
  feeds: JobFeeds;
  /** The Bytescale-style async view over the same jobs. */
  asyncJobs: AsyncJobs;
  flow: ReturnType<typeof createTaskFlow>;
  /** Delivery to customers' buckets and deletion of temporary storage past retention. */
  deliveries: Deliveries;
  /** The file source's upload flow. */
  uploads: Uploads;
  scheduler: ReturnType<typeof createScheduler>;
  /** The server's side of the worker protocol (/v1/worker). */
  workers: RemoteWorkers;
  /** Signs and checks short-lived access tokens. */
  tokens: TokenIssuer;
  /** Checks API keys (remembering found ones for a moment). */
  keys: KeyCheck;
  /** An account's own keys (/v1/auth/keys). */
  accountKeys: AccountKeys;
  /** The operator's API: accounts, quotas, disabling. */
  operator: Operator;
  /** A worker link for in-process slots. */
  localLink(worker: LocalWorker): WorkerLink;
  /** Set when this start created the first account (the key is shown once, then forgotten). */
  firstKey: NewKey | null;
  /** The operator's key, made on an empty database (shown once by tessera up). */
  operatorKey: NewKey | null;
  close(): Promise<void>;
}

/** The in-process slots as they register: host-image patterns as the worker's settings give them (python:*). */
export type LocalWorker = Parameters<typeof createLocalLink>[2] & { runtime?: unknown };

export interface EngineOptions {
  config: Config;
  log: Log;
  /** Use this database instead of opening one from the config (tests pass a fresh one). */
  db?: Db;
  blobs?: BlobStore;
}

export async function createEngine(options: EngineOptions): Promise<Engine> {
  const { config, log } = options;
  const db = options.db ?? (await openDb({ databaseUrl: config.databaseUrl, schema: config.databaseSchema, dataDir: path.join(config.home, 'db') }));
  const applied = await migrate(db);
  if (applied.length > 0) log.info({ migrations: applied }, 'database migrated');
  // One signing key for the whole deployment, kept in the database so every replica agrees.
  const signingKey = await getOrCreateSetting(db, 'link_signing_key', () => randomBytes(32).toString('base64url'));
  const deps: EngineDeps = {
    db,
    blobs: options.blobs ?? (config.blobs.kind === 's3' ? createS3BlobStore(config.blobs.s3) : createLocalBlobStore(path.join(config.home, 'blobs'))),
    config,
    log,
    signer: createLinkSigner(signingKey),
    leaseTokens: createLeaseTokens(signingKey),
    signals: createSignals(),
    metrics: createMetrics(db),
    secrets: createSecrets(db, sealingKeyFrom(config.secretsKey ?? (await getOrCreateSetting(db, 'secrets_key', () => randomBytes(32).toString('base64url'))))),
  };
  const catalog = createCatalog(deps);
  const builtins = await catalog.loadBuiltins();
  log.debug(builtins, 'built-in templates loaded');
  const feeds = createJobFeeds(deps);
  const flow = createTaskFlow(deps);
  const deliveries = createDeliveries(deps);
  deps.signals.on('deliveries', () => deliveries.kick());
  const scheduler = createScheduler(deps, flow, deliveries);
  // Embedded, this process alone opens the database (the home is locked): every lease still held
  // is a dead process's, handed back now rather than when it would expire.
  if (db.kind === 'pglite') {
    const handedBack = await flow.expireLeases(true);
    if (handedBack > 0) log.info({ tasks: handedBack }, 'handed back the leases of the previous process');
  }
  const tokenKey = await getOrCreateSetting(db, 'access_token_key', () => randomBytes(32).toString('base64url'));
  const { firstKey, operatorKey } = await ensureFirstAccount(db, config.initialApiKey, config.initialOperatorKey);
  // Tasks queued by other replicas wake this one's idle workers through the database.
  const unlisten = db.listen ? await db.listen(TASKS_CHANNEL, () => deps.signals.emit('tasks')) : async () => {};
  const jobs = createCustomerJobs(deps);
  const keys = createKeyCheck(db, undefined, deps.signals);
  return {
    deps,
    jobs,
    catalog,
    feeds,
    asyncJobs: createAsyncJobs(deps, jobs),
    flow,
    deliveries,
    uploads: createUploads(deps),
    scheduler,
    tokens: createTokenIssuer(tokenKey),
    keys,
    accountKeys: createAccountKeys(db, keys),
    operator: createOperator(deps, keys),
    workers: createRemoteWorkers(deps, flow),
    localLink: (worker) => createLocalLink(deps, flow, { ...worker, hostImages: likePatterns(worker.hostImages) }),
    firstKey,
    operatorKey,
    async close() {
      await scheduler.stop();
      feeds.close();
      await unlisten();
      if (!options.db) await db.close();
    },
  };
}

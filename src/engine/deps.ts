import { EventEmitter } from 'node:events';
import type { BlobStore } from '../blobs/blob-store.js';
import type { LinkSigner } from '../blobs/signed-links.js';
import type { Config } from '../config/config.js';
import type { Log } from '../domain/log.js';
import type { Db } from '../store/db.js';
import type { LeaseTokens } from './lease-tokens.js';
import type { Metrics } from './metrics.js';
import type { Secrets } from './secrets.js';

/** What every part of the engine is built from. One per process; tests build it over a fresh database. */
export interface EngineDeps {
  db: Db;
  blobs: BlobStore;
  config: Config;
  log: Log;
  signer: LinkSigner;
  /** Lease tokens bound to the worker they were handed to. */
  leaseTokens: LeaseTokens;
  /** This process's Prometheus metrics (GET /metrics). */
  metrics: Metrics;
  /** Account secrets (bucket credentials), sealed in the database. */
  secrets: Secrets;
  /**
   * In-process hints: 'tasks' when tasks were queued, so idle slots lease at once instead of
   * waiting for their next poll; 'job-stopped' (jobId) when a job was aborted or timed out, so
   * its running tasks are killed at once. Only hints: leasing also polls and heartbeats also
   * report lost leases, because what another replica does never reaches this emitter.
   */
  signals: EventEmitter;
}

export function createSignals(): EventEmitter {
  const signals = new EventEmitter();
  signals.setMaxListeners(0);
  return signals;
}

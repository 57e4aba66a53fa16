import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Queryable } from '../store/db.js';
import { countConnectedWorkers, countJobsByState, countQueuedTasks } from '../store/stats.js';

// Prometheus metrics of one Tessera process (GET /metrics). Counters and histograms count what
// this process did; the gauges (jobs by state, queue depth, connected workers) are read from the
// database at scrape time, so every replica reports the same whole-deployment figures for them.

/** A fresh registry per process (and per test server), never prom-client's global one. */
export function createMetrics(db: Queryable) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const registers = [registry];
  const kind = ['kind'] as const;
  const metrics = {
    registry,
    tasksLeased: new Counter({ name: 'tessera_tasks_leased_total', help: 'Task attempts leased to a worker', labelNames: kind, registers }),
    tasksCompleted: new Counter({ name: 'tessera_tasks_completed_total', help: 'Task attempts that completed', labelNames: kind, registers }),
    tasksFailed: new Counter({ name: 'tessera_tasks_failed_total', help: 'Tasks that failed for good (their last attempt failed)', labelNames: kind, registers }),
    tasksRetried: new Counter({ name: 'tessera_tasks_retried_total', help: 'Failed task attempts that were queued again', labelNames: kind, registers }),
    leasesExpired: new Counter({ name: 'tessera_leases_expired_total', help: 'Leases that ran out because their worker went silent', registers }),
    leaseWait: new Histogram({
      name: 'tessera_task_lease_wait_seconds',
      help: 'Time from a task being queued to its first lease',
      labelNames: kind,
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120, 600],
      registers,
    }),
    taskDuration: new Histogram({
      name: 'tessera_task_duration_seconds',
      help: "Wall time of a task attempt's process, as its worker measured it",
      labelNames: kind,
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800],
      registers,
    }),
    httpDuration: new Histogram({
      name: 'tessera_http_request_duration_seconds',
      help: 'HTTP request latency by route',
      labelNames: ['method', 'route', 'status'] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 30],
      registers,
    }),
  };
  new Gauge({
    name: 'tessera_jobs',
    help: 'Jobs by state (all accounts, deleted ones excluded)',
    labelNames: ['state'],
    registers,
    async collect() {
      this.reset();
      for (const { state, count } of await countJobsByState(db)) this.set({ state }, count);
    },
  });
  new Gauge({
    name: 'tessera_queue_depth',
    help: 'Tasks queued and waiting for a worker',
    registers,
    async collect() {
      this.set(await countQueuedTasks(db));
    },
  });
  new Gauge({
    name: 'tessera_workers_connected',
    help: 'Workers seen in the last 30 seconds (agents and in-process slots)',
    registers,
    async collect() {
      this.set(await countConnectedWorkers(db, 30));
    },
  });
  return metrics;
}

export type Metrics = ReturnType<typeof createMetrics>;

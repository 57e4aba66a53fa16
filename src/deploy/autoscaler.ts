import type { IScaledObject } from '@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject';
import type { ITriggerAuthentication } from '@kubernetes-models/keda/keda.sh/v1alpha1/TriggerAuthentication';
import { WORKER_NAME, metadata } from './labels.js';
import type { KubernetesOptions } from './options.js';

// KEDA scales the worker Deployment on Tessera's queue: one worker per `slots` tasks waiting,
// between --workers and --max-workers. Either through Prometheus (the gauge every server exports
// at /metrics, read from the database at scrape time) or straight from PostgreSQL.

/** The gauge src/engine/metrics.ts exports: tasks queued and waiting for a worker. */
export const QUEUE_METRIC = 'tessera_queue_depth';

/**
 * Every replica reports the whole deployment's queue, so the replicas' values are one value:
 * max, not sum. The namespace label is the one Prometheus's usual pod discovery adds.
 */
export function prometheusQuery(options: KubernetesOptions): string {
  return `max(${QUEUE_METRIC}{namespace="${options.namespace}"})`;
}

/** Queued tasks and those leased (running, or prefetched): the work the fleet has in hand. */
export const POSTGRESQL_QUERY = "SELECT count(*) FROM tasks WHERE state IN ('queued', 'leased')";

export const TRIGGER_AUTH = 'tessera-database';

export function workerAutoscaler(options: KubernetesOptions, version: string): Array<IScaledObject | ITriggerAuthentication> {
  const threshold = String(options.slots);
  const trigger: IScaledObject['spec']['triggers'][number] =
    options.scaler === 'prometheus'
      ? { type: 'prometheus', metricType: 'AverageValue', metadata: { serverAddress: options.prometheusUrl, query: prometheusQuery(options), threshold, activationThreshold: '0' } }
      : { type: 'postgresql', metricType: 'AverageValue', authenticationRef: { name: TRIGGER_AUTH }, metadata: { query: POSTGRESQL_QUERY, targetQueryValue: threshold, activationTargetQueryValue: '0' } };
  const scaledObject: IScaledObject = {
    apiVersion: 'keda.sh/v1alpha1',
    kind: 'ScaledObject',
    metadata: metadata(options, WORKER_NAME, 'worker', version, {
      'tessera.dev/scaling': options.scaler === 'prometheus'
        ? `one worker per ${threshold} tasks in ${QUEUE_METRIC} (Prometheus must scrape the server pods: they carry prometheus.io annotations)`
        : `one worker per ${threshold} queued or leased tasks, counted in PostgreSQL`,
    }),
    spec: {
      scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: WORKER_NAME },
      minReplicaCount: options.minWorkers,
      maxReplicaCount: options.maxWorkers,
      pollingInterval: 15,
      // A worker removed while it runs tasks fails them for a retry: scale down slowly.
      cooldownPeriod: 300,
      triggers: [trigger],
    },
  };
  if (options.scaler === 'prometheus') return [scaledObject];
  const auth: ITriggerAuthentication = {
    apiVersion: 'keda.sh/v1alpha1',
    kind: 'TriggerAuthentication',
    metadata: metadata(options, TRIGGER_AUTH, 'worker', version),
    // The same Secret the servers read their DATABASE_URL from, by reference.
    spec: { secretTargetRef: [{ parameter: 'connection', name: options.databaseUrlSecret.name, key: options.databaseUrlSecret.key }] },
  };
  return [auth, scaledObject];
}

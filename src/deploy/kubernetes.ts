import type { INamespace } from 'kubernetes-models/v1/Namespace';
import { workerAutoscaler } from './autoscaler.js';
import { migrationJob } from './migration-job.js';
import type { KubernetesOptions } from './options.js';
import { SERVER_SECRET, WORKER_SECRET, serverSecretFiles } from './secrets.js';
import { serverObjects } from './server.js';
import { workerDeployment } from './workers.js';
import { toYamlDocuments } from './yaml.js';

// `tessera deploy kubernetes`: the whole manifest set, in the order `kubectl apply -f` should
// meet it (the namespace, then the migration Job, then what waits for it).

export type Manifest = { apiVersion: string; kind: string; metadata?: { name?: string; namespace?: string } } & Record<string, unknown>;

export function kubernetesManifests(options: KubernetesOptions, version: string): Manifest[] {
  const namespace: INamespace = { apiVersion: 'v1', kind: 'Namespace', metadata: { name: options.namespace, labels: { 'app.kubernetes.io/name': 'tessera' } } };
  return [
    ...(options.createNamespace ? [namespace] : []),
    migrationJob(options, version),
    ...serverObjects(options, version),
    workerDeployment(options, version),
    ...workerAutoscaler(options, version),
  ] as Manifest[];
}

/** The Secrets the manifests read and never hold: the operator makes them, e.g. with kubectl. */
export function requiredSecrets(options: KubernetesOptions): Array<{ name: string; keys: string[] }> {
  const byName = new Map<string, string[]>();
  for (const file of serverSecretFiles(options)) byName.set(file.secret, [...(byName.get(file.secret) ?? []), file.key]);
  byName.set(WORKER_SECRET, ['TESSERA_WORKER_TOKEN']);
  return [...byName].map(([name, keys]) => ({ name, keys }));
}

export function renderKubernetes(options: KubernetesOptions, version: string): string {
  const manifests = kubernetesManifests(options, version);
  if (options.output === 'json') return `${JSON.stringify({ apiVersion: 'v1', kind: 'List', items: manifests }, null, 2)}\n`;
  const secrets = requiredSecrets(options).map(({ name, keys }) => `  kubectl -n ${options.namespace} create secret generic ${name} ${keys.map((key) => `--from-file=${key}=…`).join(' ')}`);
  const header = [
    `Tessera ${version} on Kubernetes: made by \`tessera deploy kubernetes\`; see docs/DEPLOYING.md.`,
    'Needs KEDA (keda.sh/v1alpha1) for the worker autoscaler. Secrets are referenced, never written here; make them first:',
    ...secrets,
    `(${SERVER_SECRET}: the sealing key, the operator's and the first account's keys${options.blobs ? ', the bucket\'s credentials' : ''};`,
    ` ${WORKER_SECRET}: a worker token, from \`tessera key create --worker\` or POST /v1/operator/keys.)`,
  ];
  return toYamlDocuments(manifests.map((value, index) => ({ ...(index === 0 ? { comment: header } : {}), value })));
}

import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import type { IResourceRequirements } from 'kubernetes-models/v1/ResourceRequirements';
import { WORKER_NAME, metadata, selectorLabels, serverUrl } from './labels.js';
import type { KubernetesOptions } from './options.js';
import { TASK_MEMORY_MB } from './options.js';
import { workerPodSecurity, workerSecurityNotes } from './pod-security.js';
import { WORKER_SECRET_FILES, secretsAsFiles } from './secrets.js';

// Worker agents: they lease tasks from the servers over HTTP and hold no database or bucket
// credentials, only their token. The autoscaler (autoscaler.ts) sets their number.

/** The worker process itself, its launchers and task folders' bookkeeping, besides its tasks. */
const AGENT_MEMORY_MB = 512;

/** One CPU per slot, and each slot's task memory (which is what TESSERA_TASK_MEMORY_MB grants a task). */
export function workerResources(options: KubernetesOptions): IResourceRequirements {
  const memory = `${options.slots * TASK_MEMORY_MB + AGENT_MEMORY_MB}Mi`;
  return { requests: { cpu: String(options.slots), memory }, limits: { memory } };
}

export function workerDeployment(options: KubernetesOptions, version: string): IDeployment {
  const secrets = secretsAsFiles(WORKER_SECRET_FILES);
  const security = workerPodSecurity(options);
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: metadata(options, WORKER_NAME, 'worker', version),
    spec: {
      // KEDA owns the replica count from here on; this is the start.
      replicas: options.minWorkers,
      selector: { matchLabels: selectorLabels('worker') },
      template: {
        metadata: { labels: { ...selectorLabels('worker'), 'app.kubernetes.io/version': version }, annotations: workerSecurityNotes(options) },
        spec: {
          securityContext: security.pod,
          ...(security.hostUsers === undefined ? {} : { hostUsers: security.hostUsers }),
          // Nothing a task can reach should hold a credential to the cluster's API.
          automountServiceAccountToken: false,
          containers: [{
            name: 'worker',
            image: options.image,
            args: ['worker', '--server', serverUrl(options), '--slots', String(options.slots)],
            env: [
              { name: 'TESSERA_SANDBOX', value: options.workerSandbox === 'off' ? 'off' : 'on' },
              { name: 'TESSERA_TASK_MEMORY_MB', value: String(TASK_MEMORY_MB) },
              // No container runtime in the pod: components naming these images run in the sandbox on
              // the image's own python3 and node; others wait for a worker that has a runtime.
              { name: 'TESSERA_CONTAINER_RUNTIME', value: 'off' },
              { name: 'TESSERA_HOST_IMAGES', value: options.workerHostImages },
              ...secrets.env,
            ],
            volumeMounts: [{ name: 'home', mountPath: '/var/lib/tessera' }, { name: 'tmp', mountPath: '/tmp' }, ...secrets.volumeMounts],
            securityContext: security.container,
            resources: workerResources(options),
          }],
          volumes: [{ name: 'home', emptyDir: { sizeLimit: '20Gi' } }, { name: 'tmp', emptyDir: {} }, ...secrets.volumes],
          // A stopped worker hands its queued leases back and fails its running tasks for a retry.
          terminationGracePeriodSeconds: 60,
        },
      },
    },
  };
}

import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import type { IPersistentVolumeClaim } from 'kubernetes-models/v1/PersistentVolumeClaim';
import type { IService } from 'kubernetes-models/v1/Service';
import type { IPodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IVolume } from 'kubernetes-models/v1/Volume';
import type { IVolumeMount } from 'kubernetes-models/v1/VolumeMount';
import { HTTP_PORT, SERVER_NAME, metadata, selectorLabels } from './labels.js';
import type { KubernetesOptions } from './options.js';
import { RESTRICTED_CONTAINER, RESTRICTED_POD } from './pod-security.js';
import { secretsAsFiles, serverSecretFiles } from './secrets.js';

// The API and scheduler replicas: stateless, any number, behind one Service. Without an S3
// bucket they share their blobs on a ReadWriteMany volume instead (README: one shared home).

export const BLOBS_CLAIM = 'tessera-blobs';
/** How long a server's init container waits for the migration Job before the pod fails and retries. */
export const MIGRATE_WAIT_SECONDS = 600;
const HOME = '/var/lib/tessera';

/** What every server-side container (servers, the migration Job) gets: settings, secrets, a home. */
export function serverContainerParts(options: KubernetesOptions): { env: NonNullable<IContainer['env']>; volumes: IVolume[]; volumeMounts: IVolumeMount[] } {
  const secrets = secretsAsFiles(serverSecretFiles(options));
  const home: IVolume = options.blobs ? { name: 'home', emptyDir: { sizeLimit: '4Gi' } } : { name: 'home', persistentVolumeClaim: { claimName: BLOBS_CLAIM } };
  return {
    env: [...(options.blobs ? [{ name: 'TESSERA_BLOBS', value: options.blobs }] : []), ...secrets.env],
    volumes: [home, { name: 'tmp', emptyDir: {} }, ...secrets.volumes],
    volumeMounts: [{ name: 'home', mountPath: HOME }, { name: 'tmp', mountPath: '/tmp' }, ...secrets.volumeMounts],
  };
}

export function serverObjects(options: KubernetesOptions, version: string): Array<IDeployment | IService | IPodDisruptionBudget | IPersistentVolumeClaim> {
  const parts = serverContainerParts(options);
  const deployment: IDeployment = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: metadata(options, SERVER_NAME, 'server', version),
    spec: {
      replicas: options.servers,
      selector: { matchLabels: selectorLabels('server') },
      // Replicas are stateless and share the database: replace them one at a time, never all.
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
      template: {
        metadata: {
          labels: { ...selectorLabels('server'), 'app.kubernetes.io/version': version },
          // Every replica reports the whole deployment's queue (read from the database at scrape time).
          annotations: { 'prometheus.io/scrape': 'true', 'prometheus.io/port': String(HTTP_PORT), 'prometheus.io/path': '/metrics' },
        },
        spec: {
          securityContext: RESTRICTED_POD,
          automountServiceAccountToken: false,
          // Servers never start on a schema older than their image's: this waits for the migration Job.
          initContainers: [{
            name: 'wait-for-migrations',
            image: options.image,
            args: ['migrate', '--wait', String(MIGRATE_WAIT_SECONDS)],
            env: parts.env,
            volumeMounts: parts.volumeMounts,
            securityContext: RESTRICTED_CONTAINER,
            resources: { requests: { cpu: '50m', memory: '128Mi' }, limits: { memory: '256Mi' } },
          }],
          containers: [{
            name: 'server',
            image: options.image,
            args: ['server', '--host', '0.0.0.0', '--port', String(HTTP_PORT)],
            ports: [{ name: 'http', containerPort: HTTP_PORT }],
            env: parts.env,
            volumeMounts: parts.volumeMounts,
            securityContext: RESTRICTED_CONTAINER,
            resources: { requests: { cpu: '500m', memory: '512Mi' }, limits: { memory: '1Gi' } },
            // /readyz is 503 while the database is away: the Service stops sending requests, the pod stays.
            readinessProbe: { httpGet: { path: '/readyz', port: 'http' }, periodSeconds: 5, failureThreshold: 2 },
            livenessProbe: { httpGet: { path: '/healthz', port: 'http' }, periodSeconds: 10, failureThreshold: 6 },
          }],
          volumes: parts.volumes,
          // A server stops taking requests and finishes what it holds on SIGTERM; leases held by none are retried.
          terminationGracePeriodSeconds: 30,
        },
      },
    },
  };
  const service: IService = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: metadata(options, SERVER_NAME, 'server', version),
    spec: { selector: selectorLabels('server'), ports: [{ name: 'http', port: HTTP_PORT, targetPort: 'http' }] },
  };
  const budget: IPodDisruptionBudget = {
    apiVersion: 'policy/v1',
    kind: 'PodDisruptionBudget',
    metadata: metadata(options, SERVER_NAME, 'server', version),
    spec: { selector: { matchLabels: selectorLabels('server') }, ...(options.servers > 1 ? { minAvailable: 1 } : { maxUnavailable: 1 }) },
  };
  const claim: IPersistentVolumeClaim = {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: metadata(options, BLOBS_CLAIM, 'server', version, { 'tessera.dev/why': 'no --blobs bucket: the servers share their blobs on this volume, which needs a ReadWriteMany storage class' }),
    spec: { accessModes: ['ReadWriteMany'], resources: { requests: { storage: '100Gi' } } },
  };
  return options.blobs ? [deployment, service, budget] : [claim, deployment, service, budget];
}

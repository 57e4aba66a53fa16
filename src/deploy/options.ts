import { loadConfig } from '../config/config.js';
import { TesseraError } from '../domain/errors.js';

// The flags of `tessera deploy kubernetes`, checked once into one typed object: every bad value
// stops the command naming the flag, the value and a good example.

export interface KubernetesOptions {
  namespace: string;
  /** Whether the manifest set makes its Namespace (off when the cluster's operator makes it). */
  createNamespace: boolean;
  image: string;
  servers: number;
  /** The worker Deployment's fewest and most replicas (the autoscaler moves between them). */
  minWorkers: number;
  maxWorkers: number;
  /** Tasks each worker runs at once: its CPU request, and its memory request by TASK_MEMORY_MB. */
  slots: number;
  /** A Secret holding the PostgreSQL URL, and the key within it. */
  databaseUrlSecret: { name: string; key: string };
  /** TESSERA_BLOBS for the servers, or undefined: a shared ReadWriteMany volume instead. */
  blobs: string | undefined;
  /** The worker's confinement: Tessera's sandbox inside the pod, or none (the pod is the boundary). */
  workerSandbox: 'namespaces' | 'off';
  /** Images whose tasks workers run in their own sandbox (TESSERA_HOST_IMAGES): the pod has no container runtime. */
  workerHostImages: string;
  /** A seccomp profile on the nodes (relative to the kubelet's seccomp folder) for the sandbox, or Unconfined. */
  workerSeccompProfile: string | undefined;
  scaler: 'prometheus' | 'postgresql';
  prometheusUrl: string;
  output: 'yaml' | 'json';
}

export interface KubernetesFlags {
  namespace?: string;
  createNamespace?: boolean;
  image?: string;
  servers?: string;
  workers?: string;
  maxWorkers?: string;
  slots?: string;
  databaseUrlSecret?: string;
  blobs?: string;
  workerSandbox?: string;
  workerSeccompProfile?: string;
  workerHostImages?: string;
  scaler?: string;
  prometheus?: string;
  output?: string;
  json?: boolean;
}

/** The memory a task may use (TESSERA_TASK_MEMORY_MB's default); a worker asks for this per slot. */
export const TASK_MEMORY_MB = 2048;

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const SECRET_KEY = /^[-._a-zA-Z0-9]{1,253}$/;

function invalid(flag: string, value: string, why: string, example: string): TesseraError {
  return new TesseraError('INVALID_ARGUMENT', `${flag} ${JSON.stringify(value)}: ${why}`, { hint: `for example ${flag} ${example}` });
}

function count(flag: string, value: string | undefined, fallback: number, min: number, max: number, example: string): number {
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) throw invalid(flag, value, `expected a whole number from ${min} to ${max}`, example);
  return Number(value);
}

function choice<T extends string>(flag: string, value: string | undefined, choices: readonly T[], fallback: T): T {
  if (value === undefined) return fallback;
  if (!(choices as readonly string[]).includes(value)) throw invalid(flag, value, `expected one of ${choices.join(', ')}`, choices[0]!);
  return value as T;
}

function secretReference(value: string): { name: string; key: string } {
  const [name = '', key = 'DATABASE_URL', ...rest] = value.split(':');
  if (!DNS_LABEL.test(name) || !SECRET_KEY.test(key) || rest.length > 0) {
    throw invalid('--database-url-secret', value, 'expected a Secret\'s name, optionally :key (default key DATABASE_URL)', 'tessera-database or pg-app:uri');
  }
  return { name, key };
}

/** TESSERA_BLOBS checked as the servers will check it; credentials never go in the URL. */
function blobsUrl(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (/^s3:\/\/[^/?]*@/.test(value)) throw invalid('--blobs', value.replace(/\/\/[^@]*@/, '//…@'), 'credentials do not belong in the URL: the manifests read them from the Secret tessera', 's3://bucket/tessera?endpoint=https://s3.example.com');
  try {
    loadConfig({}, { TESSERA_BLOBS: value, TESSERA_S3_ACCESS_KEY_ID: 'checked', TESSERA_S3_SECRET_ACCESS_KEY: 'checked' });
  } catch (error) {
    throw invalid('--blobs', value, (error as Error).message, 's3://bucket/tessera?endpoint=https://s3.example.com&region=us-east-1');
  }
  return value;
}

/** `version` names the default image: the Containerfile's image, pushed as tessera:<version>. */
export function kubernetesOptions(flags: KubernetesFlags, version: string): KubernetesOptions {
  const namespace = flags.namespace ?? 'tessera';
  if (!DNS_LABEL.test(namespace)) throw invalid('--namespace', namespace, 'expected a DNS label (lower-case letters, digits and -, at most 63)', 'tessera');
  const image = flags.image ?? `tessera:${version}`;
  if (!/^[a-z0-9]([a-z0-9._\-/:@]*[a-zA-Z0-9])?$/.test(image) || /\s/.test(image)) throw invalid('--image', image, 'expected an image reference', 'registry.example.com/tessera:0.1.0');
  const minWorkers = count('--workers', flags.workers, 1, 0, 1000, '2');
  const maxWorkers = count('--max-workers', flags.maxWorkers, Math.max(10, minWorkers), 1, 1000, '20');
  if (maxWorkers < minWorkers) throw invalid('--max-workers', String(maxWorkers), `is fewer than --workers ${minWorkers}`, String(Math.max(minWorkers, 10)));
  const prometheusUrl = flags.prometheus ?? 'http://prometheus-operated.monitoring.svc:9090';
  if (!/^https?:\/\/[^/\s]+/.test(prometheusUrl)) throw invalid('--prometheus', prometheusUrl, 'expected an http(s) URL of the Prometheus server KEDA asks', 'http://prometheus-operated.monitoring.svc:9090');
  const workerSeccompProfile = flags.workerSeccompProfile;
  if (workerSeccompProfile !== undefined && (!/^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*\.json$/.test(workerSeccompProfile) || workerSeccompProfile.split('/').includes('..'))) {
    throw invalid('--worker-seccomp-profile', workerSeccompProfile, 'expected a .json path relative to the kubelet\'s seccomp folder (/var/lib/kubelet/seccomp)', 'tessera-worker.json');
  }
  // The image holds Debian bookworm's python3 (3.11) and Node 20, as `tessera up`'s default maps.
  const workerHostImages = flags.workerHostImages ?? 'python:*,node:*';
  try {
    loadConfig({}, { TESSERA_HOST_IMAGES: workerHostImages });
  } catch (error) {
    throw invalid('--worker-host-images', workerHostImages, (error as Error).message, '"python:*,node:*" (or "" for none)');
  }
  if (flags.json && flags.output !== undefined && flags.output !== 'json') throw invalid('--output', flags.output, 'contradicts --json', 'json');
  return {
    namespace,
    createNamespace: flags.createNamespace ?? true,
    image,
    servers: count('--servers', flags.servers, 2, 1, 100, '3'),
    minWorkers,
    maxWorkers,
    slots: count('--slots', flags.slots, 4, 1, 256, '8'),
    databaseUrlSecret: secretReference(flags.databaseUrlSecret ?? 'tessera-database'),
    blobs: blobsUrl(flags.blobs),
    workerSandbox: choice('--worker-sandbox', flags.workerSandbox, ['namespaces', 'off'] as const, 'namespaces'),
    workerSeccompProfile,
    workerHostImages,
    scaler: choice('--scaler', flags.scaler, ['prometheus', 'postgresql'] as const, 'prometheus'),
    prometheusUrl,
    output: flags.json ? 'json' : choice('--output', flags.output, ['yaml', 'json'] as const, 'yaml'),
  };
}

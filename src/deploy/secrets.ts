import type { IEnvVar } from 'kubernetes-models/v1/EnvVar';
import type { IVolume } from 'kubernetes-models/v1/Volume';
import type { IVolumeMount } from 'kubernetes-models/v1/VolumeMount';
import type { SECRET_SETTINGS } from '../config/config.js';
import type { KubernetesOptions } from './options.js';

// Secrets reach Tessera as files: each Secret is a read-only volume and the setting is its
// `…_FILE` (src/config reads SECRET_SETTINGS that way), so no value is ever written into a
// manifest, an environment listing (`kubectl describe`) or a task's view of the worker.

export type SecretSetting = (typeof SECRET_SETTINGS)[number];

export interface SecretFile {
  secret: string;
  key: string;
  setting: SecretSetting;
}

/** The Secret the servers' own secrets live in (made by the operator; see docs/DEPLOYING.md). */
export const SERVER_SECRET = 'tessera';
/** The worker token alone: workers never hold the database's or the servers' secrets. */
export const WORKER_SECRET = 'tessera-worker';
export const SECRETS_ROOT = '/run/secrets';

export function serverSecretFiles(options: KubernetesOptions): SecretFile[] {
  return [
    { secret: options.databaseUrlSecret.name, key: options.databaseUrlSecret.key, setting: 'DATABASE_URL' },
    // The servers share one database: account secrets are sealed under a key kept outside it.
    { secret: SERVER_SECRET, key: 'TESSERA_SECRETS_KEY', setting: 'TESSERA_SECRETS_KEY' },
    // Chosen by the operator, so the first start prints no key into the pods' logs.
    { secret: SERVER_SECRET, key: 'TESSERA_OPERATOR_KEY', setting: 'TESSERA_OPERATOR_KEY' },
    { secret: SERVER_SECRET, key: 'TESSERA_API_KEY', setting: 'TESSERA_API_KEY' },
    ...(options.blobs
      ? [
          { secret: SERVER_SECRET, key: 'TESSERA_S3_ACCESS_KEY_ID', setting: 'TESSERA_S3_ACCESS_KEY_ID' },
          { secret: SERVER_SECRET, key: 'TESSERA_S3_SECRET_ACCESS_KEY', setting: 'TESSERA_S3_SECRET_ACCESS_KEY' },
        ] as const
      : []),
  ];
}

export const WORKER_SECRET_FILES: SecretFile[] = [{ secret: WORKER_SECRET, key: 'TESSERA_WORKER_TOKEN', setting: 'TESSERA_WORKER_TOKEN' }];

/** The volumes, mounts and `…_FILE` variables that hand these secrets to a container. */
export function secretsAsFiles(files: SecretFile[]): { volumes: IVolume[]; volumeMounts: IVolumeMount[]; env: IEnvVar[] } {
  const secrets = [...new Set(files.map((file) => file.secret))];
  const volumeName = (secret: string) => `secret-${secret}`.slice(0, 63).replace(/-+$/, '');
  return {
    volumes: secrets.map((secret) => ({
      name: volumeName(secret),
      // 0440 with the pod's fsGroup: readable by Tessera's user and no other.
      secret: { secretName: secret, defaultMode: 0o440, items: files.filter((file) => file.secret === secret).map((file) => ({ key: file.key, path: file.setting })) },
    })),
    volumeMounts: secrets.map((secret) => ({ name: volumeName(secret), mountPath: `${SECRETS_ROOT}/${secret}`, readOnly: true })),
    env: files.map((file) => ({ name: `${file.setting}_FILE`, value: `${SECRETS_ROOT}/${file.secret}/${file.setting}` })),
  };
}

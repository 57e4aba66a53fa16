import type { IJob } from 'kubernetes-models/batch/v1/Job';
import { metadata } from './labels.js';
import type { KubernetesOptions } from './options.js';
import { RESTRICTED_CONTAINER, RESTRICTED_POD } from './pod-security.js';
import { serverContainerParts } from './server.js';

// The schema is migrated once per version by this Job, before any server of that version starts
// (their init container waits for it). A Job's pod template cannot change, so its name carries
// the version: applying the next version's manifests makes a new Job rather than failing.

export function migrationJob(options: KubernetesOptions, version: string): IJob {
  const parts = serverContainerParts(options);
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: metadata(options, `tessera-migrate-${version.replace(/[^a-z0-9]+/g, '-')}`, 'migrate', version),
    spec: {
      backoffLimit: 6,
      ttlSecondsAfterFinished: 7 * 24 * 3600,
      template: {
        metadata: { labels: { 'app.kubernetes.io/name': 'tessera', 'app.kubernetes.io/component': 'migrate' } },
        spec: {
          restartPolicy: 'OnFailure',
          securityContext: RESTRICTED_POD,
          automountServiceAccountToken: false,
          containers: [{
            name: 'migrate',
            image: options.image,
            args: ['migrate'],
            env: parts.env,
            volumeMounts: parts.volumeMounts,
            securityContext: RESTRICTED_CONTAINER,
            resources: { requests: { cpu: '100m', memory: '256Mi' }, limits: { memory: '512Mi' } },
          }],
          volumes: parts.volumes,
        },
      },
    },
  };
}

import assert from 'node:assert/strict';
import { test } from 'node:test';
import yaml from 'js-yaml';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { Job } from 'kubernetes-models/batch/v1/Job';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { PersistentVolumeClaim } from 'kubernetes-models/v1/PersistentVolumeClaim';
import { Service } from 'kubernetes-models/v1/Service';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { ScaledObject } from '@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject';
import { TriggerAuthentication } from '@kubernetes-models/keda/keda.sh/v1alpha1/TriggerAuthentication';
import { SECRET_SETTINGS } from '../../src/config/config.js';
import { POSTGRESQL_QUERY, QUEUE_METRIC, prometheusQuery } from '../../src/deploy/autoscaler.js';
import type { Manifest } from '../../src/deploy/kubernetes.js';
import { kubernetesManifests } from '../../src/deploy/kubernetes.js';
import { kubernetesOptions } from '../../src/deploy/options.js';
import { runCli } from '../helpers/cli.js';
import { withFreshDb } from '../helpers/db.js';
import { startTestTessera } from '../helpers/tessera.js';

// `tessera deploy kubernetes`: every object it prints is checked against the Kubernetes and KEDA
// schemas (kubernetes-models), the autoscaler against what Tessera really exports, and no secret
// may reach the output however the environment holds it.

const MODELS: Record<string, new (data: any) => { validate(): void }> = {
  Namespace, Job, PersistentVolumeClaim, Deployment, Service, PodDisruptionBudget, ScaledObject, TriggerAuthentication,
};

const SHAPES: Array<[string, string[]]> = [
  ['the defaults', []],
  ['a bucket, the PostgreSQL scaler, no sandbox, no namespace', ['--blobs', 's3://bucket/tessera?endpoint=https://s3.example.com', '--scaler', 'postgresql', '--worker-sandbox', 'off', '--no-create-namespace']],
  ['many workers of many slots, one server, a seccomp profile', ['--worker-seccomp-profile', 'tessera/worker.json', '--namespace', 'compute', '--workers', '3', '--max-workers', '40', '--slots', '16', '--servers', '1', '--database-url-secret', 'pg-app:uri', '--image', 'registry.example.com/tessera:0.1.0']],
];

async function manifests(args: string[]): Promise<Manifest[]> {
  const result = await runCli(['deploy', 'kubernetes', '--json', ...args]);
  assert.equal(result.code, 0, result.stderr);
  const list = JSON.parse(result.stdout) as { kind: string; items: Manifest[] };
  assert.equal(list.kind, 'List');
  return list.items;
}

function containersOf(manifest: Manifest): any[] {
  const spec = (manifest as any).spec?.template?.spec;
  return spec ? [...(spec.initContainers ?? []), ...spec.containers] : [];
}

for (const [shape, args] of SHAPES) {
  test(`deploy kubernetes (${shape}): every object validates against its schema`, async () => {
    const items = await manifests(args);
    const kinds = items.map((item) => item.kind);
    for (const kind of ['Job', 'Deployment', 'Service', 'PodDisruptionBudget', 'ScaledObject']) assert.ok(kinds.includes(kind), `${kind} missing from ${kinds.join(', ')}`);
    for (const item of items) {
      const Model = MODELS[item.kind];
      assert.ok(Model, `no schema model for ${item.kind}`);
      assert.doesNotThrow(() => new Model(item).validate(), `${item.kind} ${item.metadata?.name}`);
    }
  });
}

test('the schema check is real: a broken Deployment and ScaledObject are refused', () => {
  const [deployment] = kubernetesManifests(kubernetesOptions({ createNamespace: false }, '0.1.0'), '0.1.0').filter((item) => item.kind === 'Deployment') as any[];
  assert.throws(() => new Deployment({ ...deployment, spec: { ...deployment.spec, replicas: 'two' } }).validate());
  assert.throws(() => new ScaledObject({ apiVersion: 'keda.sh/v1alpha1', kind: 'ScaledObject', metadata: { name: 'x' }, spec: { triggers: [] } } as any).validate());
});

test('YAML output is the same objects as JSON output', async () => {
  const args = ['--blobs', 's3://bucket/tessera?endpoint=https://s3.example.com&region=us-east-1', '--scaler', 'postgresql'];
  const yamlText = (await runCli(['deploy', 'kubernetes', ...args])).stdout;
  assert.match(yamlText, /^---\n# Tessera /);
  assert.deepEqual(yaml.loadAll(yamlText), await manifests(args));
});

test('the autoscaler targets the worker Deployment, between --workers and --max-workers, on a metric Tessera exports', async (t) => {
  const items = await manifests(['--workers', '2', '--max-workers', '12', '--slots', '6']);
  const scaled = items.find((item) => item.kind === 'ScaledObject') as any;
  const workers = items.find((item) => item.kind === 'Deployment' && containersOf(item).some((container) => container.args[0] === 'worker')) as any;
  assert.deepEqual(scaled.spec.scaleTargetRef, { apiVersion: 'apps/v1', kind: 'Deployment', name: workers.metadata.name });
  assert.equal(scaled.metadata.namespace, workers.metadata.namespace);
  assert.equal(scaled.spec.minReplicaCount, 2);
  assert.equal(scaled.spec.maxReplicaCount, 12);
  const [trigger] = scaled.spec.triggers;
  assert.equal(trigger.type, 'prometheus');
  assert.equal(trigger.metadata.query, prometheusQuery(kubernetesOptions({}, '0.1.0')));
  assert.equal(trigger.metadata.threshold, '6');

  await t.test('a running Tessera exports that metric at /metrics, and the PostgreSQL query runs on its schema', async () => {
    await withFreshDb('pglite', async (db) => {
      const tessera = await startTestTessera(db, { workerSlots: 0 });
      try {
        const metrics = await (await fetch(`${tessera.url}/metrics`)).text();
        const names = new Set([...metrics.matchAll(/^# TYPE (\S+) /gm)].map((match) => match[1]));
        assert.ok(names.has(QUEUE_METRIC), `${QUEUE_METRIC} is not among ${[...names].filter((name) => name!.startsWith('tessera_')).join(', ')}`);
        assert.ok(trigger.metadata.query.includes(`${QUEUE_METRIC}{`));
        assert.deepEqual(await db.query(POSTGRESQL_QUERY), [{ count: 0 }]);
      } finally {
        await tessera.stop();
      }
    });
  });
});

test('worker resources follow the slot count; the sandbox\'s pod settings are asked for and explained', async () => {
  const items = await manifests(['--slots', '3']);
  const worker = items.find((item) => item.metadata?.name === 'tessera-worker' && item.kind === 'Deployment') as any;
  const [container] = worker.spec.template.spec.containers;
  assert.deepEqual(container.resources, { requests: { cpu: '3', memory: `${3 * 2048 + 512}Mi` }, limits: { memory: `${3 * 2048 + 512}Mi` } });
  assert.equal(container.securityContext.procMount, 'Unmasked');
  const env = Object.fromEntries(container.env.map((variable: any) => [variable.name, variable.value]));
  assert.equal(env.TESSERA_HOST_IMAGES, 'python:*,node:*', 'the examples\' python:3.11-slim runs on the image\'s own python3');
  assert.equal(env.TESSERA_CONTAINER_RUNTIME, 'off');
  assert.equal(container.securityContext.allowPrivilegeEscalation, false);
  assert.deepEqual(container.securityContext.capabilities, { drop: ['ALL'] });
  assert.equal(worker.spec.template.spec.hostUsers, false);
  assert.equal(worker.spec.template.spec.securityContext.seccompProfile.type, 'Unconfined');
  const profiled = (await manifests(['--worker-seccomp-profile', 'tessera-worker.json'])).find((item) => item.metadata?.name === 'tessera-worker' && item.kind === 'Deployment') as any;
  assert.deepEqual(profiled.spec.template.spec.securityContext.seccompProfile, { type: 'Localhost', localhostProfile: 'tessera-worker.json' });
  assert.equal(worker.spec.template.spec.securityContext.runAsNonRoot, true);
  for (const key of ['tessera.dev/seccomp', 'tessera.dev/apparmor', 'tessera.dev/proc-mount']) assert.ok(worker.spec.template.metadata.annotations[key], key);

  const off = (await manifests(['--worker-sandbox', 'off'])).find((item) => item.metadata?.name === 'tessera-worker' && item.kind === 'Deployment') as any;
  assert.equal(off.spec.template.spec.securityContext.seccompProfile.type, 'RuntimeDefault');
  assert.equal(off.spec.template.spec.hostUsers, undefined);
  assert.match(off.spec.template.metadata.annotations['tessera.dev/sandbox-risk'], /worker token/);
});

test('servers: probes on /readyz and /healthz, a budget, and an init container that waits for the migration Job', async () => {
  const items = await manifests(['--servers', '3']);
  const server = items.find((item) => item.kind === 'Deployment' && item.metadata?.name === 'tessera-server') as any;
  const [container] = server.spec.template.spec.containers;
  assert.equal(server.spec.replicas, 3);
  assert.equal(container.readinessProbe.httpGet.path, '/readyz');
  assert.equal(container.livenessProbe.httpGet.path, '/healthz');
  assert.deepEqual(server.spec.template.spec.initContainers[0].args.slice(0, 2), ['migrate', '--wait']);
  const job = items.find((item) => item.kind === 'Job') as any;
  assert.deepEqual(job.spec.template.spec.containers[0].args, ['migrate']);
  assert.ok(items.indexOf(job) < items.indexOf(server), 'the Job comes before the servers');
  const budget = items.find((item) => item.kind === 'PodDisruptionBudget') as any;
  assert.deepEqual(budget.spec.selector, server.spec.selector);
  assert.equal(budget.spec.minAvailable, 1);
});

test('no secret value appears: secrets are files from Secrets, whatever the environment holds', async () => {
  const sentinel = 'SENTINEL-secret-value-0123456789abcdef';
  const env = Object.fromEntries(SECRET_SETTINGS.map((name) => [name, name === 'DATABASE_URL' ? `postgres://tessera:${sentinel}@db:5432/tessera` : `${sentinel}-${name}`]));
  for (const args of [[], ['--blobs', 's3://bucket/x?endpoint=https://s3.example.com', '--scaler', 'postgresql']]) {
    for (const format of [['--json'], []]) {
      const result = await runCli(['deploy', 'kubernetes', ...args, ...format], { env });
      assert.equal(result.code, 0, result.stderr);
      assert.ok(!result.stdout.includes(sentinel), 'a secret value was printed');
    }
    const items = await manifests(args);
    assert.ok(!items.some((item) => item.kind === 'Secret'), 'the manifests hold no Secret object');
    for (const container of items.flatMap(containersOf)) {
      for (const variable of container.env ?? []) {
        assert.ok(!(SECRET_SETTINGS as readonly string[]).includes(variable.name), `${container.name} sets ${variable.name} inline`);
        if (variable.name.endsWith('_FILE')) assert.match(variable.value, /^\/run\/secrets\//);
      }
    }
    const workerEnv = items.filter((item) => item.metadata?.name === 'tessera-worker').flatMap(containersOf).flatMap((container) => container.env.map((variable: any) => variable.name));
    assert.deepEqual(workerEnv.filter((name: string) => name.endsWith('_FILE')), ['TESSERA_WORKER_TOKEN_FILE'], 'workers get their token and nothing of the servers\'');
  }
});

test('bad flags are refused naming the flag, the value and an example', async () => {
  const cases: Array<[string[], RegExp]> = [
    [['--workers', 'many'], /--workers "many": expected a whole number from 0 to 1000\n\s+hint: for example --workers 2/],
    [['--workers', '5', '--max-workers', '2'], /--max-workers "2": is fewer than --workers 5/],
    [['--slots', '0'], /--slots "0": expected a whole number from 1 to 256/],
    [['--namespace', 'My_NS'], /--namespace "My_NS": expected a DNS label/],
    [['--blobs', 'http://bucket'], /--blobs "http:\/\/bucket": .*s3:\/\//],
    [['--blobs', 's3://AKIA:secret@bucket/x'], /--blobs "s3:\/\/…@bucket\/x": credentials do not belong in the URL/],
    [['--database-url-secret', 'pg:uri:x'], /--database-url-secret "pg:uri:x": expected a Secret's name/],
    [['--scaler', 'cpu'], /--scaler "cpu": expected one of prometheus, postgresql/],
    [['--worker-sandbox', 'gvisor'], /--worker-sandbox "gvisor": expected one of namespaces, off/],
    [['--output', 'toml'], /--output "toml": expected one of yaml, json/],
    [['--worker-host-images', 'python 3'], /--worker-host-images "python 3": .*expected image names/],
    [['--worker-seccomp-profile', '../etc/x.json'], /--worker-seccomp-profile "..\/etc\/x.json": expected a .json path relative/],
  ];
  for (const [args, message] of cases) {
    const result = await runCli(['deploy', 'kubernetes', ...args]);
    assert.notEqual(result.code, 0, args.join(' '));
    assert.equal(result.stdout, '');
    assert.match(result.stderr, message);
    assert.ok(!result.stderr.includes('secret@'), 'the refused URL\'s credentials are not echoed');
  }
});

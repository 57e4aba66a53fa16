import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { packFolder } from '../../src/blobs/archive.js';
import type { Template } from '../../src/domain/types.js';

// Real ByteNite-style component folders (manifest.json + app/<entrypoint>) written for a test and
// pushed through the developer API, so tests can run apps that fail, hang or use node.

export interface TestComponent {
  name: string;
  type: 'app' | 'partitioner' | 'assembler';
  entrypoint: string;
  code: string;
  /** platform_config.container (default python:3.11, which `tessera up` runs in its host sandbox). */
  image?: string;
  /** platform_config.network ("public" asks for the internet). */
  network?: string;
  /** platform_config.username and token, for a private image (a token "secret:<id>" names an account secret). */
  registry?: { username: string; token: string };
  minMemoryGb?: number;
}

/** Anything that calls the API as an account: a TestTessera, or a client of a server process. */
export interface ApiCaller {
  call(method: string, route: string, body?: unknown): Promise<{ status: number; body: any }>;
}

/** A component's folder, packed and base64-encoded as POST /v1/dev/apps takes it. */
export async function componentArchive(component: TestComponent): Promise<string> {
  const folder = mkdtempSync(path.join(tmpdir(), 'tessera-component-'));
  try {
    mkdirSync(path.join(folder, 'app'), { recursive: true });
    // Mixed spellings on purpose: manifests in the wild use both.
    const manifest = {
      Name: component.name, version: '1.0', type: component.type, platform: 'docker', Entrypoint: component.entrypoint,
      platformConfig: { container: component.image ?? 'python:3.11', ...(component.network ? { network: component.network } : {}), ...(component.registry ? { private_image: true, ...component.registry } : {}) },
      ...(component.minMemoryGb !== undefined ? { device_requirements: { min_memory: component.minMemoryGb } } : {}),
    };
    writeFileSync(path.join(folder, 'manifest.json'), JSON.stringify(manifest));
    writeFileSync(path.join(folder, 'app', component.entrypoint), component.code);
    return (await packFolder(folder)).toString('base64');
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
}

export async function installComponents(api: ApiCaller, components: TestComponent[]): Promise<void> {
  for (const component of components) {
    const group = component.type === 'app' ? 'apps' : 'engines';
    const pushed = await api.call('POST', `/v1/dev/${group}`, { data: await componentArchive(component) });
    assert.equal(pushed.status, 200, `pushing ${component.name}: ${JSON.stringify(pushed.body)}`);
  }
}

export async function installTemplate(api: ApiCaller, template: Omit<Template, 'owner'>): Promise<void> {
  const pushed = await api.call('POST', '/v1/dev/templates', template);
  assert.equal(pushed.status, 200, `pushing template ${template.id}: ${JSON.stringify(pushed.body)}`);
}

/** An app that copies its chunk to its result, byte for byte (streamed by shutil, 1 MiB at a time). */
export const COPY_APP: TestComponent = {
  name: 'copy',
  type: 'app',
  entrypoint: 'main.py',
  code: 'import os, shutil\nshutil.copyfile(os.path.join(os.environ["TASK_DIR"], "data.bin"), os.path.join(os.environ["TASK_RESULTS_DIR"], "copy.bin"))\n',
};

/** COPY_APP and a template "copy" around it (passthrough partitioner and assembler). */
export async function installCopyTemplate(api: ApiCaller): Promise<void> {
  await installComponents(api, [COPY_APP]);
  await installTemplate(api, { id: 'copy', description: 'copies its input', app: 'copy', partitioner: 'passthrough', assembler: 'passthrough' });
}

/** Creates a job (`body` as POST /v1/customer/jobs takes it), runs it, and returns it once it has ended. */
export async function runToEnd(api: ApiCaller, body: Record<string, unknown>, timeoutMs = 120_000): Promise<any> {
  const created = await api.call('POST', '/v1/customer/jobs', body);
  assert.equal(created.status, 200, JSON.stringify(created.body));
  const jobId = created.body.job.id as string;
  assert.equal((await api.call('POST', `/v1/customer/jobs/${jobId}/run`)).status, 200);
  return endedJob(api, jobId, timeoutMs);
}

/** The job once it is COMPLETE or FAILED. */
export async function endedJob(api: ApiCaller, jobId: string, timeoutMs = 120_000): Promise<any> {
  const { waitFor } = await import('./tessera.js');
  return waitFor(`job ${jobId} to end`, async () => {
    const { body } = await api.call('GET', `/v1/customer/jobs/${jobId}`);
    return ['JOB_STATE_COMPLETE', 'JOB_STATE_FAILED'].includes(body.job?.state) ? body.job : undefined;
  }, timeoutMs);
}

/** The text of a job's first result, read through its signed link. */
export async function firstResult(api: ApiCaller, jobId: string): Promise<string> {
  const results = await api.call('GET', `/v1/customer/jobs/${jobId}/results`);
  assert.ok(results.body.results?.[0]?.link, JSON.stringify(results.body));
  return (await fetch(results.body.results[0].link)).text();
}

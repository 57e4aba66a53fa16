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

import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseManifest } from '../../src/domain/manifest.js';
import type { Template } from '../../src/domain/types.js';
import { upsertComponent, upsertTemplate } from '../../src/store/catalog.js';
import type { Db } from '../../src/store/db.js';
import { migrate } from '../../src/store/migrate.js';

// Real ByteNite-style component folders (manifest.json + app/<entrypoint>) written for a test
// and registered in its database, so tests can run apps that fail, hang or use node.

export interface TestComponent {
  name: string;
  type: 'app' | 'partitioner' | 'assembler';
  entrypoint: string;
  code: string;
}

export async function installComponents(db: Db, components: TestComponent[]): Promise<void> {
  await migrate(db);
  const root = mkdtempSync(path.join(tmpdir(), 'tessera-components-'));
  for (const component of components) {
    const folder = path.join(root, component.name);
    mkdirSync(path.join(folder, 'app'), { recursive: true });
    // Mixed spellings on purpose: manifests in the wild use both.
    const manifest = { Name: component.name, version: '1.0', type: component.type, platform: 'docker', Entrypoint: component.entrypoint, platformConfig: { container: 'python:3.11' } };
    writeFileSync(path.join(folder, 'manifest.json'), JSON.stringify(manifest));
    writeFileSync(path.join(folder, 'app', component.entrypoint), component.code);
    await upsertComponent(db, parseManifest(manifest, `${folder}/manifest.json`), `dir:${folder}`);
  }
}

export async function installTemplate(db: Db, template: Omit<Template, 'owner'>): Promise<void> {
  await migrate(db);
  await upsertTemplate(db, { owner: 'test', ...template });
}

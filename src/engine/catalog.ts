import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, realpath, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { packFolder, unpackArchive } from '../blobs/archive.js';
import { TesseraError, invalidArgument, notFound, quote } from '../domain/errors.js';
import { IN_PROCESS_NAMES, IN_PROCESS_PREFIX, inProcessName } from '../domain/in-process.js';
import type { ComponentKind, Manifest } from '../domain/manifest.js';
import { PASSTHROUGH, parseManifest, parseTag } from '../domain/manifest.js';
import type { Template, TemplatePreset } from '../domain/types.js';
import type { StoredComponent } from '../store/catalog.js';
import { BUILTIN_OWNER, listComponents, resolveComponent, setComponentActive, upsertComponent, upsertTemplate } from '../store/catalog.js';
import type { Queryable } from '../store/db.js';
import { storedBytesExceeded, storedBytesLeft } from './quotas.js';
import type { EngineDeps } from './deps.js';

// The registry: apps, partitioning and assembling engines pushed as archives of their folders
// (manifest.json + app/), and templates binding one of each. An archive is unpacked once on push
// (which refuses traversal, links out of the folder and size bombs), checked, packed again into a
// canonical .tgz and stored by content hash; workers fetch that by hash and cache it. The folders
// under examples/ are pushed the same way at every start, as the built-ins every account sees.

export { BUILTIN_OWNER };

/** A job type names a kind of job in the async view's URLs (Bytescale spells them like "ProcessVideoJob"). */
export const JOB_TYPE = /^[A-Za-z][A-Za-z0-9]{0,63}$/;

/** Apps are pushed to /apps, both engine kinds to /engines. */
export type ComponentGroup = 'apps' | 'engines';

export const GROUP_KINDS: Record<ComponentGroup, ComponentKind[]> = { apps: ['app'], engines: ['partitioner', 'assembler'] };

export function archiveKey(sha256: string): string {
  return `components/${sha256}.tgz`;
}

function parseJsonText(text: string, where: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw invalidArgument('archive', `${where} is not valid JSON: ${(error as Error).message}`);
  }
}

export function parseTemplate(raw: unknown, where: string, owner: string): Template {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw invalidArgument('template', `${where}: a template must be a JSON object`);
  const template = raw as Record<string, unknown>;
  const text = (key: string, required: boolean): string => {
    const value = template[key];
    if (value === undefined && !required) return '';
    if (typeof value !== 'string' || (required && value.length === 0)) throw invalidArgument(`template.${key}`, `${where}: ${key} ${quote(value)} must be a non-empty string`);
    return value;
  };
  const id = text('id', true);
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(id)) throw invalidArgument('template.id', `${where}: id ${quote(id)} must be 1-64 letters, digits, "-" or "_"`);
  for (const key of ['app', 'partitioner', 'assembler']) parseTag(text(key, true));
  const object = (key: string): Record<string, unknown> | undefined => {
    const value = template[key];
    if (value === undefined || value === null) return undefined;
    if (typeof value !== 'object' || Array.isArray(value)) throw invalidArgument(`template.${key}`, `${where}: ${key} ${quote(value)} must be a JSON object`);
    return value as Record<string, unknown>;
  };
  const jobType = template.jobType;
  if (jobType !== undefined && (typeof jobType !== 'string' || !JOB_TYPE.test(jobType))) {
    throw invalidArgument('template.jobType', `${where}: jobType ${quote(jobType)} must be a letter followed by up to 63 letters or digits`, 'for example "ProcessTextJob"');
  }
  const dataSource = object('dataSource');
  const dataDestination = object('dataDestination');
  // Templates written for ByteNite may carry their params as default_params.
  if (template.params !== undefined && template.default_params !== undefined) {
    throw invalidArgument('template.default_params', `${where}: the template has both params and default_params`, 'keep one of them (default_params is the older name of params)');
  }
  const params = object(template.params !== undefined ? 'params' : 'default_params') ?? {};
  const presets = parsePresets(template.presets, where);
  return {
    id,
    owner,
    description: text('description', false),
    app: text('app', true),
    partitioner: text('partitioner', true),
    assembler: text('assembler', true),
    ...(dataSource ? { dataSource: dataSource as unknown as Template['dataSource'] } : {}),
    ...(dataDestination ? { dataDestination: dataDestination as unknown as Template['dataDestination'] } : {}),
    params: params as Template['params'],
    config: (object('config') ?? {}) as Template['config'],
    ...(jobType ? { jobType } : {}),
    ...(presets.length > 0 ? { presets } : {}),
  };
}

const MAX_PRESETS = 100;

/** A template's presets: [{name, description?, params}], names unique. */
function parsePresets(raw: unknown, where: string): TemplatePreset[] {
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw) || raw.length > MAX_PRESETS) throw invalidArgument('template.presets', `${where}: presets must be a list of at most ${MAX_PRESETS} {name, description, params}`, 'for example [{"name": "fast", "params": {"app": {"quality": 1}}}]');
  const names = new Set<string>();
  return raw.map((item, index) => {
    const preset = item as Record<string, unknown> | null;
    const at = `template.presets[${index}]`;
    if (!preset || typeof preset !== 'object' || Array.isArray(preset)) throw invalidArgument(at, `${where}: ${at} ${quote(item)} must be an object {name, description, params}`);
    if (typeof preset.name !== 'string' || !/^[A-Za-z0-9 _.-]{1,64}$/.test(preset.name)) throw invalidArgument(`${at}.name`, `${where}: ${at}.name ${quote(preset.name)} must be 1-64 letters, digits, spaces, ".", "_" or "-"`);
    if (names.has(preset.name)) throw invalidArgument(`${at}.name`, `${where}: the preset name ${quote(preset.name)} is used twice`);
    names.add(preset.name);
    if (preset.description !== undefined && typeof preset.description !== 'string') throw invalidArgument(`${at}.description`, `${where}: ${at}.description ${quote(preset.description)} must be a string`);
    const params = preset.params ?? {};
    if (typeof params !== 'object' || params === null || Array.isArray(params)) throw invalidArgument(`${at}.params`, `${where}: ${at}.params ${quote(params)} must be an object like a job's params`);
    return { name: preset.name, description: (preset.description as string | undefined) ?? '', params: params as TemplatePreset['params'] };
  });
}

/**
 * The folder of an unpacked archive that holds manifest.json: its root, or the one folder at its
 * root (archives made with `tar -czf app.tgz my-app/`).
 */
async function componentRoot(unpacked: string): Promise<string> {
  if (existsSync(path.join(unpacked, 'manifest.json'))) return unpacked;
  const entries = await readdir(unpacked, { withFileTypes: true });
  if (entries.length === 1 && entries[0]!.isDirectory() && existsSync(path.join(unpacked, entries[0]!.name, 'manifest.json'))) {
    return path.join(unpacked, entries[0]!.name);
  }
  throw invalidArgument('data', 'the archive has no manifest.json at its root', 'archive the folder that holds manifest.json and app/ (tessera app push FOLDER does this)');
}

/**
 * Checks a component folder: its manifest, the kind it was pushed as, and that its entrypoint is a
 * file inside app/ — or, for the built-ins only, names code inside the worker ("tessera:noop").
 */
async function checkFolder(folder: string, kinds: ComponentKind[], builtin = false): Promise<Manifest> {
  const manifest = parseManifest(parseJsonText(await readFile(path.join(folder, 'manifest.json'), 'utf8'), 'manifest.json'), 'manifest.json');
  if (!kinds.includes(manifest.kind)) {
    const wanted = kinds.includes('app') ? 'an app' : 'an engine (manifest "type": "partitioner" or "assembler")';
    throw invalidArgument('manifest.type', `${manifest.name}: the manifest describes ${manifest.kind === 'app' ? 'an app' : `a ${manifest.kind}`}, but this call takes ${wanted}`, manifest.kind === 'app' ? 'push it with tessera app push' : 'push it with tessera engine push');
  }
  if (manifest.name === PASSTHROUGH) throw invalidArgument('manifest.name', `"${PASSTHROUGH}" is the built-in partitioner and assembler; choose another name`);
  if (manifest.entrypoint.startsWith(IN_PROCESS_PREFIX)) {
    if (!builtin) throw invalidArgument('manifest.entrypoint', `${manifest.name}: entrypoints starting with "${IN_PROCESS_PREFIX}" are reserved for Tessera's built-ins`, 'set "entrypoint" to a file inside app/, e.g. "main.py"');
    if (!inProcessName(manifest.entrypoint)) throw invalidArgument('manifest.entrypoint', `${manifest.name}: ${quote(manifest.entrypoint)} is not an in-process built-in (${IN_PROCESS_NAMES.map((name) => IN_PROCESS_PREFIX + name).join(', ')})`);
    return manifest;
  }
  const appDir = path.join(folder, 'app');
  const entry = path.resolve(appDir, manifest.entrypoint);
  const info = await stat(entry).catch(() => null);
  if (!info?.isFile()) {
    throw invalidArgument('manifest.entrypoint', `${manifest.name}: the entrypoint ${quote(manifest.entrypoint)} is not a file in app/`, 'set "entrypoint" in manifest.json to a file inside app/, e.g. "main.py"');
  }
  if (!(await realpath(entry)).startsWith((await realpath(appDir)) + path.sep)) {
    throw invalidArgument('manifest.entrypoint', `${manifest.name}: the entrypoint ${quote(manifest.entrypoint)} is outside app/`);
  }
  return manifest;
}

export function createCatalog(deps: EngineDeps) {
  const { db, blobs, config } = deps;
  const limits = { maxBytes: config.maxUnpackedBytes, maxEntries: config.maxArchiveEntries };

  /** Stores a checked folder as a canonical archive and registers it (and its template.json, if any). */
  async function register(tx: Queryable, owner: string, folder: string, manifest: Manifest): Promise<StoredComponent> {
    const archive = await packFolder(folder);
    const sha256 = createHash('sha256').update(archive).digest('hex');
    if (!(await blobs.stat(archiveKey(sha256)))) {
      const scratch = await mkdtemp(path.join(tmpdir(), 'tessera-archive-'));
      try {
        const file = path.join(scratch, 'component.tgz');
        await writeFile(file, archive);
        await blobs.putFile(archiveKey(sha256), file);
      } finally {
        await rm(scratch, { recursive: true, force: true });
      }
    }
    const stored = await upsertComponent(tx, owner, manifest, { sha256, size: archive.length });
    const templateFile = path.join(folder, 'template.json');
    if (existsSync(templateFile)) await upsertTemplate(tx, parseTemplate(parseJsonText(await readFile(templateFile, 'utf8'), 'template.json'), 'template.json', owner));
    return stored;
  }

  /** The component a tag names as the account sees it (own first, then built-in), active or not; a clear 404. */
  async function visibleComponent(account: string, group: ComponentGroup, tag: string): Promise<StoredComponent> {
    for (const kind of GROUP_KINDS[group]) {
      const component = await resolveComponent(db, account, kind, parseTag(tag), { activeOnly: false });
      if (component) return component;
    }
    throw notFound(group === 'apps' ? 'app' : 'engine', tag);
  }

  return {
    /** Registers every component folder and template under examples/ as a built-in. */
    async loadBuiltins(): Promise<{ components: number; templates: number }> {
      const examplesDir = config.examplesDir;
      if (!existsSync(examplesDir)) return { components: 0, templates: 0 };
      let components = 0;
      let templates = 0;
      for (const example of (await readdir(examplesDir)).sort()) {
        const exampleDir = path.join(examplesDir, example);
        if (!(await stat(exampleDir)).isDirectory()) continue;
        await db.transaction(async (tx) => {
          for (const entry of (await readdir(exampleDir)).sort()) {
            const folder = path.join(exampleDir, entry);
            if (!existsSync(path.join(folder, 'manifest.json'))) continue;
            const manifest = await checkFolder(folder, ['app', 'partitioner', 'assembler'], true);
            await register(tx, BUILTIN_OWNER, folder, manifest);
            components++;
          }
          const templateFile = path.join(exampleDir, 'template.json');
          if (existsSync(templateFile)) {
            await upsertTemplate(tx, parseTemplate(parseJsonText(await readFile(templateFile, 'utf8'), templateFile), templateFile, BUILTIN_OWNER));
            templates++;
          }
        });
      }
      return { components, templates };
    },

    /** POST /v1/dev/apps|engines: `data` is a base64 tar (gzip or not) of the component's folder. */
    async push(account: string, group: ComponentGroup, data: string): Promise<StoredComponent> {
      const compact = data.replace(/\s+/g, '');
      if (compact.length === 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(compact) || compact.length % 4 === 1) {
        throw invalidArgument('data', 'data must be the base64 encoding of a tar archive of the folder', 'tessera app push FOLDER builds it for you');
      }
      const bytes = Buffer.from(compact, 'base64');
      const left = await storedBytesLeft(db, account);
      if (bytes.length > left) throw storedBytesExceeded(`the archive (${bytes.length} bytes)`, left);
      if (bytes.length > config.maxArchiveBytes) {
        throw new TesseraError('RESOURCE_EXHAUSTED', `the archive is ${bytes.length} bytes; at most ${config.maxArchiveBytes} may be pushed`, { hint: 'keep data and dependencies out of the folder, or raise TESSERA_MAX_ARCHIVE_BYTES' });
      }
      const scratch = await mkdtemp(path.join(tmpdir(), 'tessera-push-'));
      try {
        await unpackArchive(bytes, path.join(scratch, 'unpacked'), limits);
        const folder = await componentRoot(path.join(scratch, 'unpacked'));
        const manifest = await checkFolder(folder, GROUP_KINDS[group]);
        return await db.transaction((tx) => register(tx, account, folder, manifest));
      } finally {
        await rm(scratch, { recursive: true, force: true });
      }
    },

    /** Everything of the group the account sees: its own and the built-ins, every version. */
    list(account: string, group: ComponentGroup): Promise<StoredComponent[]> {
      return listComponents(db, account, GROUP_KINDS[group]);
    },

    /** A tag as the account sees it (own first, then built-in), active or not. */
    get: visibleComponent,

    /** Activates or deactivates the version a tag names; only the account's own components. */
    async setActive(account: string, group: ComponentGroup, tag: string, active: boolean): Promise<StoredComponent> {
      const component = await visibleComponent(account, group, tag);
      if (component.owner !== account) {
        throw new TesseraError('PERMISSION_DENIED', `${component.name}@${component.version} is a built-in ${component.kind}; it cannot be ${active ? 'activated' : 'deactivated'}`, { hint: 'push your own version under another name' });
      }
      await setComponentActive(db, account, component.kind, component.name, component.version, active);
      return { ...component, active };
    },

    /** The archive's bytes (GET …/download), as stored. */
    async download(account: string, group: ComponentGroup, tag: string): Promise<{ component: StoredComponent; data: Buffer }> {
      const component = await visibleComponent(account, group, tag);
      const { stream } = await blobs.openRead(archiveKey(component.archive.sha256));
      const chunks: Buffer[] = [];
      for await (const chunk of stream) chunks.push(chunk as Buffer);
      return { component, data: Buffer.concat(chunks) };
    },

    /** POST /v1/dev/templates. The tags must name components the account can see. */
    async pushTemplate(account: string, raw: unknown): Promise<Template> {
      const template = parseTemplate(raw, 'template', account);
      await findComponent(db, account, 'app', template.app, template.id);
      await findComponent(db, account, 'partitioner', template.partitioner, template.id);
      await findComponent(db, account, 'assembler', template.assembler, template.id);
      await upsertTemplate(db, template);
      return template;
    },
  };
}

export type Catalog = ReturnType<typeof createCatalog>;

/** The component a template's tag names, or null for the built-in passthrough; a clear error when missing. */
export async function findComponent(db: Queryable, account: string, kind: ComponentKind, tag: string, templateId: string): Promise<StoredComponent | null> {
  if (tag === PASSTHROUGH && kind !== 'app') return null;
  const component = await resolveComponent(db, account, kind, parseTag(tag));
  if (!component) {
    throw new TesseraError('FAILED_PRECONDITION', `template ${quote(templateId)} names the ${kind} ${quote(tag)}, which is not installed or not active`, {
      hint: `push the ${kind} (tessera ${kind === 'app' ? 'app' : 'engine'} push) or fix the template`,
    });
  }
  return component;
}

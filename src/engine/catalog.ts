import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { TesseraError, invalidArgument, quote } from '../domain/errors.js';
import type { ComponentKind } from '../domain/manifest.js';
import { PASSTHROUGH, parseManifest, parseTag } from '../domain/manifest.js';
import type { Template } from '../domain/types.js';
import { resolveComponent, upsertComponent, upsertTemplate } from '../store/catalog.js';
import type { Db, Queryable } from '../store/db.js';
import type { StoredComponent } from '../store/catalog.js';

// Built-in apps, engines and templates: every folder under examples/ that holds ByteNite-style
// component folders (manifest.json + app/) and a template.json is registered at start-up, so the
// examples run without any push step.

export const BUILTIN_OWNER = 'tessera';

/** A job type names a kind of job in the async view's URLs (Bytescale spells them like "ProcessVideoJob"). */
export const JOB_TYPE = /^[A-Za-z][A-Za-z0-9]{0,63}$/;

function readJson(file: string): unknown {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new TesseraError('INVALID_ARGUMENT', `${file} is not valid JSON: ${(error as Error).message}`);
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
  const params = (template.params ?? {}) as Template['params'];
  const jobType = template.jobType;
  if (jobType !== undefined && (typeof jobType !== 'string' || !JOB_TYPE.test(jobType))) {
    throw invalidArgument('template.jobType', `${where}: jobType ${quote(jobType)} must be a letter followed by up to 63 letters or digits`, 'for example "ProcessTextJob"');
  }
  return {
    id,
    owner,
    description: text('description', false),
    app: text('app', true),
    partitioner: text('partitioner', true),
    assembler: text('assembler', true),
    ...(template.dataSource ? { dataSource: template.dataSource as Template['dataSource'] } : {}),
    ...(template.dataDestination ? { dataDestination: template.dataDestination as Template['dataDestination'] } : {}),
    params,
    config: (template.config ?? {}) as Template['config'],
    ...(jobType ? { jobType } : {}),
  };
}

export async function loadBuiltins(db: Db, examplesDir: string): Promise<{ components: number; templates: number }> {
  if (!existsSync(examplesDir)) return { components: 0, templates: 0 };
  let components = 0;
  let templates = 0;
  await db.transaction(async (tx) => {
    for (const example of readdirSync(examplesDir).sort()) {
      const exampleDir = path.join(examplesDir, example);
      if (!statSync(exampleDir).isDirectory()) continue;
      for (const entry of readdirSync(exampleDir).sort()) {
        const manifestFile = path.join(exampleDir, entry, 'manifest.json');
        if (!existsSync(manifestFile)) continue;
        await upsertComponent(tx, parseManifest(readJson(manifestFile), manifestFile), `dir:${path.join(exampleDir, entry)}`);
        components++;
      }
      const templateFile = path.join(exampleDir, 'template.json');
      if (existsSync(templateFile)) {
        await upsertTemplate(tx, parseTemplate(readJson(templateFile), templateFile, BUILTIN_OWNER));
        templates++;
      }
    }
  });
  return { components, templates };
}

/** The component a template's tag names, or null for the built-in passthrough; a clear error when missing. */
export async function findComponent(db: Queryable, kind: ComponentKind, tag: string, templateId: string): Promise<StoredComponent | null> {
  if (tag === PASSTHROUGH && kind !== 'app') return null;
  const component = await resolveComponent(db, kind, parseTag(tag));
  if (!component) {
    throw new TesseraError('FAILED_PRECONDITION', `template ${quote(templateId)} names the ${kind} ${quote(tag)}, which is not installed or not active`, {
      hint: `push the ${kind} (tessera ${kind === 'app' ? 'app' : 'engine'} push) or fix the template`,
    });
  }
  return component;
}

export function componentFolder(component: StoredComponent): string {
  if (!component.location.startsWith('dir:')) throw new TesseraError('INTERNAL', `component location ${quote(component.location)} is not supported`);
  return component.location.slice('dir:'.length);
}

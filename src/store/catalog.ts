import type { ComponentKind, Manifest, Tag } from '../domain/manifest.js';
import { versionParts } from '../domain/manifest.js';
import type { Template } from '../domain/types.js';
import type { Queryable } from './db.js';

export interface StoredComponent {
  kind: ComponentKind;
  name: string;
  version: string;
  manifest: Manifest;
  /** Where the component's folder is: `dir:/abs/path` for built-in and local folders. */
  location: string;
  active: boolean;
}

export async function upsertComponent(db: Queryable, manifest: Manifest, location: string): Promise<void> {
  const [major, minor] = versionParts(manifest.version);
  await db.query(
    `INSERT INTO components (kind, name, version, major, minor, manifest, location)
     VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7)
     ON CONFLICT (kind, name, version) DO UPDATE SET manifest = EXCLUDED.manifest, location = EXCLUDED.location`,
    [manifest.kind, manifest.name, manifest.version, major, minor, JSON.stringify(manifest), location],
  );
}

/** The active component a tag names: the highest version matching `name`, `name@M` or `name@M.m`. */
export async function resolveComponent(db: Queryable, kind: ComponentKind, tag: Tag): Promise<StoredComponent | null> {
  const [row] = await db.query<{ kind: ComponentKind; name: string; version: string; manifest: Manifest; location: string; active: boolean }>(
    `SELECT kind, name, version, manifest, location, active
       FROM components
      WHERE kind = $1 AND name = $2 AND active
        AND ($3::int IS NULL OR major = $3) AND ($4::int IS NULL OR minor = $4)
      ORDER BY major DESC, minor DESC
      LIMIT 1`,
    [kind, tag.name, tag.major ?? null, tag.minor ?? null],
  );
  return row ?? null;
}

export async function upsertTemplate(db: Queryable, template: Template): Promise<void> {
  const defaults = {
    dataSource: template.dataSource,
    dataDestination: template.dataDestination,
    params: template.params,
    config: template.config,
    jobType: template.jobType,
  };
  await db.query(
    `INSERT INTO templates (id, owner, description, app, partitioner, assembler, defaults)
     VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb)
     ON CONFLICT (id) DO UPDATE SET owner = EXCLUDED.owner, description = EXCLUDED.description, app = EXCLUDED.app,
       partitioner = EXCLUDED.partitioner, assembler = EXCLUDED.assembler, defaults = EXCLUDED.defaults`,
    [template.id, template.owner, template.description, template.app, template.partitioner, template.assembler, JSON.stringify(defaults)],
  );
}

interface TemplateRow {
  id: string;
  owner: string;
  description: string;
  app: string;
  partitioner: string;
  assembler: string;
  defaults: Pick<Template, 'dataSource' | 'dataDestination' | 'params' | 'config' | 'jobType'>;
}

function rowToTemplate(row: TemplateRow): Template {
  return {
    id: row.id,
    owner: row.owner,
    description: row.description,
    app: row.app,
    partitioner: row.partitioner,
    assembler: row.assembler,
    ...row.defaults,
  };
}

export async function getTemplate(db: Queryable, templateId: string): Promise<Template | null> {
  const [row] = await db.query<TemplateRow>('SELECT id, owner, description, app, partitioner, assembler, defaults FROM templates WHERE id = $1', [templateId]);
  return row ? rowToTemplate(row) : null;
}

export async function getTemplates(db: Queryable, templateIds: string[]): Promise<Map<string, Template>> {
  if (templateIds.length === 0) return new Map();
  const rows = await db.query<TemplateRow>(
    'SELECT id, owner, description, app, partitioner, assembler, defaults FROM templates WHERE id = ANY($1::text[])',
    [templateIds],
  );
  return new Map(rows.map((row) => [row.id, rowToTemplate(row)]));
}

export async function listTemplates(db: Queryable, page: { limit: number; offset: number }): Promise<{ templates: Template[]; total: number }> {
  const rows = await db.query<TemplateRow & { total: number }>(
    `SELECT id, owner, description, app, partitioner, assembler, defaults, count(*) OVER ()::int AS total
       FROM templates ORDER BY id LIMIT $1 OFFSET $2`,
    [page.limit, page.offset],
  );
  const total = rows[0]?.total ?? (page.offset > 0 ? (await db.query<{ total: number }>('SELECT count(*)::int AS total FROM templates'))[0]!.total : 0);
  return { templates: rows.map(rowToTemplate), total };
}

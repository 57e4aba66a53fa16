import type { ComponentKind, Manifest, Tag } from '../domain/manifest.js';
import { versionParts } from '../domain/manifest.js';
import type { Template } from '../domain/types.js';
import type { Queryable } from './db.js';

// Apps, engines and templates. Each belongs to an account (its `owner`); the built-ins belong to
// 'tessera' and every account sees them. Where an account has its own of the same name, its own
// wins: ORDER BY (owner = account) DESC.

export const BUILTIN_OWNER = 'tessera';

export interface ComponentArchive {
  sha256: string;
  size: number;
}

export interface StoredComponent {
  owner: string;
  kind: ComponentKind;
  name: string;
  version: string;
  manifest: Manifest;
  archive: ComponentArchive;
  active: boolean;
  createdAt: Date;
  updatedAt: Date;
}

interface ComponentRow {
  owner: string;
  kind: ComponentKind;
  name: string;
  version: string;
  manifest: Manifest;
  archive_sha256: string | null;
  archive_size: string | number | null;
  active: boolean;
  created_at: Date;
  updated_at: Date;
}

const COMPONENT_COLUMNS = 'owner, kind, name, version, manifest, archive_sha256, archive_size, active, created_at, updated_at';

function rowToComponent(row: ComponentRow): StoredComponent {
  return {
    owner: row.owner,
    kind: row.kind,
    name: row.name,
    version: row.version,
    manifest: row.manifest,
    archive: { sha256: row.archive_sha256 ?? '', size: Number(row.archive_size ?? 0) },
    active: row.active,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

/** Pushing an existing (name, version) replaces it (ByteNite's rule) and leaves it as active as it was. */
export async function upsertComponent(db: Queryable, owner: string, manifest: Manifest, archive: ComponentArchive): Promise<StoredComponent> {
  const [major, minor] = versionParts(manifest.version);
  const [row] = await db.query<ComponentRow>(
    `INSERT INTO components (owner, kind, name, version, major, minor, manifest, location, archive_sha256, archive_size)
     VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $8, $9)
     ON CONFLICT (owner, kind, name, version) DO UPDATE
       SET manifest = EXCLUDED.manifest, location = EXCLUDED.location, archive_sha256 = EXCLUDED.archive_sha256,
           archive_size = EXCLUDED.archive_size, updated_at = now()
     RETURNING ${COMPONENT_COLUMNS}`,
    [owner, manifest.kind, manifest.name, manifest.version, major, minor, JSON.stringify(manifest), archive.sha256, archive.size],
  );
  return rowToComponent(row!);
}

/**
 * The component a tag names, as `account` sees it: the highest version matching `name`, `name@M`
 * or `name@M.m` among the account's own (or, when it has none of that name, the built-ins).
 */
export async function resolveComponent(db: Queryable, account: string, kind: ComponentKind, tag: Tag, options: { activeOnly?: boolean } = {}): Promise<StoredComponent | null> {
  const [row] = await db.query<ComponentRow>(
    `SELECT ${COMPONENT_COLUMNS}
       FROM components
      WHERE kind = $1 AND name = $2 AND owner IN ($5, '${BUILTIN_OWNER}') AND ($6 = false OR active)
        AND ($3::int IS NULL OR major = $3) AND ($4::int IS NULL OR minor = $4)
      ORDER BY owner = $5 DESC, major DESC, minor DESC
      LIMIT 1`,
    [kind, tag.name, tag.major ?? null, tag.minor ?? null, account, options.activeOnly ?? true],
  );
  return row ? rowToComponent(row) : null;
}

/** Every version of every component of these kinds the account sees, newest first within a name. */
export async function listComponents(db: Queryable, account: string, kinds: ComponentKind[]): Promise<StoredComponent[]> {
  const rows = await db.query<ComponentRow>(
    `SELECT ${COMPONENT_COLUMNS} FROM components
      WHERE kind = ANY($1::text[]) AND owner IN ($2, '${BUILTIN_OWNER}')
      ORDER BY name, kind, owner = $2 DESC, major DESC, minor DESC`,
    [kinds, account],
  );
  return rows.map(rowToComponent);
}

/** Activates or deactivates one version the account owns; false when it owns no such version. */
export async function setComponentActive(db: Queryable, account: string, kind: ComponentKind, name: string, version: string, active: boolean): Promise<boolean> {
  const rows = await db.query(
    'UPDATE components SET active = $5, updated_at = now() WHERE owner = $1 AND kind = $2 AND name = $3 AND version = $4 RETURNING name',
    [account, kind, name, version, active],
  );
  return rows.length === 1;
}

/** Whether any component of any owner is stored in this archive (workers may fetch only those). */
export async function isKnownArchive(db: Queryable, sha256: string): Promise<boolean> {
  const rows = await db.query('SELECT 1 FROM components WHERE archive_sha256 = $1 LIMIT 1', [sha256]);
  return rows.length > 0;
}

export async function upsertTemplate(db: Queryable, template: Template): Promise<void> {
  const defaults = {
    dataSource: template.dataSource,
    dataDestination: template.dataDestination,
    params: template.params,
    config: template.config,
    jobType: template.jobType,
    presets: template.presets,
  };
  await db.query(
    `INSERT INTO templates (id, owner, description, app, partitioner, assembler, defaults)
     VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb)
     ON CONFLICT (owner, id) DO UPDATE SET description = EXCLUDED.description, app = EXCLUDED.app,
       partitioner = EXCLUDED.partitioner, assembler = EXCLUDED.assembler, defaults = EXCLUDED.defaults`,
    [template.id, template.owner, template.description, template.app, template.partitioner, template.assembler, JSON.stringify(defaults)],
  );
}

export interface TemplateRow {
  id: string;
  owner: string;
  description: string;
  app: string;
  partitioner: string;
  assembler: string;
  defaults: Pick<Template, 'dataSource' | 'dataDestination' | 'params' | 'config' | 'jobType' | 'presets'>;
}

const TEMPLATE_COLUMNS = 'id, owner, description, app, partitioner, assembler, defaults';

export function rowToTemplate(row: TemplateRow): Template {
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

/**
 * SQL for the template an account means by an id, both given as SQL expressions (parameters, or
 * columns of an outer query): the account's own, else the built-in one.
 */
export function chosenTemplateSql(id: string, account: string): string {
  return `SELECT ${TEMPLATE_COLUMNS} FROM templates WHERE templates.id = ${id} AND templates.owner IN (${account}, '${BUILTIN_OWNER}') ORDER BY templates.owner = ${account} DESC LIMIT 1`;
}

/** The template `account` means by this id: its own, else the built-in. */
export async function getTemplate(db: Queryable, account: string, templateId: string): Promise<Template | null> {
  const [row] = await db.query<TemplateRow>(chosenTemplateSql('$1', '$2'), [templateId, account]);
  return row ? rowToTemplate(row) : null;
}

export async function getTemplates(db: Queryable, account: string, templateIds: string[]): Promise<Map<string, Template>> {
  if (templateIds.length === 0) return new Map();
  const rows = await db.query<TemplateRow>(
    `SELECT DISTINCT ON (id) ${TEMPLATE_COLUMNS} FROM templates
      WHERE id = ANY($1::text[]) AND owner IN ($2, '${BUILTIN_OWNER}') ORDER BY id, owner = $2 DESC`,
    [templateIds, account],
  );
  return new Map(rows.map((row) => [row.id, rowToTemplate(row)]));
}

export async function listTemplates(db: Queryable, account: string, page: { limit: number; offset: number }): Promise<{ templates: Template[]; total: number }> {
  const visible = `SELECT DISTINCT ON (id) ${TEMPLATE_COLUMNS} FROM templates WHERE owner IN ($1, '${BUILTIN_OWNER}') ORDER BY id, owner = $1 DESC`;
  const rows = await db.query<TemplateRow & { total: number }>(
    `SELECT *, count(*) OVER ()::int AS total FROM (${visible}) AS visible ORDER BY id LIMIT $2 OFFSET $3`,
    [account, page.limit, page.offset],
  );
  const total = rows[0]?.total ?? (page.offset > 0 ? (await db.query<{ total: number }>(`SELECT count(*)::int AS total FROM (${visible}) AS visible`, [account]))[0]!.total : 0);
  return { templates: rows.map(rowToTemplate), total };
}

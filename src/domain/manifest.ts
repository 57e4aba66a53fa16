import { invalidArgument, quote } from './errors.js';

export type ComponentKind = 'app' | 'partitioner' | 'assembler';

export interface DeviceRequirements {
  minCpu?: number;
  minMemory?: number;
  gpu?: string[];
}

export interface Manifest {
  name: string;
  version: string;
  description: string;
  kind: ComponentKind;
  platform: string;
  entrypoint: string;
  platformConfig: Record<string, unknown>;
  deviceRequirements: DeviceRequirements;
}

const NAME_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
const VERSION_PATTERN = /^(\d{1,6})\.(\d{1,6})$/;

/** Real manifests mix spellings (`Name`, `platform_config`, `platformConfig`): compare keys without case or underscores. */
function normalizeKey(key: string): string {
  return key.toLowerCase().replace(/[_-]/g, '');
}

function pick(source: Record<string, unknown>, key: string): unknown {
  const wanted = normalizeKey(key);
  for (const [candidate, value] of Object.entries(source)) {
    if (normalizeKey(candidate) === wanted) return value;
  }
  return undefined;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Parses a ByteNite manifest.json object. `where` names the file in error messages. */
export function parseManifest(raw: unknown, where: string): Manifest {
  if (!isObject(raw)) throw invalidArgument('manifest', `${where}: a manifest must be a JSON object, got ${quote(raw)}`);
  const name = pick(raw, 'name');
  if (typeof name !== 'string' || !NAME_PATTERN.test(name)) {
    throw invalidArgument('manifest.name', `${where}: name ${quote(name)} must be 1-64 letters, digits, "-" or "_"`, 'for example "word-count"');
  }
  const version = pick(raw, 'version') ?? '1.0';
  if (typeof version !== 'string' || !VERSION_PATTERN.test(version)) {
    throw invalidArgument('manifest.version', `${where}: version ${quote(version)} must be "major.minor"`, 'for example "1.0"');
  }
  const entrypoint = pick(raw, 'entrypoint');
  if (typeof entrypoint !== 'string' || entrypoint.length === 0) {
    throw invalidArgument('manifest.entrypoint', `${where}: entrypoint ${quote(entrypoint)} must name a script inside app/`, 'for example "main.py"');
  }
  const type = pick(raw, 'type');
  const kind: ComponentKind = type === 'partitioner' || type === 'assembler' ? type : 'app';
  const description = pick(raw, 'description');
  const platform = pick(raw, 'platform');
  const platformConfig = pick(raw, 'platformConfig');
  const requirements = pick(raw, 'deviceRequirements');
  return {
    name,
    version,
    description: typeof description === 'string' ? description : '',
    kind,
    platform: typeof platform === 'string' ? platform : 'docker',
    entrypoint,
    platformConfig: isObject(platformConfig) ? platformConfig : {},
    deviceRequirements: isObject(requirements) ? parseRequirements(requirements, where) : {},
  };
}

function parseRequirements(raw: Record<string, unknown>, where: string): DeviceRequirements {
  const result: DeviceRequirements = {};
  const minCpu = pick(raw, 'minCpu');
  const minMemory = pick(raw, 'minMemory');
  const gpu = pick(raw, 'gpu');
  if (minCpu !== undefined) {
    if (typeof minCpu !== 'number' || !(minCpu >= 0)) throw invalidArgument('manifest.device_requirements.min_cpu', `${where}: min_cpu ${quote(minCpu)} must be a number of cores ≥ 0`);
    result.minCpu = minCpu;
  }
  if (minMemory !== undefined) {
    if (typeof minMemory !== 'number' || !(minMemory >= 0)) throw invalidArgument('manifest.device_requirements.min_memory', `${where}: min_memory ${quote(minMemory)} must be a number of GB ≥ 0`);
    result.minMemory = minMemory;
  }
  if (gpu !== undefined && gpu !== null) {
    if (!Array.isArray(gpu) || gpu.some((model) => typeof model !== 'string')) throw invalidArgument('manifest.device_requirements.gpu', `${where}: gpu ${quote(gpu)} must be a list of GPU model names`);
    result.gpu = gpu as string[];
  }
  return result;
}

export interface Tag {
  name: string;
  major?: number;
  minor?: number;
}

/** `name` (highest version), `name@M` (highest minor of major M) or `name@M.m` (exact). */
export function parseTag(tag: string): Tag {
  const match = /^([A-Za-z0-9_-]{1,64})(?:@(\d{1,6})(?:\.(\d{1,6}))?)?$/.exec(tag);
  if (!match) throw invalidArgument('tag', `tag ${quote(tag)} is not "name", "name@major" or "name@major.minor"`, 'for example "word-count@1.0"');
  const parsed: Tag = { name: match[1]! };
  if (match[2] !== undefined) parsed.major = Number(match[2]);
  if (match[3] !== undefined) parsed.minor = Number(match[3]);
  return parsed;
}

export function versionParts(version: string): [number, number] {
  const match = VERSION_PATTERN.exec(version);
  return match ? [Number(match[1]), Number(match[2])] : [0, 0];
}

export const PASSTHROUGH = 'passthrough';

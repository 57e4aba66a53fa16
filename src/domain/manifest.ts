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
  if (isObject(platformConfig)) checkPlatformConfig(platformConfig, where);
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

/** An image reference: [registry[:port]/]name[:tag][@digest], as podman and docker take them. */
const IMAGE_PATTERN = /^[a-z0-9]+(?:[._-][a-z0-9]+)*(?::\d{1,5})?(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$/;

function checkPlatformConfig(config: Record<string, unknown>, where: string): void {
  const container = pick(config, 'container');
  if (container !== undefined && container !== null && container !== '' && (typeof container !== 'string' || container.length > 255 || !IMAGE_PATTERN.test(container))) {
    throw invalidArgument('manifest.platform_config.container', `${where}: container ${quote(container)} is not an image reference`, 'for example "python:3.11-slim" or "registry.example.com/team/app:1.2"');
  }
  const network = pick(config, 'network');
  if (network !== undefined && network !== null && !['none', 'public', true, false].includes(network as string | boolean)) {
    throw invalidArgument('manifest.platform_config.network', `${where}: network ${quote(network)} must be "none" or "public"`, 'use "public" for an app that needs to reach the internet');
  }
  for (const key of ['username', 'token']) {
    const value = pick(config, key);
    if (value !== undefined && value !== null && typeof value !== 'string') throw invalidArgument(`manifest.platform_config.${key}`, `${where}: ${key} must be a string`);
  }
}

/** The container image a component runs in (platform_config.container), or undefined for none. */
export function manifestImage(manifest: Manifest): string | undefined {
  const container = pick(manifest.platformConfig, 'container');
  return typeof container === 'string' && container !== '' ? container : undefined;
}

/** Whether a component asks to reach the public internet (platform_config.network "public"). */
export function manifestWantsNetwork(manifest: Manifest): boolean {
  const network = pick(manifest.platformConfig, 'network');
  return network === 'public' || network === true;
}

/** The account secret that holds a private image's token (platform_config.token "secret:<id>"), if the manifest names one. */
export function manifestRegistrySecret(manifest: Manifest): string | undefined {
  const token = pick(manifest.platformConfig, 'token');
  return typeof token === 'string' && token.startsWith(REGISTRY_SECRET_PREFIX) ? token.slice(REGISTRY_SECRET_PREFIX.length) : undefined;
}

const REGISTRY_SECRET_PREFIX = 'secret:';

/**
 * Credentials for a private image (platform_config.username and token), if the manifest gives them
 * itself; a token naming an account secret is opened by the server instead (manifestRegistrySecret).
 */
export function manifestRegistryCredentials(manifest: Manifest): { username: string; token: string } | undefined {
  const username = pick(manifest.platformConfig, 'username');
  const token = pick(manifest.platformConfig, 'token');
  return typeof username === 'string' && typeof token === 'string' && token !== '' && !token.startsWith(REGISTRY_SECRET_PREFIX) ? { username, token } : undefined;
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

import type { Manifest } from './manifest.js';

// Built-in components whose code lives in the worker itself rather than in a process it starts.
// Their manifest's entrypoint is "tessera:<name>", which can never name a file in app/, so a
// pushed component cannot claim one by accident; the registry accepts the marker only from the
// built-ins under examples/. They exist so the platform can be measured (and smoke-tested)
// without the cost of starting a process per task, under the same contract as any other app.

export const IN_PROCESS_PREFIX = 'tessera:';

/** Every in-process component a worker knows, by the name after the prefix. */
export const IN_PROCESS_NAMES = ['noop', 'empty-chunks'] as const;
export type InProcessName = (typeof IN_PROCESS_NAMES)[number];

/** The in-process component an entrypoint names; undefined for an ordinary file entrypoint. */
export function inProcessName(entrypoint: string): InProcessName | undefined {
  if (!entrypoint.startsWith(IN_PROCESS_PREFIX)) return undefined;
  const name = entrypoint.slice(IN_PROCESS_PREFIX.length);
  return (IN_PROCESS_NAMES as readonly string[]).includes(name) ? (name as InProcessName) : undefined;
}

/**
 * Whether a built-in app reads its chunk or writes results. One that does neither (noop) runs
 * without a task folder: nothing is downloaded, made or removed for it.
 */
export function usesFiles(name: InProcessName): boolean {
  return name !== 'noop';
}

export function isInProcess(manifest: Manifest): boolean {
  return manifest.entrypoint.startsWith(IN_PROCESS_PREFIX);
}

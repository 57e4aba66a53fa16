import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Log } from '../domain/log.js';

// A cgroup per task, where the host lets this worker make them: the kernel then holds the task's
// memory and process count to their limits whatever the task does, kills it at the memory limit
// (and says so), and can find every process the task started. cgroup v2 (one hierarchy, what
// current hosts have) and v1 (separate memory and pids hierarchies) are both handled; where
// neither can be written (an unprivileged worker without a delegated cgroup), tasks get rlimits
// instead and the worker says so when it starts.

export interface TaskCgroupLimits {
  memoryBytes: number;
  processes: number;
}

export interface TaskCgroup {
  /** The task's cgroup folders: the sandbox binds their parents at `/.cg/<name>`, the task joins these. */
  folders: { hierarchy: string; name: string }[];
  /** Whether the kernel killed a process of the task at its memory limit. */
  memoryLimitHit(): boolean;
  /** Kills every process left in the task's cgroups (a fallback: the task's namespace already ends them). */
  killAll(): void;
  remove(): Promise<void>;
}

/**
 * A container's cgroup parent (the engine makes the container's own cgroup inside it and limits
 * that): through it the worker sees whether the container was stopped at its memory limit, which
 * podman itself does not always report.
 */
export interface ContainerCgroup {
  /** For --cgroup-parent: the path from the hierarchy's root. */
  parent: string;
  /** Whether the kernel stopped the container at `limitBytes` (a container killed by SIGKILL). */
  memoryLimitHit(limitBytes: number): boolean;
  remove(): Promise<void>;
}

export interface Cgroups {
  /** What the start line and /v1/customer/workers say: "cgroup v2", "cgroup v1", or why none. */
  description: string;
  available: boolean;
  /** The parent folders the sandbox binds: hierarchy name (memory, pids, unified) → host folder. */
  parents: Record<string, string>;
  make(taskName: string, limits: TaskCgroupLimits): TaskCgroup;
  container(taskName: string): ContainerCgroup;
  close(): Promise<void>;
}

const ROOT = '/sys/fs/cgroup';

/** This process's cgroup in each hierarchy, from /proc/self/cgroup ("0::/path" is v2). */
function ownCgroups(): Map<string, string> {
  const own = new Map<string, string>();
  for (const line of readFileSync('/proc/self/cgroup', 'utf8').split('\n')) {
    const match = /^\d+:([^:]*):(.*)$/.exec(line);
    if (!match) continue;
    for (const controller of match[1]!.split(',')) own.set(controller || 'unified', match[2]!);
  }
  return own;
}

function unavailable(why: string): Cgroups {
  return {
    description: `rlimits (no cgroups: ${why})`,
    available: false,
    parents: {},
    make() {
      throw new Error('no cgroups');
    },
    container() {
      throw new Error('no cgroups');
    },
    async close() {},
  };
}

/** The leftovers of workers that are gone (tessera-<pid>-… folders whose pid is dead). */
function removeStale(parent: string, log: Log): void {
  for (const name of readdirSync(parent)) {
    const match = /^tessera-(\d+)-[0-9a-f]+$/.exec(name);
    if (!match || existsSync(`/proc/${match[1]}`)) continue;
    const folder = path.join(parent, name);
    // Still busy, it is left for a later start.
    if (tryRemove(folder)) log.info({ folder }, 'removed the cgroups of a worker that is gone');
  }
}

function killIn(folder: string): number {
  let pids: number[] = [];
  try {
    pids = readFileSync(path.join(folder, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
  } catch {
    return 0;
  }
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Gone meanwhile.
    }
  }
  return pids.length;
}

/** Tries to remove a cgroup folder (its children first) once; false while a process is still in it. */
function tryRemove(folder: string): boolean {
  let children: string[] = [];
  try {
    children = readdirSync(folder, { withFileTypes: true }).filter((entry) => entry.isDirectory()).map((entry) => path.join(folder, entry.name));
  } catch {
    return true;
  }
  let removed = children.map((child) => tryRemove(child)).every(Boolean);
  killIn(folder);
  try {
    rmdirSync(folder);
  } catch (error) {
    removed = (error as NodeJS.ErrnoException).code === 'ENOENT';
  }
  return removed;
}

/** Removes a cgroup folder, killing what is left in it; a process killed a moment ago may take a few ms to leave. */
async function emptyAndRemove(folder: string): Promise<void> {
  for (let attempt = 0; attempt < 100 && !tryRemove(folder); attempt++) await new Promise((resolve) => setTimeout(resolve, 10));
}

/** Reads "key value" lines (memory.events, memory.oom_control) into a map. */
function counters(file: string): Map<string, number> {
  const found = new Map<string, number>();
  try {
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      const [key, value] = line.split(' ');
      if (key && value !== undefined) found.set(key, Number(value));
    }
  } catch {
    // Gone: nothing counted.
  }
  return found;
}

/**
 * The cgroups this worker can make for its tasks. `wanted` false (TESSERA_TASK_CGROUPS=false, or a
 * sandbox that is off) gives rlimits only.
 */
export function createCgroups(log: Log, wanted = true): Cgroups {
  if (!wanted) return unavailable('turned off');
  if (process.platform !== 'linux') return unavailable(`not on Linux (${process.platform})`);
  let own: Map<string, string>;
  try {
    own = ownCgroups();
  } catch (error) {
    return unavailable(`/proc/self/cgroup cannot be read: ${(error as Error).message}`);
  }
  const suffix = `tessera-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    if (existsSync(path.join(ROOT, 'cgroup.controllers'))) return version2(own.get('unified') ?? '/', suffix, log);
    if (existsSync(path.join(ROOT, 'memory')) && existsSync(path.join(ROOT, 'pids'))) return version1(own, suffix, log);
    return unavailable(`neither cgroup v2 nor the v1 memory and pids hierarchies are mounted at ${ROOT}`);
  } catch (error) {
    return unavailable((error as Error).message);
  }
}

function version1(own: Map<string, string>, suffix: string, log: Log): Cgroups {
  const parents: Record<string, string> = {};
  for (const hierarchy of ['memory', 'pids']) {
    const base = path.join(ROOT, hierarchy, own.get(hierarchy) ?? '/');
    try {
      removeStale(base, log);
      const parent = path.join(base, suffix);
      mkdirSync(parent);
      parents[hierarchy] = parent;
    } catch (error) {
      for (const made of Object.values(parents)) tryRemove(made);
      return unavailable(`cannot make a cgroup under ${base}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
    }
  }
  // Charged memory includes swap where the kernel accounts it, so a task cannot swap past its limit.
  const swapAccounted = existsSync(path.join(parents.memory!, 'memory.memsw.limit_in_bytes'));
  // A container's cgroup parent is one path in every hierarchy: the engine makes it where it is
  // missing. The folders it made above ours are removed at the end, those that were there kept.
  const relative = path.relative(path.join(ROOT, 'memory'), parents.memory!);
  const made = new Set<string>();
  const noteMissing = () => {
    for (const hierarchy of readdirSync(ROOT)) {
      let folder = path.join(ROOT, hierarchy, relative);
      while (folder.startsWith(path.join(ROOT, hierarchy) + path.sep) && !existsSync(folder)) {
        made.add(folder);
        folder = path.dirname(folder);
      }
    }
  };
  return {
    description: 'cgroup v1 (memory, pids)',
    available: true,
    parents,
    make(taskName, limits) {
      const memory = path.join(parents.memory!, taskName);
      const pids = path.join(parents.pids!, taskName);
      mkdirSync(memory);
      mkdirSync(pids);
      writeFileSync(path.join(memory, 'memory.limit_in_bytes'), String(limits.memoryBytes));
      if (swapAccounted) writeFileSync(path.join(memory, 'memory.memsw.limit_in_bytes'), String(limits.memoryBytes));
      writeFileSync(path.join(pids, 'pids.max'), String(limits.processes));
      return {
        folders: [{ hierarchy: 'memory', name: taskName }, { hierarchy: 'pids', name: taskName }],
        memoryLimitHit: () => (counters(path.join(memory, 'memory.oom_control')).get('oom_kill') ?? 0) > 0,
        killAll: () => void killIn(memory),
        remove: () => Promise.all([emptyAndRemove(memory), emptyAndRemove(pids)]).then(() => undefined),
      };
    },
    container(taskName) {
      if (made.size === 0) noteMissing();
      const memory = path.join(parents.memory!, taskName);
      mkdirSync(memory);
      return {
        parent: `/${path.join(relative, taskName)}`,
        // v1 counts an OOM kill only in the container's own cgroup, gone with it; its peak, counted
        // up the hierarchy, is here.
        memoryLimitHit: (limitBytes) => {
          try {
            return Number(readFileSync(path.join(memory, 'memory.max_usage_in_bytes'), 'utf8')) >= limitBytes * 0.97;
          } catch {
            return false;
          }
        },
        remove: () => Promise.all(readdirSync(ROOT).map((hierarchy) => emptyAndRemove(path.join(ROOT, hierarchy, relative, taskName)))).then(() => undefined),
      };
    },
    async close() {
      await Promise.all(Object.values(parents).map((parent) => emptyAndRemove(parent)));
      for (const folder of [...made].sort((left, right) => right.length - left.length)) await emptyAndRemove(folder);
    },
  };
}

/**
 * cgroup v2: the worker's own cgroup may hold processes or children with controllers, not both.
 * The worker moves itself into a leaf (`…/tessera-<pid>-…/worker`) and its tasks get cgroups beside
 * it (`…/tessera-<pid>-…/tasks/<task>`), with memory and pids enabled on the way down.
 */
function version2(ownPath: string, suffix: string, log: Log): Cgroups {
  const base = path.join(ROOT, ownPath);
  const controllers = readFileSync(path.join(base, 'cgroup.controllers'), 'utf8').trim().split(/\s+/);
  const missing = ['memory', 'pids'].filter((controller) => !controllers.includes(controller));
  if (missing.length > 0) return unavailable(`cgroup v2 at ${base} does not offer ${missing.join(' and ')}`);
  removeStale(base, log);
  const parent = path.join(base, suffix);
  try {
    mkdirSync(parent);
    const leaf = path.join(parent, 'worker');
    mkdirSync(leaf);
    writeFileSync(path.join(leaf, 'cgroup.procs'), String(process.pid));
    writeFileSync(path.join(base, 'cgroup.subtree_control'), '+memory +pids');
    writeFileSync(path.join(parent, 'cgroup.subtree_control'), '+memory +pids');
    mkdirSync(path.join(parent, 'tasks'));
    writeFileSync(path.join(parent, 'tasks', 'cgroup.subtree_control'), '+memory +pids');
  } catch (error) {
    return unavailable(`cannot delegate memory and pids under ${base}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  const tasks = path.join(parent, 'tasks');
  return {
    description: 'cgroup v2 (memory, pids)',
    available: true,
    parents: { unified: tasks },
    make(taskName, limits) {
      const folder = path.join(tasks, taskName);
      mkdirSync(folder);
      writeFileSync(path.join(folder, 'memory.max'), String(limits.memoryBytes));
      if (existsSync(path.join(folder, 'memory.swap.max'))) writeFileSync(path.join(folder, 'memory.swap.max'), '0');
      writeFileSync(path.join(folder, 'pids.max'), String(limits.processes));
      return {
        folders: [{ hierarchy: 'unified', name: taskName }],
        memoryLimitHit: () => (counters(path.join(folder, 'memory.events')).get('oom_kill') ?? 0) > 0,
        killAll() {
          try {
            writeFileSync(path.join(folder, 'cgroup.kill'), '1');
          } catch {
            killIn(folder);
          }
        },
        remove: () => emptyAndRemove(folder),
      };
    },
    container(taskName) {
      const folder = path.join(tasks, taskName);
      mkdirSync(folder);
      return {
        parent: `/${path.relative(ROOT, folder)}`,
        memoryLimitHit: () => (counters(path.join(folder, 'memory.events')).get('oom_kill') ?? 0) > 0,
        remove: () => emptyAndRemove(folder),
      };
    },
    async close() {
      // The worker's own process stays in its leaf until it exits; the leaf goes with the next start's sweep.
      await emptyAndRemove(tasks);
    },
  };
}

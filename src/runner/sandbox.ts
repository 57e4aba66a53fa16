import { spawn } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readlinkSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import path from 'node:path';
import { TesseraError } from '../domain/errors.js';
import type { Log } from '../domain/log.js';
import { manifestWantsNetwork } from '../domain/manifest.js';
import { PRIVATE_IPV4_RANGES } from '../domain/private-ranges.js';
import type { Cgroups, TaskCgroup } from './cgroups.js';
import type { Confinement, Launcher, Reply } from './launcher.js';
import { LAUNCHER_SCRIPT, createLauncher } from './launcher.js';
import type { Invocation, TaskRunResult } from './runtime.js';
import { handOverTaskFolders } from './task-folders.js';

// The host sandbox. Tasks of one account and one component share a launcher (launcher.py) inside
// a sandbox of their own: new namespaces, a root holding only the system's programs and libraries
// (read-only), the component (read-only at /component), the account's cache (/cache/user) and the
// operator's shared cache (read-only, /cache/shared), and no network but its own loopback. Each
// task's process then gets its own PID namespace, its own folder at /task and nothing of the other
// tasks, a private /tmp, its cgroups or rlimits, and an unprivileged user (see launcher.py).
// The worker's data folder, database, blob folder, other accounts' caches and other components
// are not in the sandbox at all.

export interface SandboxSettings {
  /** The python that runs the launcher and python entrypoints (its real path), and its prefix. */
  python: { executable: string; prefix: string };
  /** Whether python entrypoints run in the launcher's forked processes (warm) or each in a new interpreter. */
  warmPython: boolean;
  /** A folder of this worker's that no task sees: launchers' sockets and roots. */
  runtimeDir: string;
  /** Where task folders are made (bound at /tasks in the sandboxes, each task seeing only its own). */
  workDir: string;
  /** The host user a task runs as when the worker is root; otherwise the worker's own uid in a user namespace. */
  user: { uid: number; gid: number };
  cgroups: Cgroups;
  /** Whether a task whose app asks for the public internet gets it. */
  network: 'none' | 'public';
  /** The environment every task starts from (PATH, LANG, TZ). */
  baseEnv: Record<string, string>;
  log: Log;
}

/** Launchers kept while idle, and for how long. */
const IDLE_LAUNCHERS = 16;
const IDLE_MS = 60_000;

/** What a sandbox shows of the host: these, read-only, where they exist (symbolic links kept as links). */
const SYSTEM_PATHS = ['/usr', '/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32', '/etc'];

interface Sandbox {
  launcher: Launcher;
  lastUsed: number;
  /** Containers using this sandbox's network namespace: it is kept while they run. */
  holders: number;
  /** Cleared when the launcher exits. */
  cleanup: () => void;
}

export interface HostSandbox {
  /** "namespaces (uid 65534)" or "namespaces (the worker's uid, in a user namespace)". */
  description: string;
  run(invocation: Invocation): Promise<TaskRunResult>;
  /** Starts a sandbox once and checks it answers: the worker refuses to start when this host cannot make one. */
  check(): Promise<void>;
  /**
   * The network namespace (a /proc path) of this component's sandbox with the public network, for
   * a container of the same task to join; kept until `release` is called.
   */
  publicNetwork(invocation: Invocation): Promise<{ path: string; release: () => void }>;
  close(): Promise<void>;
}

export function createHostSandbox(settings: SandboxSettings): HostSandbox {
  const { log, cgroups } = settings;
  const asRoot = process.getuid?.() === 0;
  const sandboxes = new Map<string, Sandbox>();
  const taskUser = asRoot ? settings.user : { uid: 0, gid: 0 };
  const pythonBin = path.dirname(settings.python.executable);
  const nodePrefix = path.dirname(path.dirname(realpathSync(process.execPath)));

  const sweeper = setInterval(() => {
    const now = Date.now();
    const idle = [...sandboxes.entries()].filter(([, sandbox]) => sandbox.launcher.busy() === 0 && sandbox.holders === 0).sort((left, right) => left[1].lastUsed - right[1].lastUsed);
    for (const [index, [key, sandbox]] of idle.entries()) {
      if (now - sandbox.lastUsed > IDLE_MS || idle.length - index > IDLE_LAUNCHERS) {
        sandboxes.delete(key);
        sandbox.launcher.close();
      }
    }
  }, 5_000);
  sweeper.unref();

  /** Host folders shown inside, read-only: the system, and interpreters installed outside it. */
  function systemBinds(): { binds: [string, string, 'ro' | 'rw'][]; symlinks: [string, string][] } {
    const binds: [string, string, 'ro'][] = [];
    const symlinks: [string, string][] = [];
    for (const where of SYSTEM_PATHS) {
      if (!existsSync(where)) continue;
      if (lstatSync(where).isSymbolicLink()) symlinks.push([where, readlinkSync(where)]);
      else binds.push([where, where, 'ro']);
    }
    for (const prefix of [settings.python.prefix, nodePrefix]) {
      if (!binds.some(([shown]) => prefix === shown || prefix.startsWith(`${shown}/`))) binds.push([prefix, prefix, 'ro']);
    }
    return { binds, symlinks };
  }

  function start(invocation: Invocation, network: boolean): Sandbox {
    const root = mkdtempSync(path.join(settings.runtimeDir, 'root-'));
    const resolv = network ? path.join(root, '..', `${path.basename(root)}.resolv.conf`) : undefined;
    const { binds, symlinks } = systemBinds();
    const mounts: [string, string, 'ro' | 'rw'][] = [
      ...binds,
      [invocation.componentFolder, '/component', 'ro'],
      [settings.workDir, '/tasks', 'rw'],
      [LAUNCHER_SCRIPT, '/.tessera/launcher.py', 'ro'],
    ];
    if (invocation.folders.userCache) mounts.push([invocation.folders.userCache, '/cache/user', 'rw']);
    if (invocation.folders.sharedCache) mounts.push([invocation.folders.sharedCache, '/cache/shared', 'ro']);
    for (const [hierarchy, parent] of Object.entries(cgroups.parents)) mounts.push([parent, `/.cg/${hierarchy}`, 'rw']);
    // With a network, names resolve through slirp4netns's own resolver, not the host's (which may be private).
    if (resolv) {
      writeFileSync(resolv, 'nameserver 10.0.2.3\n', { mode: 0o644 });
      // Where /etc/resolv.conf leads (systemd-resolved makes it a link into /run), so the link works inside.
      mounts.push([resolv, existsSync('/etc/resolv.conf') ? realpathSync('/etc/resolv.conf') : '/etc/resolv.conf', 'ro']);
    }
    let slirp: ReturnType<typeof spawn> | undefined;
    const cleanup = () => {
      slirp?.kill('SIGKILL');
      rmSync(root, { recursive: true, force: true });
      if (resolv) rmSync(resolv, { force: true });
    };
    const launcher = createLauncher({
      command: settings.python.executable,
      args: (socketFolder) => ['-u', LAUNCHER_SCRIPT, '/.io', 'sandbox', JSON.stringify({ root, binds: [...mounts, [socketFolder, '/.io', 'rw']], symlinks, dirs: [] })],
      // The component folder is read-only: python writes no bytecode beside it (see component-cache.ts).
      env: { ...settings.baseEnv, PYTHONUNBUFFERED: '1', PYTHONDONTWRITEBYTECODE: '1' },
      runtimeDir: settings.runtimeDir,
      socketInside: '/.io',
      confined: true,
      what: `the sandbox of ${invocation.manifest.name}@${invocation.manifest.version}`,
      log,
      ...(network ? { prepare: async (pid: number, ask: (message: object) => Promise<Reply>) => void (slirp = await attachNetwork(pid, ask)) } : {}),
      onExit: () => {
        cleanup();
        for (const [key, sandbox] of sandboxes) if (sandbox.launcher === launcher) sandboxes.delete(key);
      },
    });
    return { launcher, lastUsed: Date.now(), holders: 0, cleanup };
  }

  /** slirp4netns gives the sandbox's namespace a route out; routes in it refuse every private range and this host's addresses. */
  async function attachNetwork(pid: number, ask: (message: object) => Promise<Reply>): Promise<ReturnType<typeof spawn>> {
    const args = ['--configure', '--mtu=65520', '--disable-host-loopback', '--ready-fd=3', ...(asRoot ? [] : [`--userns-path=/proc/${pid}/ns/user`]), String(pid), 'tap0'];
    const slirp = spawn('slirp4netns', args, { stdio: ['ignore', 'ignore', 'pipe', 'pipe'] });
    let said = '';
    slirp.stderr!.on('data', (chunk: Buffer) => (said = (said + chunk.toString()).slice(-1000)));
    await new Promise<void>((resolve, reject) => {
      slirp.once('error', (error) => reject(new TesseraError('FAILED_PRECONDITION', `could not start slirp4netns for a task's network: ${error.message}`, { hint: 'install slirp4netns (apt-get install slirp4netns), or set TESSERA_TASK_NETWORK=none' })));
      slirp.once('exit', (code) => reject(new TesseraError('FAILED_PRECONDITION', `slirp4netns exited (${code}) before the task's network was up: ${said.trim()}`)));
      (slirp.stdio[3] as NodeJS.ReadableStream).once('data', () => resolve());
    });
    const own = Object.values(networkInterfaces()).flat().filter((address) => address && address.family === 'IPv4').map((address) => [address!.address, 32] as const);
    await ask({ routes: [...PRIVATE_IPV4_RANGES, ...own] });
    return slirp;
  }

  function sandboxFor(invocation: Invocation, network: boolean): Sandbox {
    const key = `${invocation.accountId}\0${invocation.componentSha256}\0${network}\0${invocation.folders.userCache ? 'cache' : ''}`;
    let sandbox = sandboxes.get(key);
    if (!sandbox) sandboxes.set(key, (sandbox = start(invocation, network)));
    sandbox.lastUsed = Date.now();
    return sandbox;
  }

  function confinement(invocation: Invocation, cgroup: TaskCgroup | undefined): Confinement {
    const { limits } = invocation;
    const rlimits: Confinement['rlimits'] = { NOFILE: limits.openFiles, FSIZE: limits.fileBytes, CORE: 0 };
    // Without cgroups the kernel's per-process limits stand in: memory as the data segment, processes per uid.
    if (!cgroup) Object.assign(rlimits, { DATA: limits.memoryBytes, NPROC: limits.processes });
    return {
      task: path.relative(settings.workDir, invocation.folders.root),
      uid: taskUser.uid,
      gid: taskUser.gid,
      cgroups: cgroup ? cgroup.folders.map((folder) => `/.cg/${folder.hierarchy}/${folder.name}`) : [],
      hide: ['/tasks', '/.io', ...Object.keys(cgroups.parents).map((hierarchy) => `/.cg/${hierarchy}`)],
      rlimits,
      tmpBytes: limits.memoryBytes,
    };
  }

  function environment(invocation: Invocation): Record<string, string> {
    const env: Record<string, string> = { ...settings.baseEnv, PATH: `${pythonBin}:${settings.baseEnv.PATH ?? '/usr/local/bin:/usr/bin:/bin'}`, HOME: '/task/work', TMPDIR: '/tmp', PYTHONUNBUFFERED: '1', PYTHONDONTWRITEBYTECODE: '1' };
    for (const [variable, folder] of Object.entries(invocation.folderVariables)) env[variable] = `/task/${folder}`;
    if (invocation.folders.userCache) env.USER_CACHE_DIR = '/cache/user';
    if (invocation.folders.sharedCache) env.SHARED_CACHE_DIR = '/cache/shared';
    return { ...env, ...invocation.variables };
  }

  /** How the entrypoint starts, as the sandbox sees it (the component is at /component). */
  function command(invocation: Invocation): { script?: string; componentRoot?: string; argv?: string[] } {
    const inside = path.posix.join('/component', path.relative(invocation.componentFolder, invocation.entrypoint));
    if (/\.py$/i.test(inside)) return settings.warmPython ? { script: inside, componentRoot: '/component' } : { argv: [settings.python.executable, '-u', inside] };
    if (/\.(m|c)?js$/i.test(inside)) return { argv: [process.execPath, inside] };
    return { argv: [inside] };
  }

  async function run(invocation: Invocation): Promise<TaskRunResult> {
    // The operator's rule was checked before (create-runtime.ts): here an app that asks gets it.
    const network = manifestWantsNetwork(invocation.manifest);
    handOverTaskFolders(invocation.folders, taskUser);
    const taskName = path.basename(invocation.folders.root);
    const cgroup = cgroups.available ? cgroups.make(taskName, { memoryBytes: invocation.limits.memoryBytes, processes: invocation.limits.processes }) : undefined;
    try {
      const sandbox = sandboxFor(invocation, network);
      const result: TaskRunResult = await sandbox.launcher.run({
        ...command(invocation),
        cwd: '/task/work',
        env: environment(invocation),
        confine: confinement(invocation, cgroup),
        timeoutMs: invocation.timeoutMs,
        signal: invocation.signal,
        onOutput: invocation.onOutput,
      });
      sandbox.lastUsed = Date.now();
      if (cgroup?.memoryLimitHit()) result.memoryLimitBytes = invocation.limits.memoryBytes;
      else if (!cgroup && result.exitCode !== 0 && /MemoryError|Cannot allocate memory|out of memory/i.test(result.stderrTail)) result.memoryLimitBytes = invocation.limits.memoryBytes;
      return result;
    } finally {
      // In the background: processes the namespace's end killed take a few ms to leave the
      // cgroup, and the slot need not wait for them (the cgroup's verdict was read above).
      void cgroup?.remove().catch((error: unknown) => log.warn({ err: error }, 'a task cgroup could not be removed'));
    }
  }

  async function publicNetwork(invocation: Invocation): Promise<{ path: string; release: () => void }> {
    const sandbox = sandboxFor(invocation, true);
    sandbox.holders++;
    try {
      const pid = await sandbox.launcher.ready();
      return { path: `/proc/${pid}/ns/net`, release: () => ((sandbox.holders--), (sandbox.lastUsed = Date.now())) };
    } catch (error) {
      sandbox.holders--;
      throw error;
    }
  }

  return {
    publicNetwork,
    description: asRoot ? `namespaces (uid ${taskUser.uid})` : "namespaces (the worker's own uid, in a user namespace)",
    run,
    async check() {
      // A task of a component made for the purpose, run the way every task runs.
      const component = mkdtempSync(path.join(settings.runtimeDir, 'probe-'));
      chmodSync(component, 0o755);
      mkdirSync(path.join(component, 'app'));
      writeFileSync(path.join(component, 'app', 'probe'), '#!/bin/sh\ntest -w /task/work && test ! -e /tasks/.probe\n', { mode: 0o755 });
      mkdirSync(settings.workDir, { recursive: true });
      const root = mkdtempSync(path.join(settings.workDir, 'probe-'));
      mkdirSync(path.join(root, 'work'));
      const probe: Invocation = {
        accountId: '', manifest: { name: 'sandbox-probe', version: '1.0', description: '', kind: 'app', platform: 'tessera', entrypoint: 'probe', platformConfig: {}, deviceRequirements: {} },
        componentFolder: component, componentSha256: 'probe', entrypoint: path.join(component, 'app', 'probe'),
        folders: { root }, folderVariables: {}, variables: {},
        limits: { memoryBytes: 256 * 2 ** 20, processes: 64, openFiles: 256, fileBytes: 2 ** 20 },
        timeoutMs: 30_000,
      };
      try {
        const result = await run(probe);
        if (result.exitCode !== 0) throw new TesseraError('FAILED_PRECONDITION', `a process in the task sandbox failed (${result.signal ?? `exit ${result.exitCode}`}): ${result.stderrTail.trim()}`);
      } finally {
        for (const [key, sandbox] of sandboxes) {
          if (!key.includes('\0probe\0')) continue;
          sandboxes.delete(key);
          sandbox.launcher.close();
        }
        rmSync(component, { recursive: true, force: true });
        rmSync(root, { recursive: true, force: true });
      }
    },
    async close() {
      clearInterval(sweeper);
      for (const sandbox of sandboxes.values()) {
        sandbox.launcher.close();
        sandbox.cleanup();
      }
      sandboxes.clear();
    },
  };
}

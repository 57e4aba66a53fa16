import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { chownSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { TesseraError, quote } from '../domain/errors.js';
import type { Log } from '../domain/log.js';
import { manifestRegistryCredentials, manifestWantsNetwork } from '../domain/manifest.js';
import { nodeBootstrap, pythonBootstrap, readUsageFile } from './process-usage.js';
import { OutputTail } from './runner.js';
import type { Cgroups } from './cgroups.js';
import type { Invocation, TaskRunResult } from './runtime.js';
import { handOverTaskFolders } from './task-folders.js';

// Tasks whose component names an image (platform_config.container) run in it, with podman or
// docker: the same folders as in the host sandbox (/task, /component read-only, /cache/user,
// /cache/shared read-only), the same limits (memory, processes, open files, file size), no
// capabilities and no_new_privs, an unprivileged user, and no network unless the app asks and the
// operator allows it (then the network of a host sandbox, which refuses private addresses). Killing
// the task removes the container, and everything in it with it.

export interface ContainerEngine {
  /** The command and its global flags, e.g. ["podman"] or ["podman", "--runtime", "runc"]. */
  command: string[];
  /** "podman 4.3.1". */
  version: string;
}

export interface ContainerSettings {
  engine: ContainerEngine;
  /** Where a container's cgroup goes, so the worker can tell a kill at its memory limit (podman may not). */
  cgroups: Cgroups;
  runtimeDir: string;
  user: { uid: number; gid: number };
  network: 'none' | 'public';
  /** The network namespace (a path) of a host sandbox with the public network, for an app that asks for it. */
  publicNetwork: (invocation: Invocation) => Promise<{ path: string; release: () => void }>;
  log: Log;
}

/**
 * The container engine to use: `setting` is "auto" (podman, then docker, whichever answers), "off",
 * or a command with flags ("podman --runtime runc"). Null when there is none.
 */
export function findContainerEngine(setting: string, env: Record<string, string>): ContainerEngine | null {
  if (setting === 'off') return null;
  const candidates = setting === 'auto' ? [['podman'], ['docker']] : [setting.trim().split(/\s+/)];
  for (const command of candidates) {
    // `version` asks the engine itself: docker's client alone, with no daemon, does not count.
    const answer = spawnSync(command[0]!, [...command.slice(1), 'version', '--format', '{{.Server.Version}}'], { env, encoding: 'utf8', timeout: 20_000 });
    if (answer.status === 0 && answer.stdout.trim()) return { command, version: `${path.basename(command[0]!)} ${answer.stdout.trim()}` };
    if (setting !== 'auto') {
      throw new TesseraError('FAILED_PRECONDITION', `TESSERA_CONTAINER_RUNTIME = ${quote(setting)} does not answer: ${(answer.error?.message ?? answer.stderr ?? '').trim().slice(0, 300)}`, { hint: 'install podman (apt-get install podman), name a working command, or set TESSERA_CONTAINER_RUNTIME=off' });
    }
  }
  return null;
}

/**
 * RLIMIT_NPROC for a container: the engine's default can exceed the host's hard limit (podman then
 * fails to start anything), and a container's init may not raise it past 4096 here. It counts every
 * process of the task user's uid, so it is a ceiling only; --pids-limit is the task's own limit.
 */
function processRlimit(): number {
  const match = /^Max processes\s+\S+\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
  return Math.min(4096, match && match[1] !== 'unlimited' ? Number(match[1]) : 4096);
}

/** The registry an image reference names (Docker Hub when it names none). */
function registryOf(image: string): string {
  const first = image.split('/')[0]!;
  return image.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost') ? first : 'docker.io';
}

export function createContainerRuntime(settings: ContainerSettings) {
  const { engine, log } = settings;
  const label = `tessera.runtime=${createHash('sha256').update(settings.runtimeDir).digest('hex').slice(0, 16)}`;
  const running = new Set<string>();
  const nproc = processRlimit();

  function engineCall(args: string[], timeoutMs = 60_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      const child = spawn(engine.command[0]!, [...engine.command.slice(1), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (chunk: Buffer) => (stdout = (stdout + chunk.toString()).slice(-100_000)));
      child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-10_000)));
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      child.once('error', (error) => ((stderr += error.message), undefined));
      child.once('close', (code) => {
        clearTimeout(timer);
        resolve({ code, stdout, stderr });
      });
    });
  }

  /** How the entrypoint starts in the image (its python or node, through a usage bootstrap), and the bootstrap to mount. */
  function entrypoint(invocation: Invocation): { argv: string[]; bootstrap?: string } {
    const inside = path.posix.join('/component', path.relative(invocation.componentFolder, invocation.entrypoint));
    if (/\.py$/i.test(inside)) return { argv: ['python3', '-u', '/.tessera/usage.py', inside], bootstrap: `${pythonBootstrap(settings.runtimeDir)}:/.tessera/usage.py:ro` };
    if (/\.(m|c)?js$/i.test(inside)) return { argv: ['node', '--require', '/.tessera/usage.cjs', inside], bootstrap: `${nodeBootstrap(settings.runtimeDir)}:/.tessera/usage.cjs:ro` };
    return { argv: [inside] };
  }

  async function run(invocation: Invocation, image: string): Promise<TaskRunResult> {
    const { limits, folders } = invocation;
    const name = `tessera-${path.basename(folders.root)}-${randomUUID().slice(0, 8)}`;
    const scratch = path.join(settings.runtimeDir, name);
    mkdirSync(scratch, { mode: 0o700 });
    const usageFolder = path.join(scratch, 'usage');
    mkdirSync(usageFolder);
    const env: Record<string, string> = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', HOME: '/task/work', TMPDIR: '/tmp', PYTHONUNBUFFERED: '1', TESSERA_USAGE_FILE: '/.usage/usage' };
    for (const [variable, folder] of Object.entries(invocation.folderVariables)) env[variable] = `/task/${folder}`;
    if (folders.userCache) env.USER_CACHE_DIR = '/cache/user';
    if (folders.sharedCache) env.SHARED_CACHE_DIR = '/cache/shared';
    Object.assign(env, invocation.variables);
    // The environment and any registry credentials go through files only this worker reads, never its command line.
    const envFile = path.join(scratch, 'env');
    writeFileSync(envFile, Object.entries(env).map(([key, value]) => `${key}=${value.replace(/\n/g, ' ')}\n`).join(''), { mode: 0o600 });
    const credentials = invocation.registry ?? manifestRegistryCredentials(invocation.manifest);
    const authFile = path.join(scratch, 'auth.json');
    if (credentials) writeFileSync(authFile, JSON.stringify({ auths: { [registryOf(image)]: { auth: Buffer.from(`${credentials.username}:${credentials.token}`).toString('base64') } } }), { mode: 0o600 });
    handOverTaskFolders(folders, settings.user);
    if (process.getuid?.() === 0) chownSync(usageFolder, settings.user.uid, settings.user.gid);
    const joined = manifestWantsNetwork(invocation.manifest) ? await settings.publicNetwork(invocation) : undefined;
    const network = joined ? `ns:${joined.path}` : 'none';
    const command = entrypoint(invocation);
    const mounts = [
      `${folders.root}:/task:rw`,
      `${invocation.componentFolder}:/component:ro`,
      ...(command.bootstrap ? [command.bootstrap] : []),
      `${usageFolder}:/.usage:rw`,
      ...(folders.userCache ? [`${folders.userCache}:/cache/user:rw`] : []),
      ...(folders.sharedCache ? [`${folders.sharedCache}:/cache/shared:ro`] : []),
    ];
    const cgroup = settings.cgroups.available ? settings.cgroups.container(path.basename(folders.root)) : undefined;
    const args = [
      'run', '--rm', '--name', name, ...(cgroup ? ['--cgroup-parent', cgroup.parent] : []), '--label', label, '--pull=missing', ...(credentials ? ['--authfile', authFile] : []),
      '--network', network, '--user', `${settings.user.uid}:${settings.user.gid}`, '--cap-drop', 'all', '--security-opt', 'no-new-privileges',
      '--memory', `${limits.memoryBytes}b`, '--memory-swap', `${limits.memoryBytes}b`, '--pids-limit', String(limits.processes),
      '--ulimit', `nofile=${limits.openFiles}:${limits.openFiles}`, '--ulimit', `nproc=${nproc}:${nproc}`, '--ulimit', `fsize=${limits.fileBytes}:${limits.fileBytes}`, '--ulimit', 'core=0:0',
      '--tmpfs', `/tmp:rw,nosuid,nodev,size=${limits.memoryBytes},mode=1777`,
      ...mounts.flatMap((mount) => ['-v', mount]),
      '--workdir', '/task/work', '--env-file', envFile, '--entrypoint', JSON.stringify(command.argv), image,
    ];
    const started = process.hrtime.bigint();
    const stdout = new OutputTail(64 * 1024);
    const stderr = new OutputTail(64 * 1024);
    let timedOut = false;
    let aborted = false;
    let stopping: Promise<unknown> | undefined;
    running.add(name);
    try {
      const exit = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
        const child = spawn(engine.command[0]!, [...engine.command.slice(1), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
        // The container is removed (and everything in it killed), not just the engine's client.
        const stop = () => void (stopping ??= engineCall(['rm', '--force', '--time', '0', name]));
        const timer = invocation.timeoutMs ? setTimeout(() => ((timedOut = true), stop()), invocation.timeoutMs) : undefined;
        const onAbort = () => ((aborted = true), stop());
        if (invocation.signal?.aborted) onAbort();
        invocation.signal?.addEventListener('abort', onAbort, { once: true });
        child.stdout.on('data', (chunk: Buffer) => (stdout.push(chunk), invocation.onOutput?.('stdout', chunk)));
        child.stderr.on('data', (chunk: Buffer) => (stderr.push(chunk), invocation.onOutput?.('stderr', chunk)));
        child.once('error', (error) => reject(new TesseraError('FAILED_PRECONDITION', `could not start ${engine.version}: ${error.message}`)));
        child.once('close', (code, signal) => {
          clearTimeout(timer);
          invocation.signal?.removeEventListener('abort', onAbort);
          resolve({ code, signal });
        });
      });
      const wallSeconds = Number(process.hrtime.bigint() - started) / 1e9;
      const measured = readUsageFile(path.join(usageFolder, 'usage')) ?? { cpuSeconds: 0, peakMemoryBytes: 0 };
      // 125 is the engine's own failure (an image it cannot pull or start); 126 and 127 (the
      // entrypoint cannot be run) stay the task's, with the engine's words in its stderr.
      if (!timedOut && !aborted && exit.code === 125) {
        const said = stderr.text().trim().split('\n').slice(-5).join('\n');
        const pulling = /pull|not known|manifest unknown|unauthorized/i.test(said);
        throw new TesseraError('FAILED_PRECONDITION', `${engine.version} could not run the image ${quote(image)}${pulling ? ' (it is not on this worker and could not be pulled: load it there, or give registry credentials in the manifest, platform_config.username and token)' : ''}: ${said}`);
      }
      // podman does not always say a container was killed at its memory limit; its cgroup parent does.
      const memoryLimitHit = exit.code === 137 && !timedOut && !aborted && cgroup?.memoryLimitHit(limits.memoryBytes) === true;
      const killed = timedOut || aborted || memoryLimitHit;
      return {
        exitCode: killed ? null : exit.code,
        signal: killed ? 'SIGKILL' : null,
        timedOut,
        aborted,
        stdoutTail: stdout.text(),
        stderrTail: stderr.text(),
        wallMs: Math.round(wallSeconds * 1000),
        usage: { ...measured, wallSeconds },
        ...(memoryLimitHit ? { memoryLimitBytes: limits.memoryBytes } : {}),
      };
    } finally {
      joined?.release();
      running.delete(name);
      // --rm removed it when it ended by itself; a killed one is gone once its removal returns.
      await stopping;
      await cgroup?.remove();
      rmSync(scratch, { recursive: true, force: true });
    }
  }

  return {
    engine,
    run,
    /** Images in the engine's store, as "repository:tag". */
    async images(): Promise<string[]> {
      const listed = await engineCall(['images', '--format', '{{.Repository}}:{{.Tag}}']);
      return listed.code === 0 ? [...new Set(listed.stdout.split('\n').map((line) => line.trim()).filter((line) => line && !line.includes('<none>')))].sort() : [];
    },
    /** Containers a previous run of this worker left behind (it was killed) are removed. */
    async removeLeftovers(): Promise<void> {
      const listed = await engineCall(['ps', '--all', '--quiet', '--filter', `label=${label}`]);
      const ids = listed.stdout.split('\n').map((line) => line.trim()).filter(Boolean);
      if (ids.length > 0) {
        log.warn({ containers: ids.length }, 'removing containers left by an earlier run of this worker');
        await engineCall(['rm', '--force', '--time', '0', ...ids]);
      }
    },
    async close(): Promise<void> {
      await Promise.all([...running].map((name) => engineCall(['rm', '--force', '--time', '0', name])));
    },
  };
}

export type ContainerRuntime = ReturnType<typeof createContainerRuntime>;

import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { constants } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { TesseraError, quote } from '../domain/errors.js';
import type { Log } from '../domain/log.js';
import type { RunResult, RunSpec } from './runner.js';
import { OutputTail, killGroup } from './runner.js';

// The worker's side of launcher.py: one python process that forks every task process of a worker
// (bare) or of one sandbox (confined), so a python entrypoint starts without an interpreter's
// start-up. Each run's stdout and stderr come back over a Unix socket of the launcher's, each
// stream opened with the run's random token; exit status, CPU and peak memory come from the
// launcher's wait4. See launcher.py for the protocol.

/** launcher.py, shipped beside this module's source (read-only wherever Tessera is installed). */
export const LAUNCHER_SCRIPT = fileURLToPath(new URL('../../../src/runner/launcher.py', import.meta.url));

/** How a confined task's process is built inside its sandbox (see _enter_view in launcher.py). */
export interface Confinement {
  /** The task's folder, relative to the sandbox's /tasks; bound at /task. */
  task: string;
  uid: number;
  gid: number;
  /** Cgroup folders (as the sandbox sees them) the task's processes join. */
  cgroups: string[];
  /** Mounts of the sandbox the task must not see. */
  hide: string[];
  rlimits: Partial<Record<'NOFILE' | 'FSIZE' | 'NPROC' | 'DATA' | 'CORE', number>>;
  /** Size of the task's private /tmp and /dev/shm. */
  tmpBytes: number;
}

export interface LaunchSpec extends Omit<RunSpec, 'command' | 'args'> {
  /** A python script run in the forked process as `python -u script` would; or */
  script?: string;
  /** The script's component folder: its traceback names the app's files relative to it (app/main.py). */
  componentRoot?: string;
  /** a program executed in it. */
  argv?: string[];
  confine?: Confinement;
}

export interface Launcher {
  /** Runs one process: the same result as runProcess gives. */
  run(spec: LaunchSpec): Promise<RunResult>;
  /** Stops the launcher: bare, running processes go on until they end or are killed; confined, they end with it. */
  close(): void;
  /** Runs under way. */
  busy(): number;
  /** Starts the launcher if it is not running, and resolves with its process id once it is ready. */
  ready(): Promise<number>;
}

export interface LauncherOptions {
  /** What starts it: `python -u launcher.py <socket> bare`, or the same in its sandbox. */
  command: string;
  args: (socketFolder: string) => string[];
  env: Record<string, string>;
  /** A folder only this worker may write; each launcher's socket folder is made in it. */
  runtimeDir: string;
  /** The socket folder as the launcher sees it, when that is not its real path (a sandbox's /.io). */
  socketInside?: string;
  /** Confined: the launcher's pids are not the host's, so kills go through it, never by pid. */
  confined: boolean;
  /** Named in errors and logs ("the python fork server", "the sandbox of …"). */
  what: string;
  log: Log;
  /**
   * Runs once the launcher is ready and before any process is started on it (a sandbox's network
   * is attached then): `pid` is the process started, `ask` sends it a message and waits for the
   * answer with id 0.
   */
  prepare?: (pid: number, ask: (message: object) => Promise<Reply>) => Promise<void>;
  /** Called once the launcher has exited, whatever the reason. */
  onExit?: () => void;
}

/** The longest first line a task's output stream may send (the token and the stream's name). */
const MAX_HEADER_BYTES = 128;
/** A confined kill that the launcher did not carry out within this long ends the whole sandbox. */
const KILL_GRACE_MS = 5000;

const SIGNAL_NAMES = new Map(Object.entries(constants.signals).map(([name, number]) => [number, name as NodeJS.Signals]));

export interface Reply {
  id: number;
  pid?: number;
  ready?: boolean;
  routed?: boolean;
  error?: string;
  exit?: number | null;
  signal?: number | null;
  cpu?: number;
  maxrss?: number;
}

/** One process while it runs. */
interface Run {
  spec: LaunchSpec;
  startedAt: bigint;
  pid: number | undefined;
  stdout: OutputTail;
  stderr: OutputTail;
  /** Output streams not yet ended (both are connected before the fork). */
  streamsOpen: number;
  exited: Reply | undefined;
  timedOut: boolean;
  aborted: boolean;
  killSent: boolean;
  finish(result: RunResult | Error): void;
}

/**
 * A launcher, started at the first run and again after it exited; a run whose launcher exits under
 * it fails (it is retried as any failed attempt is), and bare, its process group is killed.
 */
export function createLauncher(options: LauncherOptions): Launcher {
  const { log } = options;
  const runs = new Map<number, Run>();
  const byToken = new Map<string, Run>();
  let nextId = 1;
  let launcher: { child: ChildProcess; listener: net.Server; socket: string; folder: string; ready: Promise<void> } | undefined;

  function start(): NonNullable<typeof launcher> {
    // A folder only this worker may enter holds the socket: no one else can connect to it, and
    // every stream must still name a running task's token.
    const folder = mkdtempSync(path.join(options.runtimeDir, 'io-'));
    const socket = path.join(folder, 'output.sock');
    const listener = net.createServer(attachStream);
    listener.listen(socket);
    listener.unref();
    const child = spawn(options.command, options.args(folder), { cwd: options.runtimeDir, env: options.env, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString('utf8')).slice(-4000)));
    let setupError: string | undefined;
    // Answers to the launcher's own messages (id 0): its readiness, then whatever `prepare` asks.
    const answers: ((reply: Reply) => void)[] = [];
    const nextAnswer = () => new Promise<Reply>((resolve) => answers.push(resolve));
    const ask = (message: object) => {
      const answered = nextAnswer();
      child.stdin!.write(`${JSON.stringify(message)}\n`);
      return answered.then((reply) => (reply.error === undefined ? reply : Promise.reject(new TesseraError('UNAVAILABLE', reply.error))));
    };
    let gone!: (error: Error) => void;
    const exited = new Promise<never>((_, reject) => (gone = reject));
    exited.catch(() => {});
    const ready = Promise.race([
      nextAnswer().then(async (reply) => {
        if (reply.error !== undefined) throw new TesseraError('UNAVAILABLE', reply.error);
        await options.prepare?.(child.pid!, ask);
      }),
      exited,
    ]);
    ready.catch(() => {});
    const started = { child, listener, socket: options.socketInside ? path.posix.join(options.socketInside, 'output.sock') : socket, folder, ready };
    createInterface({ input: child.stdout! }).on('line', (line) => {
      let reply: Reply;
      try {
        reply = JSON.parse(line) as Reply;
      } catch {
        log.warn({ line: line.slice(0, 200) }, `${options.what} wrote a line that is not its protocol`);
        return;
      }
      if (reply.id !== 0) answer(reply);
      else {
        if (reply.error !== undefined) setupError = reply.error;
        answers.shift()?.(reply);
      }
    });
    const lost = (why: string) => {
      if (launcher !== started) return;
      gone(new TesseraError('UNAVAILABLE', `${options.what} ${why}${setupError ? `: ${setupError}` : stderr.trim() ? `: ${stderr.trim().slice(-500)}` : ''}`));
      launcher = undefined;
      listener.close();
      rmSync(folder, { recursive: true, force: true });
      const said = setupError ?? stderr.trim().slice(-500);
      if (runs.size > 0 || why !== 'exited with code 0') log.warn({ stderr: stderr.trim().slice(-2000), setupError }, `${options.what} ${why}`);
      for (const run of runs.values()) {
        if (run.exited) continue;
        if (run.pid && !options.confined) killGroup(run.pid);
        run.finish(new TesseraError('UNAVAILABLE', `${options.what} running the process ${why}${said ? `: ${said}` : ''}`));
      }
      options.onExit?.();
    };
    child.once('error', (error) => lost(`could not start (${quote(options.command)}: ${error.message})`));
    child.once('exit', (code, signal) => lost(signal ? `was killed by ${signal}` : `exited with code ${code}`));
    child.stdin!.on('error', () => {
      // The launcher is gone; its exit event says so.
    });
    return started;
  }

  /** The launcher keeps this process alive only while a process runs on it. */
  function hold(busy: boolean): void {
    if (!launcher) return;
    const { child } = launcher;
    for (const handle of [child, child.stdin, child.stdout, child.stderr] as { ref?(): void; unref?(): void }[]) {
      if (busy) handle.ref?.();
      else handle.unref?.();
    }
  }

  function answer(reply: Reply): void {
    const run = runs.get(reply.id);
    if (!run) return;
    if (reply.error !== undefined) {
      run.finish(new TesseraError('UNAVAILABLE', reply.error));
      return;
    }
    if (reply.pid !== undefined) {
      run.pid = reply.pid;
      // Stopped before its process existed.
      if (run.timedOut || run.aborted) kill(reply.id, run);
      return;
    }
    run.exited = reply;
    settle(run);
  }

  /** Kills a run's process and everything it started: by its group bare, through the launcher confined. */
  function kill(id: number, run: Run): void {
    if (!options.confined) {
      if (run.pid) killGroup(run.pid);
      return;
    }
    // Before the launcher named the process, the kill waits for its name (see answer).
    if (!run.pid || run.killSent || !launcher) return;
    run.killSent = true;
    launcher.child.stdin!.write(`${JSON.stringify({ kill: id })}\n`);
    const running = launcher;
    // A launcher that does not answer a kill (stopped, stuck) takes its whole sandbox down with it.
    setTimeout(() => {
      if (runs.has(id) && launcher === running && running.child.pid) {
        log.warn({ id }, `${options.what} did not stop a process it was told to kill; ending the sandbox`);
        killGroup(running.child.pid);
      }
    }, KILL_GRACE_MS).unref();
  }

  /** Ends a run once its process is reaped and both its output streams have ended. */
  function settle(run: Run): void {
    const exited = run.exited;
    if (!exited || run.streamsOpen > 0) return;
    // Children the script left behind in its group go too, as with a spawned process (confined,
    // its namespace already took them).
    if (run.pid && !options.confined) killGroup(run.pid);
    const wallNs = process.hrtime.bigint() - run.startedAt;
    run.finish({
      exitCode: exited.exit ?? null,
      signal: exited.signal ? SIGNAL_NAMES.get(exited.signal) ?? null : null,
      timedOut: run.timedOut,
      aborted: run.aborted,
      stdoutTail: run.stdout.text(),
      stderrTail: run.stderr.text(),
      wallMs: Number(wallNs / 1_000_000n),
      usage: { cpuSeconds: exited.cpu ?? 0, peakMemoryBytes: (exited.maxrss ?? 0) * 1024, wallSeconds: Number(wallNs) / 1e9 },
    });
  }

  /** A connection from a forked process: its first line names the run and the stream. */
  function attachStream(stream: net.Socket): void {
    let header = Buffer.alloc(0);
    let deliver: ((chunk: Buffer) => void) | undefined;
    stream.on('error', () => stream.destroy());
    stream.on('data', (chunk: Buffer) => {
      if (deliver) {
        deliver(chunk);
        return;
      }
      header = Buffer.concat([header, chunk]);
      const end = header.indexOf(10);
      if (end < 0) {
        if (header.length > MAX_HEADER_BYTES) stream.destroy();
        return;
      }
      const [token, which] = header.subarray(0, end).toString('latin1').split(' ');
      const found = byToken.get(token ?? '');
      if (!found || (which !== 'stdout' && which !== 'stderr')) {
        stream.destroy();
        return;
      }
      const tail = which === 'stdout' ? found.stdout : found.stderr;
      deliver = (output) => {
        tail.push(output);
        found.spec.onOutput?.(which, output);
      };
      stream.once('close', () => {
        found.streamsOpen--;
        settle(found);
      });
      const rest = header.subarray(end + 1);
      if (rest.length > 0) deliver(rest);
    });
  }

  return {
    run(spec) {
      launcher ??= start();
      const running = launcher;
      const id = nextId++;
      const token = randomBytes(16).toString('hex');
      const limit = spec.outputLimit ?? 64 * 1024;
      return new Promise<RunResult>((resolve, reject) => {
        const stop = () => kill(id, run);
        const timer = spec.timeoutMs ? setTimeout(() => ((run.timedOut = true), stop()), spec.timeoutMs) : undefined;
        const onAbort = () => ((run.aborted = true), stop());
        const run: Run = {
          spec,
          startedAt: process.hrtime.bigint(),
          pid: undefined,
          stdout: new OutputTail(limit),
          stderr: new OutputTail(limit),
          streamsOpen: 2,
          exited: undefined,
          timedOut: false,
          aborted: false,
          killSent: false,
          finish(result) {
            if (!runs.delete(id)) return;
            byToken.delete(token);
            if (runs.size === 0) hold(false);
            clearTimeout(timer);
            spec.signal?.removeEventListener('abort', onAbort);
            if (result instanceof Error) reject(result);
            else resolve(result);
          },
        };
        runs.set(id, run);
        byToken.set(token, run);
        if (runs.size === 1) hold(true);
        if (spec.signal?.aborted) onAbort();
        spec.signal?.addEventListener('abort', onAbort, { once: true });
        const request = { id, token, socket: running.socket, cwd: spec.cwd, env: spec.env, ...(spec.argv ? { argv: spec.argv } : { script: spec.script, root: spec.componentRoot }), ...(spec.confine ? { confine: spec.confine } : {}) };
        // Written once the launcher is ready: the pipe keeps the order of requests either way.
        running.ready.then(
          () => {
            if (runs.has(id)) running.child.stdin!.write(`${JSON.stringify(request)}\n`);
          },
          (error: Error) => run.finish(error),
        );
      });
    },
    close() {
      const running = launcher;
      if (!running) return;
      // End of its input: the launcher exits, and the exit handler clears up.
      running.child.stdin!.end();
    },
    busy: () => runs.size,
    async ready() {
      launcher ??= start();
      const running = launcher;
      await running.ready;
      return running.child.pid!;
    },
  };
}

/** A bare launcher for python entrypoints (TESSERA_SANDBOX=off): the fork server of earlier releases. */
export function createForkServer(python: string, env: Record<string, string>, log: Log, runtimeDir: string): Launcher {
  return createLauncher({
    command: python,
    args: (socketFolder) => ['-u', LAUNCHER_SCRIPT, socketFolder, 'bare'],
    // No bytecode beside the component: its folder must stay as it was unpacked (component-cache.ts).
    env: { ...env, PYTHONUNBUFFERED: '1', PYTHONDONTWRITEBYTECODE: '1' },
    runtimeDir,
    confined: false,
    what: 'the python fork server',
    log,
  });
}

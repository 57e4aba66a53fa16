import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { constants } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { TesseraError, quote } from '../domain/errors.js';
import type { Log } from '../domain/log.js';
import { bootstrapFile, privateTempFolder } from './process-usage.js';
import type { RunResult, RunSpec } from './runner.js';
import { OutputTail, killGroup } from './runner.js';

// Python app processes forked from a warm interpreter. Starting python3 costs about 34 ms of CPU
// here (measured: 54 ms for a process that then burns 20 ms), paid again by every chunk of a job.
// A fork server pays it once per worker: one python process, started with the environment every
// task's process starts from, waits on its stdin; for each task it forks, and the child becomes
// that task's process: its own process group, the task's folder, environment and arguments, its
// stdout and stderr connected to the worker, and then the script run in a fresh __main__, exactly
// as the usage bootstrap runs it for a process started from scratch (see process-usage.ts).
//
// What differs from a fresh `python3 script.py`: the modules the server itself imported (os, sys,
// socket, select, json and their imports) are already loaded; the hash seed (PYTHONHASHSEED) is
// the server's, so it is the same for every task of that worker; stdout and stderr are Unix
// sockets rather than pipes. TESSERA_PYTHON_FORKSERVER=false starts every process from scratch.
//
// The protocol, one JSON line each way:
//   → {"id", "token", "socket", "cwd", "env", "script"}
//   ← {"id", "pid"} once forked, then {"id", "exit", "signal", "cpu", "maxrss"} once reaped;
//     or {"id", "error"} when the task's output could not be connected (nothing was started).
// The server connects the task's two output streams to the worker's socket before it forks (each
// opens with "<token> stdout|stderr\n"), so by the time the exit is reported both are known.

const FORKSERVER = `import gc, os, signal, socket, sys
from json import dumps, loads
from select import POLLIN, poll

def _connect(path, token, name):
    stream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        stream.connect(path)
        stream.sendall(("%s %s\\n" % (token, name)).encode())
    except BaseException:
        stream.close()
        raise
    return stream

def _gone():
    # The worker stopped or went away (its tasks' processes go on, as spawned ones would). The
    # folder of its socket goes: the worker may have ended before it could remove it.
    for remove, target in ((os.unlink, os.path.join(sys.argv[1], "output.sock")), (os.rmdir, sys.argv[1])):
        try:
            remove(target)
        except OSError:
            pass
    os._exit(0)

def _send(message):
    data = (dumps(message) + "\\n").encode()
    try:
        while data:
            data = data[os.write(1, data):]
    except BrokenPipeError:
        _gone()

def _added_at_start():
    # What this interpreter added to its own environment as it started (PEP 538 sets LC_CTYPE
    # when the locale is C): a fresh interpreter would add it for the task as well.
    try:
        with open("/proc/self/environ", "rb") as environ:
            given = {entry.split(b"=", 1)[0] for entry in environ.read().split(b"\\0") if entry}
    except OSError:
        return {}
    return {key: value for key, value in os.environ.items() if key.encode() not in given}

_ADDED = _added_at_start()

def _serve():
    """Forks a child per request; returns (request, streams) in the child, never in the server."""
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)
    poller = poll()
    poller.register(0, POLLIN)
    poller.register(wake_r, POLLIN)
    running = {}
    pending = b""
    while True:
        for fd, _ in poller.poll():
            if fd == wake_r:
                try:
                    while os.read(wake_r, 4096):
                        pass
                except BlockingIOError:
                    pass
                continue
            chunk = os.read(0, 1 << 16)
            if not chunk:
                _gone()
            pending += chunk
            while b"\\n" in pending:
                line, pending = pending.split(b"\\n", 1)
                request = loads(line)
                streams = []
                try:
                    for name in ("stdout", "stderr"):
                        streams.append(_connect(request["socket"], request["token"], name))
                except OSError as error:
                    for stream in streams:
                        stream.close()
                    _send({"id": request["id"], "error": "could not connect the output of the process: %s" % error})
                    continue
                # The server's objects move to a generation the child's collections never scan: they
                # would otherwise write to every page of it (copy-on-write), 5 ms per process here.
                gc.freeze()
                pid = os.fork()
                if pid == 0:
                    signal.set_wakeup_fd(-1)
                    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                    os.close(wake_r)
                    os.close(wake_w)
                    return request, streams
                for stream in streams:
                    stream.close()
                # Set from both sides, so a kill of the group right after this answer finds it.
                try:
                    os.setpgid(pid, pid)
                except OSError:
                    pass
                running[pid] = request["id"]
                _send({"id": request["id"], "pid": pid})
        while running:
            try:
                pid, status, usage = os.wait4(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            ident = running.pop(pid, None)
            if ident is not None:
                _send({
                    "id": ident,
                    "exit": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
                    "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
                    "cpu": usage.ru_utime + usage.ru_stime,
                    "maxrss": usage.ru_maxrss,
                })

_request, _streams = _serve()
try:
    os.setpgid(0, 0)
except OSError:
    pass
_null = os.open(os.devnull, os.O_RDONLY)
os.dup2(_null, 0)
os.close(_null)
os.dup2(_streams[0].fileno(), 1)
os.dup2(_streams[1].fileno(), 2)
for _stream in _streams:
    _stream.close()
os.closerange(3, 65536)
os.environ.clear()
os.environ.update(_request["env"])
for _key, _value in _ADDED.items():
    os.environ.setdefault(_key, _value)
os.chdir(_request["cwd"])
sys.argv = [_request["script"]]
sys.path[0] = os.path.dirname(os.path.abspath(sys.argv[0]))
del _request, _streams, _null, _stream, _serve, _connect, _send, _gone, _added_at_start, _ADDED
_main = type(sys)("__main__")
_main.__file__ = sys.argv[0]
_main.__builtins__ = __builtins__
sys.modules["__main__"] = _main
with open(sys.argv[0], "rb") as _script:
    _code = compile(_script.read(), sys.argv[0], "exec")
exec(_code, _main.__dict__)
`;

export function forkServerScript(): string {
  return bootstrapFile('forkserver.py', FORKSERVER);
}

export interface PythonRunSpec extends Omit<RunSpec, 'command' | 'args'> {
  /** The script to run as `python -u script` would. */
  script: string;
}

export interface ForkServer {
  /** Runs the script in a process forked from the server: the same result as runProcess gives. */
  run(spec: PythonRunSpec): Promise<RunResult>;
  /** Stops the server (running task processes go on until they end or are killed). */
  close(): void;
}

/** The longest first line a task's output stream may send (the token and the stream's name). */
const MAX_HEADER_BYTES = 128;

const SIGNAL_NAMES = new Map(Object.entries(constants.signals).map(([name, number]) => [number, name as NodeJS.Signals]));

interface ServerReply {
  id: number;
  pid?: number;
  error?: string;
  exit?: number | null;
  signal?: number | null;
  cpu?: number;
  maxrss?: number;
}

/** One task's process while it runs. */
interface Run {
  spec: PythonRunSpec;
  startedAt: bigint;
  pid: number | undefined;
  stdout: OutputTail;
  stderr: OutputTail;
  /** Output streams not yet ended (both are connected before the fork). */
  streamsOpen: number;
  exited: ServerReply | undefined;
  timedOut: boolean;
  aborted: boolean;
  finish(result: RunResult | Error): void;
}

/**
 * A fork server for `python` (a path), whose processes start from `env`. It is started at the
 * first run and again after it exited; a run whose server exits under it fails (it is retried as
 * any failed attempt is), and its process group is killed.
 */
export function createForkServer(python: string, env: Record<string, string>, log: Log): ForkServer {
  const runs = new Map<number, Run>();
  const byToken = new Map<string, Run>();
  let nextId = 1;
  let server: { child: ChildProcess; listener: net.Server; socket: string; folder: string } | undefined;

  function start(): NonNullable<typeof server> {
    // A folder only this user may enter holds the socket: no one else can connect to it, and
    // every stream must still name a running task's token.
    const folder = mkdtempSync(path.join(privateTempFolder(), 'forkserver-'));
    const socket = path.join(folder, 'output.sock');
    const listener = net.createServer(attachStream);
    listener.listen(socket);
    listener.unref();
    // Its folder is its home and temporary folder, as a task's work folder is for a task's process.
    const child = spawn(python, ['-u', forkServerScript(), folder], { cwd: folder, env: { ...env, HOME: folder, TMPDIR: folder, PYTHONUNBUFFERED: '1' }, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    const started = { child, listener, socket, folder };
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString('utf8')).slice(-4000)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      let reply: ServerReply;
      try {
        reply = JSON.parse(line) as ServerReply;
      } catch {
        log.warn({ line: line.slice(0, 200) }, 'the python fork server wrote a line that is not its protocol');
        return;
      }
      answer(reply);
    });
    const lost = (why: string) => {
      if (server !== started) return;
      server = undefined;
      listener.close();
      rmSync(folder, { recursive: true, force: true });
      if (runs.size > 0 || why !== 'exited with code 0') log.warn({ python, stderr: stderr.trim().slice(-2000) }, `the python fork server ${why}`);
      for (const run of runs.values()) {
        if (run.exited) continue;
        if (run.pid) killGroup(run.pid);
        run.finish(new TesseraError('UNAVAILABLE', `the python fork server running the process ${why}${stderr.trim() ? `: ${stderr.trim().slice(-500)}` : ''}`));
      }
    };
    child.once('error', (error) => lost(`could not start (${quote(python)}: ${error.message})`));
    child.once('exit', (code, signal) => lost(signal ? `was killed by ${signal}` : `exited with code ${code}`));
    child.stdin!.on('error', () => {
      // The server is gone; its exit event says so.
    });
    return started;
  }

  /** The server keeps this process alive only while a task's process runs on it. */
  function hold(busy: boolean): void {
    if (!server) return;
    const { child } = server;
    for (const handle of [child, child.stdin, child.stdout, child.stderr] as { ref?(): void; unref?(): void }[]) {
      if (busy) handle.ref?.();
      else handle.unref?.();
    }
  }

  function answer(reply: ServerReply): void {
    const run = runs.get(reply.id);
    if (!run) return;
    if (reply.error !== undefined) {
      run.finish(new TesseraError('UNAVAILABLE', reply.error));
      return;
    }
    if (reply.pid !== undefined) {
      run.pid = reply.pid;
      // Stopped before its process existed.
      if (run.timedOut || run.aborted) killGroup(run.pid);
      return;
    }
    run.exited = reply;
    settle(run);
  }

  /** Ends a run once its process is reaped and both its output streams have ended. */
  function settle(run: Run): void {
    const exited = run.exited;
    if (!exited || run.streamsOpen > 0) return;
    // Children the script left behind in its group go too, as with a spawned process.
    if (run.pid) killGroup(run.pid);
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
      server ??= start();
      const running = server;
      const id = nextId++;
      const token = randomBytes(16).toString('hex');
      const limit = spec.outputLimit ?? 64 * 1024;
      return new Promise<RunResult>((resolve, reject) => {
        const stop = () => {
          if (run.pid) killGroup(run.pid);
        };
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
        running.child.stdin!.write(`${JSON.stringify({ id, token, socket: running.socket, cwd: spec.cwd, env: spec.env, script: spec.script })}\n`);
      });
    },
    close() {
      const running = server;
      if (!running) return;
      // End of its input: the server exits, and the exit handler clears up.
      running.child.stdin!.end();
    },
  };
}

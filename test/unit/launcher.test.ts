import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { createForkServer } from '../../src/runner/launcher.js';
import { pythonBootstrap } from '../../src/runner/process-usage.js';
import { resolvePython, runProcess } from '../../src/runner/runner.js';
import { createLogger } from '../../src/cli/logger.js';
import { loadConfig } from '../../src/config/config.js';
import { alive } from '../helpers/tessera.js';

// Python scripts run in processes forked from a warm interpreter (the bare launcher, as with
// TESSERA_SANDBOX=off): real python3 processes, compared with the same script started from scratch
// through the usage bootstrap. The confined launcher is tested through the sandbox (sandbox.test.ts).

const PATH = process.env.PATH ?? '';
const python = resolvePython('python3', { PATH });
const log = createLogger('silent');
let scratch: string;
/** The worker's runtime folder (0700): the launcher's socket folders and the bootstraps. */
let runtimeDir: string;

before(() => {
  scratch = mkdtempSync(path.join(tmpdir(), 'forkserver-'));
  runtimeDir = mkdtempSync(path.join(tmpdir(), 'forkserver-runtime-'));
});

after(() => {
  rmSync(scratch, { recursive: true, force: true });
  rmSync(runtimeDir, { recursive: true, force: true });
});

function script(name: string, source: string): string {
  const file = path.join(scratch, name);
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, source);
  return file;
}

function folder(name: string): string {
  const dir = path.join(scratch, name);
  mkdirSync(dir, { recursive: true });
  return dir;
}

async function waitUntil(what: string, check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

// What a script can see of how it was started.
const PROBE = `import json, os, sys
path0 = sys.path[0]
import sibling
print(json.dumps({
    "name": __name__,
    "file": __file__,
    "argv": sys.argv,
    "path0": path0,
    "cwd": os.getcwd(),
    "env": dict(os.environ),
    "stdin": sys.stdin.read(),
    "own_group": os.getpgid(0) == os.getpid(),
    "sibling": sibling.VALUE,
}))
print("to stderr", file=sys.stderr)
sys.exit(3)
`;

test('a forked process sees what a process started from scratch sees', async () => {
  const probe = script('probe/main.py', PROBE);
  script('probe/sibling.py', 'VALUE = 42\n');
  const server = createForkServer(python, { PATH }, log, runtimeDir);
  try {
    const env = { PATH, HOME: folder('home'), ONLY: 'this', APP_PARAMS: '{"a": 1}' };
    const warm = await server.run({ script: probe, cwd: folder('warm'), env });
    const cold = await runProcess({ command: python, args: ['-u', pythonBootstrap(runtimeDir), probe], cwd: folder('cold'), env, usageFile: path.join(runtimeDir, 'usage-probe') });
    for (const result of [warm, cold]) {
      assert.equal(result.exitCode, 3, result.stderrTail);
      assert.equal(result.signal, null);
      assert.equal(result.stderrTail, 'to stderr\n');
    }
    const [seenWarm, seenCold] = [JSON.parse(warm.stdoutTail), JSON.parse(cold.stdoutTail)];
    assert.equal(seenWarm.cwd, path.join(scratch, 'warm'));
    seenWarm.cwd = seenCold.cwd;
    assert.deepEqual(seenWarm, seenCold);
    // The environment given, plus only what python adds to its own as it starts (PEP 538's
    // LC_CTYPE under the C locale), as the process started from scratch shows.
    for (const [key, value] of Object.entries(env)) assert.equal(seenWarm.env[key], value);
    for (const key of Object.keys(seenWarm.env)) assert.ok(key in env || key === 'LC_CTYPE', `${key} came from the worker or the server`);
    assert.equal(seenWarm.name, '__main__');
    assert.equal(seenWarm.path0, path.dirname(probe));
    assert.equal(seenWarm.sibling, 42);
    assert.deepEqual(seenWarm.argv, [probe]);
    assert.equal(seenWarm.own_group, true);
    assert.equal(seenWarm.stdin, '');
  } finally {
    server.close();
  }
});

test('exit codes, tracebacks, usage and what a normal interpreter exit does', async () => {
  const server = createForkServer(python, { PATH }, log, runtimeDir);
  try {
    const failing = await server.run({ script: script('fail.py', 'def f():\n    raise ValueError("bad chunk 7")\nf()\n'), cwd: scratch, env: { PATH } });
    assert.equal(failing.exitCode, 1);
    assert.match(failing.stderrTail, /Traceback[\s\S]*fail\.py", line 3[\s\S]*ValueError: bad chunk 7\n$/);

    // 60 MB held and 300 ms of CPU burnt are measured (the process's own, from its reaping).
    const heavy = await server.run({ script: script('heavy.py', 'import time\nheld = bytearray(60 * 1024 * 1024)\nend = time.process_time() + 0.3\nwhile time.process_time() < end:\n    pass\n'), cwd: scratch, env: { PATH } });
    assert.equal(heavy.exitCode, 0, heavy.stderrTail);
    assert.ok(heavy.usage.cpuSeconds >= 0.29 && heavy.usage.cpuSeconds < 2, `cpu ${heavy.usage.cpuSeconds}`);
    assert.ok(heavy.usage.peakMemoryBytes >= 60 * 1024 * 1024, `peak ${heavy.usage.peakMemoryBytes}`);
    assert.ok(heavy.usage.wallSeconds >= heavy.usage.cpuSeconds * 0.9, `wall ${heavy.usage.wallSeconds}`);

    // At exit the interpreter finishes as usual: non-daemon threads are waited for, atexit
    // handlers run, and a file never closed is flushed.
    const out = folder('exit');
    const exiting = await server.run({
      script: script('exit.py', [
        'import atexit, threading, time',
        'log = open("unclosed.txt", "w")',
        'log.write("flushed at exit")',
        'def late():',
        '    time.sleep(0.3)',
        '    open("thread.txt", "w").write("thread finished")',
        'threading.Thread(target=late).start()',
        'atexit.register(lambda: open("atexit.txt", "w").write("atexit ran"))',
        'print("bye", flush=True)',
        '',
      ].join('\n')),
      cwd: out,
      env: { PATH },
    });
    assert.equal(exiting.exitCode, 0, exiting.stderrTail);
    assert.equal(exiting.stdoutTail, 'bye\n');
    assert.equal(readFileSync(path.join(out, 'unclosed.txt'), 'utf8'), 'flushed at exit');
    assert.equal(readFileSync(path.join(out, 'thread.txt'), 'utf8'), 'thread finished');
    assert.equal(readFileSync(path.join(out, 'atexit.txt'), 'utf8'), 'atexit ran');

    const killedSelf = await server.run({ script: script('self-kill.py', 'import os, signal\nos.kill(os.getpid(), signal.SIGTERM)\n'), cwd: scratch, env: { PATH } });
    assert.equal(killedSelf.exitCode, null);
    assert.equal(killedSelf.signal, 'SIGTERM');

    const missing = await server.run({ script: path.join(scratch, 'no-such.py'), cwd: scratch, env: { PATH } });
    assert.notEqual(missing.exitCode, 0);
    assert.match(missing.stderrTail, /No such file or directory/);
  } finally {
    server.close();
  }
});

test('a timeout or an abort kills the process and everything it started', async () => {
  const server = createForkServer(python, { PATH }, log, runtimeDir);
  const spawner = script('spawner.py', 'import subprocess, sys\nchild = subprocess.Popen(["sleep", "60"])\nprint(child.pid, flush=True)\nchild.wait()\n');
  try {
    const timedOut = await server.run({ script: spawner, cwd: scratch, env: { PATH }, timeoutMs: 700 });
    assert.equal(timedOut.timedOut, true);
    assert.equal(timedOut.signal, 'SIGKILL');
    const grandchild = Number(timedOut.stdoutTail.trim());
    assert.ok(grandchild > 0, timedOut.stdoutTail);
    await waitUntil('the grandchild to be killed with its group', () => !alive(grandchild));

    // Aborted while running, and aborted before the process even existed.
    const controller = new AbortController();
    const running = server.run({ script: spawner, cwd: scratch, env: { PATH }, signal: controller.signal, onOutput: () => controller.abort() });
    const aborted = await running;
    assert.equal(aborted.aborted, true);
    await waitUntil('the aborted run\'s grandchild to be killed', () => !alive(Number(aborted.stdoutTail.trim())));
    const early = new AbortController();
    early.abort();
    const never = await server.run({ script: spawner, cwd: scratch, env: { PATH }, signal: early.signal });
    assert.equal(never.aborted, true);
    assert.equal(never.signal, 'SIGKILL');
  } finally {
    server.close();
  }
});

test('many processes at once keep their output apart', async () => {
  const server = createForkServer(python, { PATH }, log, runtimeDir);
  const talker = script('talker.py', 'import os, sys\nfor i in range(2000):\n    print(os.environ["WHO"], i)\n    print(os.environ["WHO"], "err", i, file=sys.stderr)\n');
  try {
    const results = await Promise.all(Array.from({ length: 12 }, (_, who) => server.run({ script: talker, cwd: scratch, env: { PATH, WHO: `w${who}` }, outputLimit: 1024 * 1024 })));
    for (const [who, result] of results.entries()) {
      assert.equal(result.exitCode, 0, result.stderrTail);
      const lines = result.stdoutTail.trimEnd().split('\n');
      assert.equal(lines.length, 2000);
      assert.deepEqual(lines, Array.from({ length: 2000 }, (_, i) => `w${who} ${i}`));
      assert.equal(result.stderrTail.trimEnd().split('\n').at(-1), `w${who} err 1999`);
    }
  } finally {
    server.close();
  }
});

test('a fork server killed under a running process fails the run, kills it, and is started again', async () => {
  const server = createForkServer(python, { PATH }, log, runtimeDir);
  const sleeper = script('sleeper.py', 'import os, time\nprint(os.getpid(), os.getppid(), flush=True)\ntime.sleep(60)\n');
  try {
    let said = '';
    const run = server.run({ script: sleeper, cwd: scratch, env: { PATH }, onOutput: (_stream, chunk) => (said += chunk.toString()) });
    await waitUntil('the process to start', () => said.includes('\n'));
    const [pid, serverPid] = said.trim().split(' ').map(Number) as [number, number];
    process.kill(serverPid, 'SIGKILL');
    await assert.rejects(run, /python fork server running the process was killed by SIGKILL/);
    await waitUntil('the orphaned process to be killed', () => !alive(pid));
    const again = await server.run({ script: script('hello.py', 'print("hello again")\n'), cwd: scratch, env: { PATH } });
    assert.equal(again.stdoutTail, 'hello again\n');
  } finally {
    server.close();
  }
});

test('a worker that exits at once after stopping, or is killed mid-task, leaves no socket folder behind', async () => {
  // The worker process ends before it could see the launcher exit: the launcher clears its folder.
  const module = new URL('../../src/runner/launcher.js', import.meta.url).href;
  const nap = script('nap.py', 'import os, time\nprint("started", flush=True)\ntime.sleep(float(os.environ["NAP"]))\n');
  const worker = (runtime: string, ending: string) => [
    `const { createForkServer } = await import(${JSON.stringify(module)});`,
    `const server = createForkServer(${JSON.stringify(python)}, { PATH: process.env.PATH }, { warn() {}, info() {}, error() {}, debug() {} }, ${JSON.stringify(runtime)});`,
    `const run = server.run({ script: ${JSON.stringify(nap)}, cwd: ${JSON.stringify(scratch)}, env: { PATH: process.env.PATH, NAP: process.env.NAP }, onOutput: (stream, chunk) => process.stdout.write(chunk) });`,
    ending,
  ].join('\n');
  const stoppedRuntime = folder('runtime-stopped');
  const stopped = spawnSync(process.execPath, ['--input-type=module', '-e', worker(stoppedRuntime, 'await run; server.close(); process.exit(0);')], { encoding: 'utf8', env: { ...process.env, NAP: '0' } });
  assert.equal(stopped.status, 0, stopped.stderr);
  assert.match(stopped.stdout, /started/);
  // Killed while its task runs: the task ends on its own later, the launcher exits at once.
  const killedRuntime = folder('runtime-killed');
  const killed = spawnSync(process.execPath, ['--input-type=module', '-e', worker(killedRuntime, 'await new Promise((resolve) => setTimeout(resolve, 300)); process.kill(process.pid, "SIGKILL");')], { encoding: 'utf8', env: { ...process.env, NAP: '1' } });
  assert.equal(killed.signal, 'SIGKILL', killed.stderr);
  assert.match(killed.stdout, /started/);
  for (const runtime of [stoppedRuntime, killedRuntime]) {
    await waitUntil(`the socket folder in ${runtime} to be removed`, () => readdirSync(runtime).length === 0);
  }
});

test('the bootstraps live in the worker\'s own runtime folder; modules planted in the temporary folder or the task\'s folder are never imported', async () => {
  const runner = new URL('../../src/runner/runner.js', import.meta.url).href;
  const usage = new URL('../../src/runner/process-usage.js', import.meta.url).href;
  const launcher = new URL('../../src/runner/launcher.js', import.meta.url).href;
  // What another user of the machine could leave in the shared temporary folder, or a task in its work folder.
  const planted = folder('planted');
  for (const module of ['socket', 'signal', 'json', 'select', 'gc', 'resource', 'ctypes', 'atexit', 'io', 'time']) {
    writeFileSync(path.join(planted, `${module}.py`), `open(${JSON.stringify(path.join(planted, `${module}.imported`))}, "w").write("planted")\n`);
  }
  const app = script('planted-app/app/main.py', 'import json, signal, socket\nprint("ran")\n');
  const runtime = folder('runtime-private');
  chmodSync(runtime, 0o700);
  const program = [
    `const { pythonBootstrap } = await import(${JSON.stringify(usage)});`,
    `const { runProcess, resolvePython } = await import(${JSON.stringify(runner)});`,
    `const { createForkServer } = await import(${JSON.stringify(launcher)});`,
    `const python = resolvePython('python3', { PATH: process.env.PATH });`,
    `const env = { PATH: process.env.PATH };`,
    `const server = createForkServer(python, env, { warn() {}, info() {}, error() {}, debug() {} }, ${JSON.stringify(runtime)});`,
    `const warm = await server.run({ script: ${JSON.stringify(app)}, cwd: ${JSON.stringify(planted)}, env });`,
    `const cold = await runProcess({ command: python, args: ['-u', pythonBootstrap(${JSON.stringify(runtime)}), ${JSON.stringify(app)}], cwd: ${JSON.stringify(planted)}, env });`,
    'server.close();',
    `console.log(JSON.stringify({ bootstrap: pythonBootstrap(${JSON.stringify(runtime)}), warm: warm.stdoutTail + warm.stderrTail, cold: cold.stdoutTail + cold.stderrTail }));`,
  ].join('\n');
  const child = spawnSync(process.execPath, ['--input-type=module', '-e', program], { encoding: 'utf8', cwd: planted, env: { PATH, TMPDIR: planted } });
  assert.equal(child.status, 0, child.stderr);
  const seen = JSON.parse(child.stdout) as { bootstrap: string; warm: string; cold: string };
  assert.equal(path.dirname(seen.bootstrap), runtime);
  assert.equal(seen.warm, 'ran\n');
  assert.equal(seen.cold, 'ran\n');
  assert.deepEqual(readdirSync(planted).filter((name) => name.endsWith('.imported')), [], 'a planted module was imported');
  assert.equal(statSync(runtime).mode & 0o077, 0);
});

test('an interpreter that cannot start is a clear error', async () => {
  const server = createForkServer(path.join(scratch, 'no-python'), { PATH }, log, runtimeDir);
  try {
    await assert.rejects(server.run({ script: script('x.py', 'pass\n'), cwd: scratch, env: { PATH } }), /python fork server .*could not start .*no-python/);
  } finally {
    server.close();
  }
  // On by default; the variable turns it off for a worker, and a wrong value says what is expected.
  assert.equal(loadConfig({}, {}).pythonForkServer, true);
  assert.equal(loadConfig({}, { TESSERA_PYTHON_FORKSERVER: 'false' }).pythonForkServer, false);
  assert.throws(() => loadConfig({}, { TESSERA_PYTHON_FORKSERVER: 'sometimes' }), /TESSERA_PYTHON_FORKSERVER/);
});

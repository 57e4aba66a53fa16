import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

// What a child process used: CPU seconds (user + system, including the children it waited for)
// and peak resident memory. Measured without an extra process per task:
//   - python entrypoints start through a tiny bootstrap that runs the script in the same
//     interpreter (in a fresh __main__, as `python script.py` would) and writes its CPU and
//     peak memory at exit;
//   - node entrypoints get the same from a --require preload (process.resourceUsage());
//   - anything else, and a process killed before it could report, is sampled from /proc.

export interface ProcessUsage {
  cpuSeconds: number;
  peakMemoryBytes: number;
}

export const USAGE_FILE_VARIABLE = 'TESSERA_USAGE_FILE';

// The bootstrap reads and removes the variable before the app runs, so the app sees the same
// environment as without it; it reports at exit, also after sys.exit() or an uncaught exception.
// It imports nothing python has not loaded at start-up (runpy, and the pkgutil that its run_path
// imports, cost about 1.7 ms of CPU per process here): the script is compiled and run in a fresh
// __main__ module as \`python script.py\` would, its own CPU is read from the process clock, and
// \`resource\` is imported only when the script ran processes of its own, for their CPU and peak.
const PYTHON_BOOTSTRAP = `import atexit, io, os, sys, time
_usage_file = os.environ.pop("${USAGE_FILE_VARIABLE}", "")
def _tessera_report():
    if not _usage_file:
        return
    cpu = time.process_time()
    peak = _peak_kib()
    waited = os.times()
    if waited.children_user + waited.children_system > 0:
        import resource
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu += children.ru_utime + children.ru_stime
        peak = max(peak, children.ru_maxrss)
    with open(_usage_file, "w") as report:
        report.write("%f %d" % (cpu, peak))
def _peak_kib():
    # VmHWM is this program's own peak. ru_maxrss is not: Linux carries the parent's resident
    # size over fork and exec, so a child of a large server would report the server's size.
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
atexit.register(_tessera_report)
sys.argv = sys.argv[1:]
sys.path[0] = os.path.dirname(os.path.abspath(sys.argv[0]))
_main = type(sys)("__main__")
_main.__file__ = sys.argv[0]
_main.__builtins__ = __builtins__
sys.modules["__main__"] = _main
with io.open_code(sys.argv[0]) as _script:
    _code = compile(_script.read(), sys.argv[0], "exec")
exec(_code, _main.__dict__)
`;

const NODE_BOOTSTRAP = `'use strict';
const usageFile = process.env.${USAGE_FILE_VARIABLE};
delete process.env.${USAGE_FILE_VARIABLE};
if (usageFile) {
  process.on('exit', () => {
    const fs = require('node:fs');
    const usage = process.resourceUsage();
    // VmHWM, not maxRSS: maxRSS carries over the parent's size through fork and exec.
    let peak = usage.maxRSS;
    try {
      const match = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
      if (match) peak = Number(match[1]);
    } catch {}
    fs.writeFileSync(usageFile, ((usage.userCPUTime + usage.systemCPUTime) / 1e6).toFixed(6) + ' ' + peak);
  });
}
`;

let privateFolder: string | undefined;

/**
 * A folder of this user's in the temporary folder that no one else may write, for the bootstraps
 * and the usage reports. The temporary folder is everyone's: a bootstrap there, under a name known
 * in advance (its content's hash), could be planted by another user and then run by every task,
 * and a python script there puts that folder first on its module path (a planted socket.py would
 * be imported by the fork server). Made once with mode 0700 and checked: a folder of that name
 * that is not this user's alone is never used, and this process makes a private one of its own.
 */
export function privateTempFolder(): string {
  if (privateFolder) return privateFolder;
  const uid = process.getuid?.();
  const shared = path.join(tmpdir(), `tessera-${uid ?? 'user'}`);
  try {
    mkdirSync(shared, { mode: 0o700 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  const found = lstatSync(shared);
  const ours = found.isDirectory() && (uid === undefined || found.uid === uid) && (found.mode & 0o077) === 0;
  privateFolder = ours ? shared : mkdtempSync(path.join(tmpdir(), 'tessera-'));
  return privateFolder;
}

/** Each bootstrap's path: named by the hash of its content, so versions never mix. */
const PATHS = new Map<string, string>();

function bootstrapPath(name: string, source: string): string {
  let file = PATHS.get(name);
  if (!file) PATHS.set(name, (file = path.join(privateTempFolder(), `${createHash('sha256').update(source).digest('hex').slice(0, 16)}-${name}`)));
  return file;
}

/** Writes a bootstrap (or the python fork server) if it is missing and returns its path. */
export function bootstrapFile(name: string, source: string): string {
  const file = bootstrapPath(name, source);
  if (existsSync(file)) return file;
  try {
    writeAtomically(file, source);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    // A temporary-folder cleaner removed the folder: made again, once.
    privateFolder = undefined;
    PATHS.clear();
    writeAtomically(bootstrapPath(name, source), source);
  }
  return bootstrapPath(name, source);
}

function writeAtomically(file: string, source: string): void {
  const temporary = `${file}.${process.pid}.tmp`;
  writeFileSync(temporary, source, { mode: 0o644 });
  // Rename is atomic: a concurrent first use sees the file absent or whole, never in part.
  renameSync(temporary, file);
}

// Checked at every use (a stat): a temp-folder cleaner may have removed the file meanwhile.
export function pythonBootstrap(): string {
  return bootstrapFile('usage.py', PYTHON_BOOTSTRAP);
}

export function nodeBootstrap(): string {
  return bootstrapFile('usage.cjs', NODE_BOOTSTRAP);
}

/** Whether a command's argument is one of the bootstraps (no file system call: asked for every process). */
export function isUsageBootstrap(arg: string): boolean {
  return arg === bootstrapPath('usage.py', PYTHON_BOOTSTRAP) || arg === bootstrapPath('usage.cjs', NODE_BOOTSTRAP);
}

/**
 * The report a bootstrap wrote ("cpuSeconds maxRssKiB"), or null when there is none. Read and
 * removed with synchronous calls: a file of a few bytes, read between one process and the next
 * (through node's thread pool, opening, reading, closing and removing it were four round trips).
 */
export function readUsageFile(file: string): ProcessUsage | null {
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
    unlinkSync(file);
  } catch {
    // Not written (the process was killed first) or already gone.
  }
  const match = /^([\d.]+) (\d+)$/.exec(text.trim());
  return match ? { cpuSeconds: Number(match[1]), peakMemoryBytes: Number(match[2]) * 1024 } : null;
}

/** USER_HZ: the unit of /proc/<pid>/stat times, 100 on every Linux architecture Node runs on. */
const TICKS_PER_SECOND = 100;

/** Samples /proc/<pid> now and then; `last()` is the latest reading (CPU and the peak so far). */
export function sampleProcess(pid: number, everyMs = 100) {
  let usage: ProcessUsage = { cpuSeconds: 0, peakMemoryBytes: 0 };
  const read = () => {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      // Fields after the command name (which may hold spaces) start after the last ")".
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const ticks = Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]);
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      const hwm = /VmHWM:\s+(\d+) kB/.exec(status);
      usage = { cpuSeconds: Math.max(usage.cpuSeconds, ticks / TICKS_PER_SECOND), peakMemoryBytes: Math.max(usage.peakMemoryBytes, hwm ? Number(hwm[1]) * 1024 : 0) };
    } catch {
      // Gone already, or no /proc (not Linux): keep the last reading.
    }
  };
  // No reading at the start: a process just started has used nothing yet, and the reading was
  // two /proc reads before every process.
  const timer = setInterval(read, everyMs);
  timer.unref();
  return {
    last: () => usage,
    stop: () => clearInterval(timer),
  };
}

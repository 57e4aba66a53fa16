import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
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

/** Each bootstrap's path in a folder: named by the hash of its content, so versions never mix. */
const PATHS = new Map<string, string>();

/**
 * Writes a bootstrap into `folder` (the worker's runtime folder, which only it may write: a
 * bootstrap in a folder others can write could be replaced, and python puts a script's folder first
 * on its module path) if it is missing, and returns its path.
 */
export function bootstrapFile(folder: string, name: string, source: string): string {
  const key = `${folder}\0${name}`;
  let file = PATHS.get(key);
  if (!file) PATHS.set(key, (file = path.join(folder, `${createHash('sha256').update(source).digest('hex').slice(0, 16)}-${name}`)));
  if (existsSync(file)) return file;
  mkdirSync(folder, { recursive: true, mode: 0o700 });
  const temporary = `${file}.${process.pid}.tmp`;
  writeFileSync(temporary, source, { mode: 0o644 });
  // Rename is atomic: a concurrent first use sees the file absent or whole, never in part.
  renameSync(temporary, file);
  return file;
}

// Checked at every use (a stat): a cleaner may have removed the file meanwhile.
export function pythonBootstrap(folder: string): string {
  return bootstrapFile(folder, 'usage.py', PYTHON_BOOTSTRAP);
}

export function nodeBootstrap(folder: string): string {
  return bootstrapFile(folder, 'usage.cjs', NODE_BOOTSTRAP);
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

import type { Manifest } from '../domain/manifest.js';
import type { RunResult, RunSpec } from './runner.js';

// The runtime layer between a worker and the processes of its tasks. Every partitioner, app and
// assembler process goes through one: the host sandbox (namespaces, an unprivileged user, a private
// view of the machine, kernel-enforced limits, no network), a container runtime (podman or docker
// running the component's image with the same folders, limits and kill semantics), or, only when
// an operator turns confinement off for a single-user laptop, a plain child process.

/** What the kernel holds one task to. */
export interface TaskLimits {
  memoryBytes: number;
  processes: number;
  openFiles: number;
  /** The largest file a task may write (RLIMIT_FSIZE). */
  fileBytes: number;
}

/** Where a task's folders are, on the host; a runtime shows them to the task at paths of its own. */
export interface TaskFolders {
  /** The task's scratch folder: its stage folders (source, chunks, task, results, output) and work/, its cwd. */
  root: string;
  /** The account's cache (USER_CACHE_DIR) and the operator's (SHARED_CACHE_DIR): app tasks only. */
  userCache?: string | undefined;
  sharedCache?: string | undefined;
}

/** One process of a task. */
export interface Invocation {
  accountId: string;
  manifest: Manifest;
  /** The component's unpacked folder (host) and its archive's hash, which names it. */
  componentFolder: string;
  componentSha256: string;
  /** The entrypoint's real path inside componentFolder (checked to be inside its app/ folder). */
  entrypoint: string;
  /** Credentials for the component's private image, opened by the server from an account secret. */
  registry?: { username: string; token: string } | undefined;
  folders: TaskFolders;
  /** Environment variables naming stage folders, by their name under the task's folder: { TASK_DIR: 'task' }. */
  folderVariables: Record<string, string>;
  /** The rest of the stage's environment (params, chunk number). */
  variables: Record<string, string>;
  limits: TaskLimits;
  timeoutMs?: number | undefined;
  signal?: AbortSignal | undefined;
  onOutput?: RunSpec['onOutput'];
}

export interface TaskRunResult extends RunResult {
  /** Set when the kernel stopped the task at its memory limit (this many bytes). */
  memoryLimitBytes?: number;
}

/** What a worker's runtimes are, for its start line, the server's worker list and the dashboard. */
export interface RuntimeDescription {
  /** "namespaces (uid 65534)", or "off" when an operator turned confinement off. */
  sandbox: string;
  /** "cgroup v1 (memory, pids)", "cgroup v2 (memory, pids)" or "rlimits (…why…)". */
  limits: string;
  /** Whether tasks may reach the public internet when their app asks: "none" or "public". */
  network: 'none' | 'public';
  /** The container runtime ("podman 4.3.1"), or null when this worker has none. */
  containers: string | null;
  /** Images present in the container runtime's store (a task naming another is pulled). */
  images: string[];
  /** Image patterns whose tasks run in the host sandbox instead (TESSERA_HOST_IMAGES). */
  hostImages: string[];
}

export interface Runtime {
  readonly description: RuntimeDescription;
  run(invocation: Invocation): Promise<TaskRunResult>;
  /** Ends every launcher and sandbox (running task processes are killed), removes cgroups. */
  close(): Promise<void>;
}

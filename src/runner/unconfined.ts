import { randomUUID } from 'node:crypto';
import path from 'node:path';
import type { Log } from '../domain/log.js';
import type { Launcher } from './launcher.js';
import { createForkServer } from './launcher.js';
import { nodeBootstrap, pythonBootstrap } from './process-usage.js';
import { runProcess } from './runner.js';
import type { Invocation, TaskRunResult } from './runtime.js';

// TESSERA_SANDBOX=off: a task's process is a plain child of the worker, as the worker's user, with
// the worker's view of the machine and no limits. For a single-user laptop only: the worker warns
// at start. Python entrypoints still start from a warm interpreter (the bare launcher).

export interface UnconfinedSettings {
  python: string;
  warmPython: boolean;
  runtimeDir: string;
  baseEnv: Record<string, string>;
  log: Log;
}

export function createUnconfined(settings: UnconfinedSettings) {
  let forkServer: Launcher | undefined;

  return {
    async run(invocation: Invocation): Promise<TaskRunResult> {
      const { root } = invocation.folders;
      const cwd = path.join(root, 'work');
      // No bytecode written next to the component: its folder must stay as it was unpacked (component-cache.ts).
      const env: Record<string, string> = { ...settings.baseEnv, HOME: cwd, TMPDIR: cwd, PYTHONUNBUFFERED: '1', PYTHONDONTWRITEBYTECODE: '1' };
      for (const [variable, folder] of Object.entries(invocation.folderVariables)) env[variable] = path.join(root, folder);
      if (invocation.folders.userCache) env.USER_CACHE_DIR = invocation.folders.userCache;
      if (invocation.folders.sharedCache) env.SHARED_CACHE_DIR = invocation.folders.sharedCache;
      Object.assign(env, invocation.variables);
      const spec = { cwd, env, timeoutMs: invocation.timeoutMs, signal: invocation.signal, onOutput: invocation.onOutput };
      const script = invocation.entrypoint;
      if (/\.py$/i.test(script) && settings.warmPython) {
        forkServer ??= createForkServer(settings.python, settings.baseEnv, settings.log, settings.runtimeDir);
        return forkServer.run({ ...spec, script, componentRoot: invocation.componentFolder });
      }
      // Through the usage bootstraps: same interpreter, same script, and a resource report at exit.
      const usageFile = path.join(settings.runtimeDir, `usage-${randomUUID()}`);
      if (/\.py$/i.test(script)) return runProcess({ ...spec, command: settings.python, args: ['-u', pythonBootstrap(settings.runtimeDir), script], usageFile });
      if (/\.(m|c)?js$/i.test(script)) return runProcess({ ...spec, command: process.execPath, args: ['--require', nodeBootstrap(settings.runtimeDir), script], usageFile });
      return runProcess({ ...spec, command: script, args: [] });
    },
    async close(): Promise<void> {
      forkServer?.close();
    },
  };
}

import { chmodSync, lstatSync, mkdirSync } from 'node:fs';
import { TesseraError, quote } from '../domain/errors.js';
import type { Log } from '../domain/log.js';
import { imageMatches } from '../domain/images.js';
import { manifestImage, manifestWantsNetwork } from '../domain/manifest.js';
import { createCgroups } from './cgroups.js';
import { createContainerRuntime, findContainerEngine } from './containers.js';
import { describePython } from './runner.js';
import type { Invocation, Runtime, RuntimeDescription, TaskRunResult } from './runtime.js';
import { createHostSandbox } from './sandbox.js';
import { createUnconfined } from './unconfined.js';

// Picks, for each task process, where it runs: in a container when its component names an image
// this worker does not map to the host and a container runtime is here; otherwise in the host
// sandbox (or unconfined, when an operator turned the sandbox off).

export interface RuntimeSettings {
  /** TESSERA_SANDBOX: false only for a single-user laptop. */
  sandbox: boolean;
  python: string;
  warmPython: boolean;
  /** A folder of this worker's alone (mode 0700): launchers' sockets and roots, bootstraps. */
  runtimeDir: string;
  workDir: string;
  taskUser: { uid: number; gid: number };
  network: 'none' | 'public';
  /** TESSERA_CONTAINER_RUNTIME: "auto", "off" or a command. */
  containerRuntime: string;
  /** TESSERA_HOST_IMAGES: images whose tasks run in the host sandbox, not a container. */
  hostImages: string[];
  baseEnv: Record<string, string>;
}

/** Makes the runtime folder, or refuses one that others could write (a planted bootstrap would run in every task). */
function privateFolder(folder: string): void {
  mkdirSync(folder, { recursive: true, mode: 0o700 });
  const found = lstatSync(folder);
  const uid = process.getuid?.();
  if (!found.isDirectory() || (uid !== undefined && found.uid !== uid)) {
    throw new TesseraError('FAILED_PRECONDITION', `the runtime folder ${quote(folder)} is not a folder of this user's`, { hint: 'remove it, or choose another --home' });
  }
  chmodSync(folder, 0o700);
}

export async function createRuntime(settings: RuntimeSettings, log: Log): Promise<Runtime> {
  privateFolder(settings.runtimeDir);
  const python = describePython(settings.python, settings.baseEnv);
  // Cgroups serve containers too, so they are made even with the host sandbox off.
  const cgroups = createCgroups(log);
  const host = settings.sandbox
    ? createHostSandbox({ python, warmPython: settings.warmPython, runtimeDir: settings.runtimeDir, workDir: settings.workDir, user: settings.taskUser, cgroups, network: settings.network, baseEnv: settings.baseEnv, log })
    : undefined;
  const unconfined = host ? undefined : createUnconfined({ python: python.executable, warmPython: settings.warmPython, runtimeDir: settings.runtimeDir, baseEnv: settings.baseEnv, log });
  try {
    await host?.check();
  } catch (error) {
    await cgroups.close();
    throw new TesseraError('FAILED_PRECONDITION', `tasks cannot be confined on this machine: ${(error as Error).message}`, {
      hint: 'run the worker as root, or allow unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1, or kernel.apparmor_restrict_unprivileged_userns=0); on a single-user laptop only, TESSERA_SANDBOX=off runs tasks unconfined',
    });
  }
  if (!host) log.warn({}, 'TESSERA_SANDBOX=off: tasks run unconfined, as this user, with this machine\'s files, network and processes in reach; for a single-user laptop only');

  const engine = findContainerEngine(settings.containerRuntime, settings.baseEnv);
  const containers = engine
    ? createContainerRuntime({
        engine,
        cgroups,
        runtimeDir: settings.runtimeDir,
        user: settings.taskUser,
        network: settings.network,
        publicNetwork: (invocation) => {
          if (!host) throw new TesseraError('FAILED_PRECONDITION', 'a container\'s public network goes through the host sandbox, which is off (TESSERA_SANDBOX=off)');
          return host.publicNetwork(invocation);
        },
        log,
      })
    : undefined;
  await containers?.removeLeftovers();
  const description: RuntimeDescription = {
    sandbox: host ? host.description : 'off',
    limits: host ? cgroups.description : 'none (the sandbox is off)',
    network: settings.network,
    containers: engine?.version ?? null,
    images: (await containers?.images()) ?? [],
    hostImages: settings.hostImages,
  };
  const onHost = (image: string) => settings.hostImages.some((pattern) => imageMatches(pattern, image));

  return {
    description,
    async run(invocation: Invocation): Promise<TaskRunResult> {
      const what = `${invocation.manifest.name}@${invocation.manifest.version}`;
      if (manifestWantsNetwork(invocation.manifest) && settings.network !== 'public') {
        throw new TesseraError('PERMISSION_DENIED', `${what} asks for the public internet (platform_config.network "public"), and this worker gives tasks no network (its operator may allow it with TESSERA_TASK_NETWORK=public)`, { hint: 'otherwise the app must work without a network' });
      }
      const image = manifestImage(invocation.manifest);
      if (image && !onHost(image)) {
        if (!containers) {
          throw new TesseraError('FAILED_PRECONDITION', `${what} runs in the image ${quote(image)}, and this worker has no container runtime and does not map that image to its host (install podman, or set TESSERA_HOST_IMAGES to run the image's tasks in the host sandbox)`);
        }
        return containers.run(invocation, image);
      }
      return host ? host.run(invocation) : unconfined!.run(invocation);
    },
    async close() {
      await Promise.all([host?.close(), unconfined?.close(), containers?.close()]);
      await cgroups.close();
    },
  };
}

/** The runtime of a process with no worker slots (`tessera server`): it runs no task, so it confines none. */
export function noRuntime(): Runtime {
  return {
    description: { sandbox: 'none (no worker slots)', limits: 'none', network: 'none', containers: null, images: [], hostImages: [] },
    async run() {
      throw new TesseraError('INTERNAL', 'this process has no worker slots and runs no task');
    },
    async close() {},
  };
}

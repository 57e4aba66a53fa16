import type { IPodSecurityContext } from 'kubernetes-models/v1/PodSecurityContext';
import type { ISecurityContext } from 'kubernetes-models/v1/SecurityContext';
import type { KubernetesOptions } from './options.js';

// What each pod may do, and why. Servers and the migration Job run no one's code but Tessera's:
// the restricted profile. A worker runs tasks of every account; with Tessera's sandbox on it needs
// what the sandbox does (src/runner/launcher.py), and nothing more:
//  - a user namespace, made by the non-root worker itself (unshare CLONE_NEWUSER);
//  - unshare, mount, umount2, pivot_root and sethostname inside it: containerd's RuntimeDefault
//    (moby's profile) allows the first four only with CAP_SYS_ADMIN and pivot_root never; CRI-O's
//    and podman's (containers/common) lack only sethostname. deploy/seccomp/tessera-worker.json is
//    containers/common's profile plus sethostname; without it on the nodes, Unconfined;
//  - no AppArmor confinement: the runtimes' default profile denies mount;
//  - a fresh /proc: the kernel refuses it while the container's /proc has masked paths.
// Checked with podman here (test/deploy/image.test.ts runs the image with that profile).

export const TESSERA_UID = 10001;

export const RESTRICTED_POD: IPodSecurityContext = {
  runAsNonRoot: true,
  runAsUser: TESSERA_UID,
  runAsGroup: TESSERA_UID,
  fsGroup: TESSERA_UID,
  seccompProfile: { type: 'RuntimeDefault' },
};

export const RESTRICTED_CONTAINER: ISecurityContext = {
  allowPrivilegeEscalation: false,
  readOnlyRootFilesystem: true,
  capabilities: { drop: ['ALL'] },
};

/** Why the worker pod asks for what it asks for, kept on the pod as annotations. */
export function workerSecurityNotes(options: KubernetesOptions): Record<string, string> {
  if (options.workerSandbox === 'off') {
    return {
      'tessera.dev/sandbox': 'off: tasks run as plain child processes of the worker; this pod is their only boundary',
      'tessera.dev/sandbox-risk': 'a task can read the worker token file and act as this worker: run only code you trust, or turn the sandbox on',
    };
  }
  return {
    'tessera.dev/sandbox': 'namespaces: each task runs in user, mount, PID, IPC, UTS and network namespaces of its own (src/runner/launcher.py)',
    'tessera.dev/seccomp': `${options.workerSeccompProfile ? `Localhost ${options.workerSeccompProfile} (deploy/seccomp/tessera-worker.json)` : 'Unconfined'}: RuntimeDefault allows unshare, mount, umount2, pivot_root or sethostname only with CAP_SYS_ADMIN, which the worker does not hold`,
    'tessera.dev/apparmor': 'Unconfined: the runtimes\' default AppArmor profile denies mount inside the container',
    'tessera.dev/proc-mount': 'Unmasked: a masked /proc stops the kernel mounting the sandbox\'s own /proc; Kubernetes accepts it with hostUsers: false',
    'tessera.dev/host-users': 'false: the pod runs in a user namespace of its own, so root inside it is nobody on the node',
  };
}

export function workerPodSecurity(options: KubernetesOptions): { pod: IPodSecurityContext; container: ISecurityContext; hostUsers?: boolean } {
  if (options.workerSandbox === 'off') return { pod: RESTRICTED_POD, container: RESTRICTED_CONTAINER };
  return {
    pod: {
      ...RESTRICTED_POD,
      seccompProfile: options.workerSeccompProfile ? { type: 'Localhost', localhostProfile: options.workerSeccompProfile } : { type: 'Unconfined' },
      appArmorProfile: { type: 'Unconfined' },
    },
    // Still no capabilities and no privilege escalation: the sandbox needs neither outside its namespaces.
    container: { ...RESTRICTED_CONTAINER, procMount: 'Unmasked' },
    hostUsers: false,
  };
}

import type { Command } from 'commander';
import { packageVersion } from '../config/config.js';
import { renderKubernetes } from '../deploy/kubernetes.js';
import type { KubernetesFlags } from '../deploy/options.js';
import { kubernetesOptions } from '../deploy/options.js';

// `tessera deploy`: what an operator installs Tessera with, printed on stdout to apply or keep.
// systemd units for VMs are plain files in deploy/systemd/ (docs/DEPLOYING.md).

export function registerDeployCommands(program: Command): void {
  const deploy = program.command('deploy').description('print what installs Tessera on a cluster (see docs/DEPLOYING.md)');
  deploy
    .command('kubernetes')
    .description('print Kubernetes manifests: migration Job, server Deployment, Service and PodDisruptionBudget, workers autoscaled by KEDA')
    .option('--namespace <name>', 'namespace of every object (default tessera)')
    .option('--no-create-namespace', 'leave the Namespace out (it exists already)')
    .option('--image <ref>', 'Tessera\'s image, built from the Containerfile and pushed (default tessera:<version>)')
    .option('--servers <n>', 'server replicas (default 2)')
    .option('--workers <n>', 'fewest worker replicas; the autoscaler starts here (default 1)')
    .option('--max-workers <n>', 'most worker replicas (default 10, or --workers if more)')
    .option('--slots <n>', 'tasks a worker runs at once; its CPU and memory requests follow (default 4)')
    .option('--database-url-secret <name[:key]>', 'Secret holding the PostgreSQL URL, and its key (default tessera-database:DATABASE_URL)')
    .option('--blobs <url>', 'S3-compatible bucket for blobs, s3://bucket/prefix?endpoint=… (default: a shared ReadWriteMany volume)')
    .option('--worker-sandbox <mode>', 'namespaces (Tessera\'s sandbox in the pod; default) or off (the pod is the only boundary)')
    .option('--worker-host-images <patterns>', 'images whose tasks workers run in their sandbox with the image\'s own python3 and node (TESSERA_HOST_IMAGES; default "python:*,node:*"; "" for none)')
    .option('--worker-seccomp-profile <file>', 'the sandbox\'s seccomp profile on every node, relative to /var/lib/kubelet/seccomp (deploy/seccomp/tessera-worker.json; default Unconfined)')
    .option('--scaler <kind>', 'what KEDA reads the queue from: prometheus (default) or postgresql')
    .option('--prometheus <url>', 'the Prometheus server KEDA asks (default http://prometheus-operated.monitoring.svc:9090)')
    .option('-o, --output <format>', 'yaml (default) or json')
    .option('--json', 'the same as --output json')
    .action((flags: KubernetesFlags) => {
      const version = packageVersion();
      process.stdout.write(renderKubernetes(kubernetesOptions(flags, version), version));
    });
}

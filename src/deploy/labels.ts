import type { IObjectMeta } from '@kubernetes-models/apimachinery/apis/meta/v1/ObjectMeta';
import type { KubernetesOptions } from './options.js';

// One naming scheme for every object: the selector labels of a component never change between
// versions (a Deployment's selector is immutable), the version label does.

export type Component = 'server' | 'worker' | 'migrate';

export const SERVER_NAME = 'tessera-server';
export const WORKER_NAME = 'tessera-worker';
export const HTTP_PORT = 8080;

export function selectorLabels(component: Component): Record<string, string> {
  return { 'app.kubernetes.io/name': 'tessera', 'app.kubernetes.io/component': component };
}

export function metadata(options: KubernetesOptions, name: string, component: Component, version: string, annotations?: Record<string, string>): IObjectMeta {
  return {
    name,
    namespace: options.namespace,
    labels: { ...selectorLabels(component), 'app.kubernetes.io/version': version, 'app.kubernetes.io/managed-by': 'tessera-deploy' },
    ...(annotations ? { annotations } : {}),
  };
}

/** The servers' address inside the cluster, for workers and the autoscaler. */
export function serverUrl(options: KubernetesOptions): string {
  return `http://${SERVER_NAME}.${options.namespace}.svc:${HTTP_PORT}`;
}

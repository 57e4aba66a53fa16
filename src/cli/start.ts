import { hostname } from 'node:os';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { createServer } from '../api/server.js';
import type { Config } from '../config/config.js';
import type { Engine } from '../engine/engine.js';
import { createEngine } from '../engine/engine.js';
import { heartbeatInterval } from '../engine/task-flow.js';
import type { Db } from '../store/db.js';
import type { Worker } from '../worker/worker.js';
import { machineOffer, newWorkerId } from '../worker/machine.js';
import { createWorker } from '../worker/worker.js';
import { runtimeSettings, taskEnvironment } from '../worker/run-task.js';
import type { Runtime } from '../runner/runtime.js';
import { createRuntime, noRuntime } from '../runner/create-runtime.js';

// Tessera in one process: engine, HTTP API, scheduler sweep and in-process worker slots.
// `tessera up`, the example and the end-to-end tests all start it this way.

export interface RunningTessera {
  engine: Engine;
  app: FastifyInstance;
  worker: Worker;
  /** Where the in-process slots run their tasks' processes. */
  runtime: Runtime;
  /** Base URL of the API, e.g. http://127.0.0.1:8080 */
  url: string;
  stop(): Promise<void>;
}

/** The images a laptop's embedded Tessera runs in its host sandbox when TESSERA_HOST_IMAGES is not set. */
export const EMBEDDED_HOST_IMAGES = ['python:*', 'node:*'];

export async function startTessera(options: { config: Config; logger: Logger; db?: Db }): Promise<RunningTessera> {
  const { config, logger } = options;
  // Made first: a machine that cannot confine tasks stops the start before anything is opened.
  const runtime = config.workerSlots > 0 ? await createRuntime(runtimeSettings(config, EMBEDDED_HOST_IMAGES), logger) : noRuntime();
  const engine = await createEngine({ config, log: logger, ...(options.db ? { db: options.db } : {}) }).catch(async (error: unknown) => {
    await runtime.close();
    throw error;
  });
  const app = await createServer({ engine, logger });
  try {
    await app.listen({ host: config.host, port: config.port });
  } catch (error) {
    await engine.close();
    await runtime.close();
    throw error;
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const link = engine.localLink({ id: newWorkerId(), name: `${hostname()} (in-process)`, slots: config.workerSlots, ...machineOffer(config, runtime.description) });
  const worker = createWorker({
    link,
    slots: config.workerSlots,
    prefetch: config.workerSlots > 0 ? config.workerPrefetch : 0,
    env: taskEnvironment(config, link, runtime, logger),
    log: logger,
    heartbeatMs: heartbeatInterval(config),
  });
  engine.scheduler.start();
  worker.start();
  const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
  return {
    engine,
    app,
    worker,
    runtime,
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    async stop() {
      await app.close();
      await worker.stop();
      await engine.close();
    },
  };
}


import { Command, Option } from 'commander';
import { createLogger } from './logger.js';
import type { Flags } from '../config/config.js';
import { loadConfig, packageVersion } from '../config/config.js';
import { TesseraError } from '../domain/errors.js';
import type { ExampleOptions } from './example.js';
import { registerJobCommands } from './job-commands.js';
import { registerRegistryCommands } from './registry-commands.js';
import { registerKeyCommands } from './key-commands.js';
import { registerDeployCommands } from './deploy-command.js';
import { registerMigrateCommand } from './migrate-command.js';
import { lockHome } from './home-lock.js';
import { hostname } from 'node:os';
import path from 'node:path';
import { createHttpLink } from '../worker/http-link.js';
import { retryDelay, retryable, sleep } from '../worker/backoff.js';
import { describeRuntime, machineOffer, newWorkerId } from '../worker/machine.js';
import { createRuntime } from '../runner/create-runtime.js';
import { createWorker } from '../worker/worker.js';
import { runtimeSettings, taskEnvironment } from '../worker/run-task.js';

// The `tessera` command. Every command that prints something for scripts has --json.
// The server, the database engines and the example are loaded by the commands that use them:
// a worker agent or a client command then starts without fastify, PGlite, pg and the S3 client
// (an idle worker agent measured 67 MB instead of 92 MB, and each process it forks copies less).

interface CommonOptions {
  home?: string;
  port?: string;
  host?: string;
  slots?: string;
  prefetch?: string;
  logLevel?: string;
  json?: boolean;
}

function flagsOf(options: CommonOptions): Flags {
  return { home: options.home, port: options.port, host: options.host, slots: options.slots, prefetch: options.prefetch, logLevel: options.logLevel };
}

function print(json: boolean | undefined, value: Record<string, unknown>, text: string): void {
  process.stdout.write(json ? `${JSON.stringify(value)}\n` : `${text}\n`);
}

async function up(options: CommonOptions): Promise<void> {
  const config = loadConfig(flagsOf(options));
  const unlock = config.databaseUrl ? () => {} : lockHome(config.home);
  // Logs go to stderr; stdout carries only what the command prints (the --json line for scripts).
  const logger = createLogger(config.logLevel);
  const { startTessera } = await import('./start.js');
  const tessera = await startTessera({ config, logger }).catch((error) => {
    unlock();
    throw error;
  });
  const first = tessera.engine.firstKey;
  const operator = tessera.engine.operatorKey;
  print(options.json, {
    url: tessera.url, home: config.home, database: config.databaseUrl ? 'postgres' : 'pglite', ...(config.workerSlots > 0 ? { runtime: tessera.runtime.description } : {}),
    ...(first ? { accountId: first.accountId, apiKey: config.initialApiKey ? undefined : first.apiKey } : {}),
    ...(operator && !config.initialOperatorKey ? { operatorKey: operator.apiKey } : {}),
  }, [
    `Tessera is up at ${tessera.url}  (API: ${tessera.url}/v1/customer, OpenAPI: ${tessera.url}/openapi.json)`,
    `  data: ${config.databaseUrl ? 'PostgreSQL server (DATABASE_URL)' : path.join(config.home, 'db')}, blobs: ${config.blobs.kind === 's3' ? `s3://${config.blobs.s3.bucket}/${config.blobs.s3.prefix}` : path.join(config.home, 'blobs')}, worker slots: ${config.workerSlots}`,
    ...(config.workerSlots > 0 ? [`  ${describeRuntime(tessera.runtime.description)}`] : []),
    ...(first
      ? config.initialApiKey
        ? [`  first account ${first.accountId} created with the key from TESSERA_API_KEY`]
        : [`  first account ${first.accountId} created. Its API key (shown only this once, keep it):`, `    ${first.apiKey}`]
      : []),
    ...(operator && !config.initialOperatorKey ? ['  the operator key (accounts, quotas, the shared fleet: /v1/operator; shown only this once):', `    ${operator.apiKey}`] : []),
  ].join('\n'));
  const shutdown = async () => {
    logger.info('shutting down');
    await tessera.stop();
    unlock();
    process.exit(0);
  };
  process.once('SIGINT', () => void shutdown());
  process.once('SIGTERM', () => void shutdown());
}

/** `tessera server`: API and scheduler, no worker slots (workers connect with `tessera worker`). */
async function server(options: CommonOptions): Promise<void> {
  await up({ ...options, slots: '0' });
}

async function worker(options: { server?: string; token?: string; slots?: string; prefetch?: string; region?: string; home?: string; logLevel?: string; json?: boolean }): Promise<void> {
  // Its own folder by default, never one in the shared temporary folder that another user could make first.
  const config = loadConfig({ server: options.server, token: options.token, slots: options.slots, prefetch: options.prefetch, region: options.region, home: options.home, defaultHome: '.tessera-worker', logLevel: options.logLevel });
  if (!config.workerToken) throw new TesseraError('UNAUTHENTICATED', 'no worker token given', { hint: 'pass --token or set TESSERA_WORKER_TOKEN (make one with `tessera key create --worker`)' });
  const logger = createLogger(config.logLevel);
  // A worker agent runs an image's tasks in containers unless its operator maps the image to the host.
  const runtime = await createRuntime(runtimeSettings(config, []), logger);
  const identity = { id: newWorkerId(), name: hostname(), slots: Math.max(1, config.workerSlots), ...machineOffer(config, runtime.description) };
  const servers = config.serverUrl.split(',').map((url) => url.replace(/\/+$/, ''));
  const link = createHttpLink({ servers, token: config.workerToken, worker: identity, log: logger });
  // Servers that are away at start are waited for, as later on; a refused token is final.
  let heartbeatMs = 0;
  for (let failures = 0; !heartbeatMs; failures++) {
    try {
      ({ heartbeatMs } = await link.register());
    } catch (error) {
      if (!retryable(error)) {
        await runtime.close();
        throw new TesseraError('UNAUTHENTICATED', `${servers.join(', ')} refused this worker: ${(error as Error).message}`, { hint: 'check --token (make one with `tessera key create --worker`) and --server' });
      }
      const delayMs = retryDelay(failures);
      logger.warn({ err: error }, `cannot register with ${servers.join(', ')}: ${(error as Error).message}; retrying in ${(delayMs / 1000).toFixed(1)} s`);
      await sleep(delayMs);
    }
  }
  const agent = createWorker({
    link,
    slots: identity.slots,
    prefetch: config.workerPrefetch,
    env: taskEnvironment(config, link, runtime, logger),
    log: logger,
    // The server's lease length decides the heartbeat, whatever this machine's settings say.
    heartbeatMs,
    leaseWaitMs: 20_000,
    onFatal: (error) => {
      logger.error({ err: error }, 'stopping: the servers refuse this worker');
      process.stderr.write(`error: the servers refuse this worker: ${error.message}\n  hint: its token may have been revoked; make a new one with \`tessera key create --worker\`\n`);
      void agent.stop().finally(() => process.exit(2));
    },
  });
  agent.start();
  print(options.json, { workerId: identity.id, servers, slots: identity.slots, region: identity.region, runtime: runtime.description }, `worker ${identity.id} (${identity.slots} slots${identity.region ? `, region ${identity.region}` : ''}) serving ${servers.join(', ')}\n  ${describeRuntime(runtime.description)}`);
  const shutdown = async () => {
    await agent.stop();
    process.exit(0);
  };
  process.once('SIGINT', () => void shutdown());
  process.once('SIGTERM', () => void shutdown());
}

async function whoami(options: { server?: string; key?: string; json?: boolean }): Promise<void> {
  const { createClient } = await import('./client.js');
  const client = createClient(options);
  const body = await client.call<{ accountId?: string }>('GET', '/v1/auth/user');
  print(options.json, { accountId: body.accountId, server: client.server }, `account ${body.accountId} on ${client.server}`);
}

/**
 * `tessera job logs … | head -1`: once the reader has gone, there is nothing left to print to,
 * which is no error of the command's. It ends quietly with 0, as `cat` under SIGPIPE's default would.
 */
function exitQuietlyOnClosedOutput(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EPIPE') process.exit(0);
      throw error;
    });
  }
}

export async function main(argv: string[]): Promise<void> {
  exitQuietlyOnClosedOutput();
  const program = new Command('tessera')
    .description('Self-hostable distributed compute with a ByteNite-compatible jobs API')
    .version(packageVersion(), '-V, --version', 'print the version')
    .showHelpAfterError();
  const common = (command: Command) =>
    command
      .option('--home <dir>', 'folder for the embedded database and blobs (TESSERA_HOME)', undefined)
      .option('--json', 'print machine-readable JSON');

  common(program.command('up').description('run Tessera embedded: API, scheduler and worker slots in one process'))
    .option('--port <port>', 'HTTP port (TESSERA_PORT, default 8080; 0 picks a free one)')
    .option('--host <host>', 'address to listen on (TESSERA_HOST, default 127.0.0.1)')
    .option('--slots <n>', 'in-process worker slots (default: one per core)')
    .option('--prefetch <n>', 'tasks leased ahead of free slots: auto (one per slot while tasks are short) or 0 to 1000 (TESSERA_WORKER_PREFETCH, default auto)')
    .addOption(new Option('--log-level <level>', 'log level').choices(['fatal', 'error', 'warn', 'info', 'debug', 'trace']))
    .action(up);

  program
    .command('whoami')
    .description('show the account of an API key')
    .option('--server <url>', 'Tessera server (TESSERA_URL, default http://127.0.0.1:8080)')
    .option('--key <key>', 'API key or access token (TESSERA_API_KEY)')
    .option('--json', 'print machine-readable JSON')
    .action(whoami);

  common(program.command('server').description('run an API and scheduler replica (no worker slots); many may share one PostgreSQL (DATABASE_URL)'))
    .option('--port <port>', 'HTTP port (TESSERA_PORT, default 8080; 0 picks a free one)')
    .option('--host <host>', 'address to listen on (TESSERA_HOST, default 127.0.0.1)')
    .addOption(new Option('--log-level <level>', 'log level').choices(['fatal', 'error', 'warn', 'info', 'debug', 'trace']))
    .action(server);

  program
    .command('worker')
    .description('run a worker agent that leases tasks from Tessera servers over HTTP')
    .option('--server <urls>', 'server URL, or several comma-separated (TESSERA_URL)')
    .option('--token <token>', 'worker token (TESSERA_WORKER_TOKEN; make one with `tessera key create --worker`)')
    .option('--slots <n>', 'tasks run at once (default: one per core)')
    .option('--prefetch <n>', 'tasks leased ahead of free slots: auto (one per slot while tasks are short) or 0 to 1000 (TESSERA_WORKER_PREFETCH, default auto)')
    .option('--region <region>', 'the region this worker is in, matched against jobs\' regions (TESSERA_WORKER_REGION)')
    .option('--home <dir>', 'folder for its component cache, task folders and runtime files (TESSERA_HOME, default ./.tessera-worker)')
    .addOption(new Option('--log-level <level>', 'log level').choices(['fatal', 'error', 'warn', 'info', 'debug', 'trace']))
    .option('--json', 'print machine-readable JSON')
    .action(worker);

  registerKeyCommands(program);

  common(program.command('example').argument('<name>', 'example to run: word-count').description('start Tessera embedded and run an example job through the HTTP API'))
    .option('--port <port>', 'HTTP port (default: a free one)', '0')
    .option('--chunks <n>', 'number of chunks', '4')
    .option('--keep', 'keep serving after the job finishes')
    .action(async (name: string, options: ExampleOptions) => (await import('./example.js')).runExample(name, options));

  registerJobCommands(program);
  registerRegistryCommands(program);
  registerMigrateCommand(program);
  registerDeployCommands(program);

  try {
    await program.parseAsync(argv);
  } catch (error) {
    if (error instanceof TesseraError) {
      throw new Error(`error: ${error.message}${error.hint ? `\n  hint: ${error.hint}` : ''}`);
    }
    throw error;
  }
}

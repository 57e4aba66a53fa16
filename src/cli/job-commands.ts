import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Command } from 'commander';
import { TesseraError, invalidArgument, quote } from '../domain/errors.js';
import type { Client, ClientOptions } from './client.js';
import { createClient } from './client.js';
import { createProgress } from './progress.js';
import { FILE_SOURCE, checkUploadFile, uploadJobFile } from './upload.js';

// `tessera job …`: create, run, status, watch, results, logs, list, filter, abort, delete —
// ByteNite's verbs over the public API. `run` and `watch` follow the job's event stream with a
// progress bar and end with the result links; every command has --json for scripts.

type Options = ClientOptions & { json?: boolean };


function out(options: Options, value: unknown, text: string): void {
  process.stdout.write(options.json ? `${JSON.stringify(value)}\n` : `${text}\n`);
}

function parseJsonOption(name: string, raw: string | undefined): Record<string, unknown> | undefined {
  if (raw === undefined) return undefined;
  try {
    const value = JSON.parse(raw);
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('not a JSON object');
    return value;
  } catch (error) {
    throw invalidArgument(name, `--${name} ${quote(raw)} is not a JSON object (${(error as Error).message})`, `for example --${name} '{"key": "value"}'`);
  }
}

function bytes(value: string | number): string {
  const number = Number(value);
  if (number >= 1024 ** 3) return `${(number / 1024 ** 3).toFixed(2)} GiB`;
  if (number >= 1024 ** 2) return `${(number / 1024 ** 2).toFixed(1)} MiB`;
  return `${(number / 1024).toFixed(0)} KiB`;
}

interface CreateOptions extends Options {
  template?: string;
  file?: string;
  name?: string;
  description?: string;
  url?: string;
  source?: string;
  destination?: string;
  params?: string;
  config?: string;
}

function createBody(options: CreateOptions): Record<string, unknown> {
  if (!options.template) throw invalidArgument('template', 'a job needs a template', 'pass --template ID (tessera template list shows them)');
  if ([options.url, options.file, options.source].filter((given) => given !== undefined).length > 1) throw invalidArgument('source', 'give one input: --url, --file or --source', 'for example --file data.csv');
  const source = options.url
    ? { dataSourceDescriptor: 'url', params: { '@type': 'type.googleapis.com/bytenite.data_source.HttpDataSource', url: options.url } }
    : options.file !== undefined
      ? FILE_SOURCE
      : parseJsonOption('source', options.source);
  return {
    templateId: options.template,
    ...(options.name ? { name: options.name } : {}),
    ...(options.description ? { description: options.description } : {}),
    ...(source ? { dataSource: source } : {}),
    ...(options.destination ? { dataDestination: parseJsonOption('destination', options.destination) } : {}),
    ...(options.params ? { params: parseJsonOption('params', options.params) } : {}),
    ...(options.config ? { config: parseJsonOption('config', options.config) } : {}),
  };
}

/**
 * A job made without --url, --file or --source would run on empty input, which is never what a
 * forgotten flag meant. So it is refused unless its template declares a source: "bypass" (it
 * takes no input, e.g. a fan-out partitioner) or a default input of its own.
 */
async function checkInputGiven(client: Client, options: CreateOptions): Promise<void> {
  if (options.url !== undefined || options.file !== undefined || options.source !== undefined) return;
  const { data: template } = await client.call('GET', `/v1/dev/templates/${encodeURIComponent(options.template!)}`);
  if (template.dataSource?.dataSourceDescriptor) return;
  throw invalidArgument('source', `template ${quote(options.template)} reads an input, and none was given`, 'pass --file PATH, --url URL or --source JSON (a template that takes no input declares "dataSource": {"dataSourceDescriptor": "bypass"})');
}

/** Creates the job the options describe; with --file, uploads the file too (the job is then ready to run). */
async function createJob(client: Client, options: CreateOptions): Promise<any> {
  const body = createBody(options);
  await checkInputGiven(client, options);
  if (options.file !== undefined) await checkUploadFile(options.file);
  const { job } = await client.call('POST', '/v1/customer/jobs', body);
  if (options.file !== undefined) await uploadJobFile(client, job, options.file, options.json === true);
  return job;
}

/** "INFO chunk 0" under the INFO column reads "INFO  INFO chunk 0": the column says it once. */
function withoutLevel(text: string, level: string): string {
  const match = /^\s*\[?(trace|debug|info|warn|warning|error|fatal|critical)\]?[:\s]\s*/i.exec(text);
  if (!match) return text;
  const word = match[1]!.toUpperCase();
  const same = word === level || (word === 'WARNING' && level === 'WARN') || (word === 'CRITICAL' && level === 'FATAL');
  return same && match[0].length < text.length ? text.slice(match[0].length) : text;
}

function statusText(job: any): string {
  const usage = job.usage ?? {};
  const lines = [
    `job ${job.id}  ${job.name ? `"${job.name}"  ` : ''}template ${job.templateId}`,
    `  state:    ${job.state}${job.errorMessage ? `\n  error:    ${job.errorMessage}` : ''}`,
    `  tasks:    ${usage.tasksDone ?? 0}/${job.numChunks ?? 0} done${usage.tasksFailed ? `, ${usage.tasksFailed} failed attempts` : ''}`,
    `  created:  ${job.createdAt}${job.endedAt ? `   ended: ${job.endedAt}` : ''}   duration: ${Number(job.duration ?? 0).toFixed(1)} s`,
    `  usage:    ${Number(usage.cpuSeconds ?? 0).toFixed(2)} CPU s, ${Number(usage.wallSeconds ?? 0).toFixed(2)} s of task time, peak ${bytes(usage.peakMemoryBytes ?? 0)}`,
    `  cost:     ${Number(usage.units ?? 0).toPrecision(3)} vCPU·GiB·h (numUnitsEstimation ${job.numUnitsEstimation}) × ${usage.pricePerUnit} = ${job.paymentAmount}`,
  ];
  return lines.join('\n');
}

/** Follows a job's events with a progress bar until it ends; returns the job as it ended. */
async function watch(client: Client, jobId: string, options: Options): Promise<any> {
  const progress = options.json ? null : createProgress(process.stderr, jobId);
  let view = { state: 'JOB_STATE_NEW', done: 0, failed: 0, total: null as number | null };
  await client.stream(`/v1/customer/jobs/${encodeURIComponent(jobId)}/events`, (event, data) => {
    if (event === 'state') view = { ...view, state: data.state };
    else if (event === 'progress') view = { state: data.state, done: data.tasksDone, failed: data.tasksFailed, total: data.tasksTotal };
    else if (event === 'task' && progress) {
      progress.finish();
      process.stderr.write(`  ${data.message}\n`);
    }
    progress?.update(view);
    return event !== 'end';
  });
  progress?.finish();
  return (await client.call('GET', `/v1/customer/jobs/${encodeURIComponent(jobId)}`)).job;
}

async function finish(client: Client, job: any, options: Options & { download?: string }): Promise<void> {
  let results: { name: string; link: string }[] = [];
  if (job.state === 'JOB_STATE_COMPLETE') results = (await client.call('GET', `/v1/customer/jobs/${encodeURIComponent(job.id)}/results`)).results ?? [];
  const downloaded = options.download ? await download(results, options.download) : [];
  out(options, { job, results, ...(options.download ? { downloaded } : {}) }, [
    statusText(job),
    ...(results.length > 0 ? ['results:', ...results.map((result) => `  ${result.name}\n    ${result.link}`)] : []),
    ...downloaded.map((file) => `downloaded ${file}`),
  ].join('\n'));
  if (job.state === 'JOB_STATE_FAILED') process.exitCode = 1;
}

async function download(results: { name: string; link: string }[], folder: string): Promise<string[]> {
  await mkdir(folder, { recursive: true });
  const root = path.resolve(folder);
  const files: string[] = [];
  for (const result of results) {
    // A result name is the server's, but it still never leaves the folder.
    const target = path.resolve(root, result.name.replace(/\\/g, '/').split('/').filter((part) => part && part !== '..').join('/') || 'result');
    if (!target.startsWith(root + path.sep)) throw new TesseraError('INVALID_ARGUMENT', `result name ${quote(result.name)} would leave ${folder}`);
    await mkdir(path.dirname(target), { recursive: true });
    const response = await fetch(result.link);
    if (!response.ok || !response.body) throw new TesseraError('UNAVAILABLE', `downloading ${result.name} answered HTTP ${response.status}`);
    await pipeline(Readable.fromWeb(response.body as never), createWriteStream(target));
    files.push(target);
  }
  return files;
}

const withClient = (command: Command) =>
  command
    .option('--server <url>', 'Tessera server (TESSERA_URL, default http://127.0.0.1:8080)')
    .option('--key <key>', 'API key or access token (TESSERA_API_KEY)')
    .option('--json', 'print machine-readable JSON');

const createOptions = (command: Command) =>
  command
    .option('--template <id>', 'template to run (tessera template list)')
    .option('--name <name>', 'a name for the job')
    .option('--description <text>', 'a description')
    .option('--url <url>', 'input: a file on a web server (url data source)')
    .option('--file <path>', 'input: a local file, uploaded (file data source)')
    .option('--source <json>', 'input: a dataSource object')
    .option('--destination <json>', 'output: a dataDestination object (default: bucket, with links)')
    .option('--params <json>', 'params: {"app": {…}, "partitioner": {…}, "assembler": {…}}')
    .option('--config <json>', 'config: {"taskTimeout": …, "jobTimeout": …, "maxTaskRetries": …}');

export function registerJobCommands(program: Command): void {
  const job = program.command('job').description('create, run and follow jobs');

  createOptions(withClient(job.command('create').description('create a job (NEW); run it with tessera job run'))).action(async (options: CreateOptions) => {
    const client = createClient(options);
    const created = await createJob(client, options);
    out(options, created, `created job ${created.id} (template ${created.templateId}); run it with: tessera job run ${created.id}`);
  });

  createOptions(withClient(job.command('run').argument('[jobId]', 'a NEW job (or give --template to create one)').description('run a job and follow it to its end with a progress bar; prints the result links')))
    .option('--no-watch', 'start it and return at once')
    .option('--download <dir>', 'download the results into this folder')
    .action(async (jobId: string | undefined, options: CreateOptions & { watch?: boolean; download?: string }) => {
      const client = createClient(options);
      const id = jobId ?? (await createJob(client, options)).id;
      await client.call('POST', `/v1/customer/jobs/${encodeURIComponent(id)}/run`, {});
      if (options.watch === false) return out(options, { jobId: id, state: 'JOB_STATE_STARTED' }, `job ${id} started; follow it with: tessera job watch ${id}`);
      await finish(client, await watch(client, id, options), options);
    });

  withClient(job.command('watch').argument('<jobId>').description('follow a job with a progress bar until it ends; prints the result links'))
    .option('--download <dir>', 'download the results into this folder')
    .action(async (jobId: string, options: Options & { download?: string }) => {
      const client = createClient(options);
      await finish(client, await watch(client, jobId, options), options);
    });

  withClient(job.command('status').argument('<jobId>').description('state, progress, timings and resource usage of a job')).action(async (jobId: string, options: Options) => {
    const { job: found } = await createClient(options).call('GET', `/v1/customer/jobs/${encodeURIComponent(jobId)}`);
    out(options, found, statusText(found));
  });

  withClient(job.command('results').argument('<jobId>').description('result links of a completed job'))
    .option('--download <dir>', 'download the results into this folder')
    .action(async (jobId: string, options: Options & { download?: string }) => {
      const client = createClient(options);
      const { results } = await client.call('GET', `/v1/customer/jobs/${encodeURIComponent(jobId)}/results`);
      const downloaded = options.download ? await download(results, options.download) : [];
      out(options, { results, ...(options.download ? { downloaded } : {}) }, [...results.map((result: { name: string; link: string }) => `${result.name}\n  ${result.link}`), ...downloaded.map((file) => `downloaded ${file}`)].join('\n') || 'no results');
    });

  withClient(job.command('logs').argument('<jobId>').description('what the partitioner, apps and assembler wrote (stdout and stderr)'))
    .option('-f, --follow', 'keep printing new lines until the job ends')
    .action(async (jobId: string, options: Options & { follow?: boolean }) => {
      const client = createClient(options);
      const print = (line: any) => process.stdout.write(options.json ? `${JSON.stringify(line)}\n` : `${line.timestamp} ${line.service.padEnd(11)} ${line.service === 'TASKRUNNER' ? `chunk ${line.chunkIndex} ` : ''}${line.level.padEnd(5)} ${withoutLevel(line.log, line.level)}\n`);
      const route = `/v1/customer/jobs/${encodeURIComponent(jobId)}/logs`;
      if (options.follow) return client.stream(`${route}?follow=true`, (event, data) => (event === 'log' ? void print(data) : event !== 'end'));
      let after = '0';
      for (;;) {
        const page = await client.call('GET', `${route}?after=${after}&limit=10000`);
        for (const line of page.logs) print(line);
        if (page.logs.length < 10000) return;
        after = page.next;
      }
    });

  const listing = (jobs: any[]) => jobs.map((item) => `${item.id}  ${item.state.replace('JOB_STATE_', '').padEnd(15)} ${item.templateId.padEnd(20)} ${item.createdAt}  ${item.name}`).join('\n') || 'no jobs';

  withClient(job.command('list').description('your jobs, newest first'))
    .option('--limit <n>', 'how many', '20')
    .option('--offset <n>', 'skip this many', '0')
    .action(async (options: Options & { limit: string; offset: string }) => {
      const answer = await createClient(options).call('GET', `/v1/customer/jobs?pagination.limit=${encodeURIComponent(options.limit)}&pagination.offset=${encodeURIComponent(options.offset)}&orderBy=createdAt%20desc`);
      out(options, answer, `${listing(answer.data)}\n(${answer.data.length} of ${answer.pagination.total})`);
    });

  withClient(job.command('filter').description('your jobs filtered by state, template or name'))
    .option('--state <state>', 'e.g. COMPLETE or JOB_STATE_FAILED')
    .option('--template <id>', 'template id')
    .option('--name <text>', 'name contains this')
    .option('--limit <n>', 'how many', '20')
    .action(async (options: Options & { state?: string; template?: string; name?: string; limit: string }) => {
      const filters = [
        ...(options.state ? [{ field: 'state', condition: 'FILTER_CONDITION_EQ', value: options.state.startsWith('JOB_STATE_') ? options.state : `JOB_STATE_${options.state.toUpperCase()}` }] : []),
        ...(options.template ? [{ field: 'templateId', condition: 'FILTER_CONDITION_EQ', value: options.template }] : []),
        ...(options.name ? [{ field: 'name', condition: 'FILTER_CONDITION_LIKE', value: `%${options.name}%` }] : []),
      ];
      const answer = await createClient(options).call('POST', '/v1/customer/jobs/filter', { filters, pagination: { limit: options.limit, offset: '0' }, orderBy: 'createdAt desc' });
      out(options, answer, `${listing(answer.data)}\n(${answer.data.length} of ${answer.pagination.total})`);
    });

  for (const [verb, method, description] of [['abort', 'POST', 'stop a running job (a job not started is deleted)'], ['delete', 'DELETE', 'delete a job and its files']] as const) {
    withClient(job.command(verb).argument('<jobId>').description(description)).action(async (jobId: string, options: Options) => {
      const route = verb === 'abort' ? `/v1/customer/jobs/${encodeURIComponent(jobId)}/abort` : `/v1/customer/jobs/${encodeURIComponent(jobId)}`;
      const answer = await createClient(options).call(method, route);
      out(options, answer, answer.message ?? `${verb} done`);
    });
  }
}


import { createReadStream, mkdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { createLogger } from './logger.js';
import { loadConfig } from '../config/config.js';
import { TesseraError, invalidArgument, quote } from '../domain/errors.js';
import { JOB_STATES, shortState } from '../domain/job-state.js';
import { createKey } from '../engine/accounts.js';
import { lockHome } from './home-lock.js';
import { startTessera } from './start.js';

// `tessera example word-count`: starts Tessera embedded, serves a real text over HTTP, and runs
// the word-count job through the public API exactly as a customer would (create, run, poll,
// results, download), printing progress, the top words and where to look.

const EXAMPLES: Record<string, { file: string }> = { 'word-count': { file: 'declaration-of-independence.txt' } };
const JOB_DEADLINE_MS = 10 * 60_000;

export interface ExampleOptions {
  home?: string;
  port?: string;
  chunks?: string;
  keep?: boolean;
  json?: boolean;
}

async function call(base: string, apiKey: string, method: string, route: string, body?: unknown): Promise<any> {
  const response = await fetch(`${base}${route}`, {
    method,
    headers: { authorization: `Bearer ${apiKey}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const json: any = await response.json();
  if (!response.ok) throw new TesseraError('INTERNAL', `${method} ${route} answered HTTP ${response.status}: ${json.message ?? JSON.stringify(json)}`);
  return json;
}

/** Serves the example's input text from 127.0.0.1, the way a customer's file would sit on a web server. */
async function serveText(file: string): Promise<{ url: string; close: () => Promise<void> }> {
  const server = http.createServer((request, response) => {
    if (request.url !== `/${path.basename(file)}`) return void response.writeHead(404).end();
    response.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
    createReadStream(file).pipe(response);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/${path.basename(file)}`, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

export async function runExample(name: string, options: ExampleOptions): Promise<void> {
  const example = EXAMPLES[name];
  if (!example) throw invalidArgument('name', `there is no example ${quote(name)}`, `examples: ${Object.keys(EXAMPLES).join(', ')}`);
  const chunks = Number(options.chunks ?? 4);
  if (!Number.isInteger(chunks) || chunks < 1 || chunks > 1000) throw invalidArgument('--chunks', `--chunks ${quote(options.chunks)} must be a whole number from 1 to 1000`);
  // The input is served from this machine, so this one run allows private addresses for url sources.
  const config = { ...loadConfig({ home: options.home, port: options.port ?? 0, logLevel: 'warn' }), allowPrivateUrls: true };
  const say = (line: string) => options.json || process.stdout.write(`${line}\n`);
  const unlock = config.databaseUrl ? () => {} : lockHome(config.home);
  const tessera = await startTessera({ config, logger: createLogger('warn') });
  const text = await serveText(path.join(config.examplesDir, name, 'data', example.file));
  try {
    // A key made for this run is shown once (only its hash is kept): the way back in with `tessera up`.
    const made = tessera.engine.firstKey ?? (await createKey(tessera.engine.deps.db));
    const apiKey = made.apiKey;
    say(`Tessera is running embedded at ${tessera.url} (data in ${config.home})`);
    say(`  API key of account ${made.accountId} (shown only this once; keep it to sign in later): ${apiKey}`);
    const created = await call(tessera.url, apiKey, 'POST', '/v1/customer/jobs', {
      templateId: name,
      name: `${name} example`,
      dataSource: { dataSourceDescriptor: 'url', params: { '@type': 'type.googleapis.com/bytenite.data_source.HttpDataSource', url: text.url } },
      params: { partitioner: { chunks } },
    });
    const jobId: string = created.job.id;
    say(`job ${jobId} created from template ${name}; input ${text.url}`);
    await call(tessera.url, apiKey, 'POST', `/v1/customer/jobs/${jobId}/run`, {});
    const started = Date.now();
    let job: any;
    const printed = new Set<string>();
    for (;;) {
      job = (await call(tessera.url, apiKey, 'GET', `/v1/customer/jobs/${jobId}`)).job;
      // Print every state the job passed through since the last poll, at the time it entered it.
      for (const state of JOB_STATES) {
        const at = job.stateTimestamps?.[state];
        if (!at || printed.has(state) || state === 'JOB_STATE_NEW') continue;
        printed.add(state);
        const detail = state === 'JOB_STATE_PARTITIONED' ? `  ${job.numChunks} chunks queued` : state === 'JOB_STATE_FAILED' ? `  ${job.errorMessage}` : '';
        say(`  ${((Date.parse(at) - Date.parse(job.stateTimestamps.JOB_STATE_STARTED)) / 1000).toFixed(2).padStart(6)} s  ${shortState(state)}${detail}`);
      }
      if (job.state === 'JOB_STATE_COMPLETE' || job.state === 'JOB_STATE_FAILED') break;
      if (Date.now() - started > JOB_DEADLINE_MS) throw new TesseraError('DEADLINE_EXCEEDED', `job ${jobId} did not finish within ${JOB_DEADLINE_MS / 60_000} minutes (state ${job.state})`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    if (job.state === 'JOB_STATE_FAILED') throw new TesseraError('FAILED_PRECONDITION', `job ${jobId} failed: ${job.errorMessage}`);
    const { results } = await call(tessera.url, apiKey, 'GET', `/v1/customer/jobs/${jobId}/results`);
    const result = results.find((item: { name: string }) => item.name === 'counts.json');
    if (!result) throw new TesseraError('INTERNAL', `job ${jobId} finished without counts.json (results: ${JSON.stringify(results)})`);
    const download = await fetch(result.link);
    const body = await download.text();
    const counts = JSON.parse(body) as Record<string, number>;
    const outputDir = path.join(config.home, 'example-output', jobId);
    mkdirSync(outputDir, { recursive: true });
    writeFileSync(path.join(outputDir, 'counts.json'), body);
    const top = Object.entries(counts).sort((left, right) => right[1] - left[1] || left[0].localeCompare(right[0])).slice(0, 10);
    const total = Object.values(counts).reduce((sum, count) => sum + count, 0);
    if (options.json) {
      process.stdout.write(`${JSON.stringify({ jobId, state: job.state, numChunks: job.numChunks, words: total, distinctWords: Object.keys(counts).length, top: Object.fromEntries(top), result: path.join(outputDir, 'counts.json'), url: tessera.url })}\n`);
    } else {
      say(`\n${total} words, ${Object.keys(counts).length} distinct. Top 10:`);
      for (const [word, count] of top) say(`  ${String(count).padStart(5)}  ${word}`);
      say(`\nWhere to look:`);
      say(`  result file:   ${path.join(outputDir, 'counts.json')}`);
      say(`  result link:   ${result.link}  (signed, expires in ${Math.round(config.resultLinkTtlSeconds / 3600)} h)`);
      say(`  the job:       curl -H "Authorization: Bearer ${apiKey}" ${tessera.url}/v1/customer/jobs/${jobId}`);
      say(`  the API:       ${tessera.url}/openapi.json (reference: ${tessera.url}/docs)`);
      // The key rides in the fragment, which the browser never sends: no server or proxy log sees it.
      // Without --keep this server stops, so the link is given for `tessera up` on its default port.
      const signIn = `/ui#/signin?key=${encodeURIComponent(apiKey)}&next=/jobs/${jobId}`;
      say(options.keep
        ? `  the dashboard: ${tessera.url}${signIn}  (signs in and opens the job)`
        : `  the dashboard: run \`npx tessera up --home ${config.home}\`, then open http://127.0.0.1:8080${signIn}  (signs in and opens the job)`);
      say(`  the CLI:       TESSERA_URL=${tessera.url} TESSERA_API_KEY=${apiKey} npx tessera job status ${jobId}`);
      if (!options.keep) say(`  (the server stops now; run with --keep to keep it, or \`tessera up --home ${config.home}\`)`);
    }
    if (options.keep) {
      say(`\nServing at ${tessera.url} (API key for this run: ${apiKey}); Ctrl-C to stop.`);
      await new Promise<void>((resolve) => process.once('SIGINT', () => resolve()));
    }
  } finally {
    await text.close();
    await tessera.stop();
    unlock();
  }
}

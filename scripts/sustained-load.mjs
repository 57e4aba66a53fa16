#!/usr/bin/env node
// Sustained load on `tessera up` over the PostgreSQL server, with task rows kept 36 s
// (TESSERA_TASK_ROW_RETENTION_HOURS=0.01): a noop job of 200 chunks every 0.4 s, and ten GETs of
// a job after each; every 30 s the row counts of the tables that grow and the GET latency.
// Usage: node scripts/sustained-load.mjs [minutes, default 5] (DATABASE_URL: default the test server).
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
const URL_DB = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test';
const schema = 'sustained_' + Date.now().toString(36);
const KEY = 'tsk_sustained_key_0123456789abcdef';
const minutes = Number(process.argv[2] ?? 5);
const home = mkdtempSync(path.join(tmpdir(), 'tessera-sustained-'));
const child = spawn(process.execPath, [path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'tessera.js'), 'up', '--port', '0', '--json', '--home', home, '--slots', '4'], { env: { PATH: process.env.PATH, DATABASE_URL: URL_DB, TESSERA_DATABASE_SCHEMA: schema, TESSERA_API_KEY: KEY, TESSERA_TASK_ROW_RETENTION_HOURS: '0.01', TESSERA_LOG_LEVEL: 'warn' }, stdio: ['ignore', 'pipe', 'inherit'] });
const info = await new Promise((resolve) => createInterface({ input: child.stdout }).once('line', (line) => resolve(JSON.parse(line))));
const api = async (method, route, body) => (await fetch(info.url + route, { method, headers: { authorization: KEY, ...(body ? { 'content-type': 'application/json' } : {}) }, ...(body ? { body: JSON.stringify(body) } : {}) })).json();
const db = new pg.Client({ connectionString: URL_DB }); await db.connect();
const end = Date.now() + minutes * 60_000;
let jobs = [];
let samples = [];
let lastSample = Date.now();
console.log('minute | jobs submitted | tasks rows | task_logs | job_events | jobs rows | GET job p50 / p99 ms');
let submitted = 0;
while (Date.now() < end) {
  const created = await api('POST', '/v1/customer/jobs', { templateId: 'noop', params: { partitioner: { chunks: 200 } } });
  await api('POST', `/v1/customer/jobs/${created.job.id}/run`);
  submitted++;
  jobs.push(created.job.id);
  for (let i = 0; i < 10; i++) {
    const id = jobs[Math.floor(Math.random() * jobs.length)];
    const t = performance.now(); await api('GET', `/v1/customer/jobs/${id}`); samples.push(performance.now() - t);
  }
  await new Promise((r) => setTimeout(r, 400));
  if (Date.now() - lastSample >= 30_000) {
    lastSample = Date.now();
    samples.sort((a, b) => a - b);
    const q = async (t) => (await db.query(`SELECT count(*)::int AS n FROM ${schema}.${t}`)).rows[0].n;
    console.log(`${((minutes * 60_000 - (end - Date.now())) / 60_000).toFixed(1)} | ${submitted} | ${await q('tasks')} | ${await q('task_logs')} | ${await q('job_events')} | ${await q('jobs')} | ${samples[Math.floor(samples.length / 2)].toFixed(2)} / ${samples[Math.floor(samples.length * 0.99)].toFixed(2)}`);
    samples = [];
  }
}
child.kill('SIGTERM');
await new Promise((r) => child.once('exit', r));
await db.query(`DROP SCHEMA ${schema} CASCADE`);
await db.end();
rmSync(home, { recursive: true, force: true });

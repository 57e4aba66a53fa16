import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { TesseraError, invalidArgument, quote } from '../domain/errors.js';
import type { Client } from './client.js';

// `--file PATH` of `tessera job create|run`: the job's file source, uploaded to the link the job
// answers, streamed from disk in parts of PART_BYTES (so a failed part is all that is sent
// again), with progress on stderr, then uploadcompleted.

const PART_BYTES = 512 * 1024 ** 2;
const TRIES = 3;

export const FILE_SOURCE = { dataSourceDescriptor: 'file', params: { '@type': 'type.googleapis.com/bytenite.data_source.LocalFileDataSource' } };

/** Checks the file before a job is made for it. */
export async function checkUploadFile(filePath: string): Promise<number> {
  const info = await stat(filePath).catch(() => null);
  if (!info || !info.isFile()) throw invalidArgument('file', `--file ${quote(filePath)} is not a readable file`, 'give the path of the input file');
  return info.size;
}

export async function uploadJobFile(client: Client, job: { id: string; dataSource?: { params?: { tempUrl?: string } } }, filePath: string, quiet: boolean): Promise<void> {
  const link = job.dataSource?.params?.tempUrl;
  if (!link) throw new TesseraError('FAILED_PRECONDITION', `job ${job.id} gave no upload link`, { hint: 'the job must be NEW, with a "file" data source' });
  const size = await checkUploadFile(filePath);
  const parts = Math.max(1, Math.ceil(size / PART_BYTES));
  const name = path.basename(filePath);
  let sent = 0;
  const started = Date.now();
  const show = (final = false) => {
    if (quiet) return;
    const seconds = (Date.now() - started) / 1000;
    const rate = seconds > 0 ? sent / 1024 ** 2 / seconds : 0;
    process.stderr.write(`${process.stderr.isTTY ? '\r\x1b[2K' : ''}uploading ${name}: ${(sent / 1024 ** 2).toFixed(1)} of ${(size / 1024 ** 2).toFixed(1)} MiB (${rate.toFixed(1)} MiB/s)${final || !process.stderr.isTTY ? '\n' : ''}`);
  };
  for (let part = 1; part <= parts; part++) {
    const start = (part - 1) * PART_BYTES;
    const end = Math.min(size, start + PART_BYTES);
    for (let attempt = 1; ; attempt++) {
      let partSent = 0;
      const counter = new Transform({
        transform(chunk: Buffer, _encoding, done) {
          partSent += chunk.length;
          sent += chunk.length;
          // Redrawn every 16 MiB on a terminal; elsewhere one line per part.
          if (process.stderr.isTTY && partSent % (16 * 1024 ** 2) < chunk.length) show();
          done(null, chunk);
        },
      });
      const body = size === 0 ? Readable.from([]) : createReadStream(filePath, { start, end: end - 1 }).pipe(counter);
      const response = await fetch(`${link}&part=${part}`, {
        method: 'PUT',
        body: Readable.toWeb(body),
        headers: { 'content-type': 'application/octet-stream', 'content-length': String(end - start), 'content-disposition': `attachment; filename="${encodeURIComponent(name)}"` },
        duplex: 'half',
      } as RequestInit).catch((error: Error) => ({ ok: false, status: 0, json: async () => ({ message: error.message }) }) as unknown as Response);
      if (response.ok) {
        await response.json().catch(() => ({}));
        break;
      }
      sent -= partSent;
      const payload = (await response.json().catch(() => ({}))) as { message?: string };
      // A refusal (4xx) says the same again; a dropped connection or a 5xx may not.
      if (attempt >= TRIES || (response.status >= 400 && response.status < 500)) {
        throw new TesseraError('UNAVAILABLE', `uploading part ${part} of ${parts} of ${name} failed: ${payload.message ?? `HTTP ${response.status}`}`);
      }
    }
    if (!process.stderr.isTTY) show();
  }
  show(true);
  await client.call('PATCH', `/v1/customer/jobs/${encodeURIComponent(job.id)}/uploadcompleted`);
}

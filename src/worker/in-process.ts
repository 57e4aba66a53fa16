import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { eachAtMost } from '../domain/batch.js';
import { assertNever, invalidArgument, quote } from '../domain/errors.js';
import type { InProcessName } from '../domain/in-process.js';

// The code of the in-process built-ins (src/domain/in-process.ts). Each takes the environment a
// process would get (CHUNKS_DIR, PARTITIONER_PARAMS, TASK_RESULTS_DIR…) and keeps to the same
// contract, so everything around it — leases, uploads, completion, fencing — runs as for any app.

/** The most chunks `empty-chunks` makes: the scale benchmark's 100,000 with room to spare. */
const MAX_EMPTY_CHUNKS = 1_000_000;

/** Chunk files written at once. */
const FILES_AT_ONCE = 16;

export async function runInProcess(name: InProcessName, stageEnv: Record<string, string>): Promise<void> {
  switch (name) {
    case 'noop':
      // An app that reads nothing and writes no result: what is left is the platform's own cost.
      return;
    case 'empty-chunks':
      return writeEmptyChunks(stageEnv.CHUNKS_DIR!, JSON.parse(stageEnv.PARTITIONER_PARAMS ?? '{}') as Record<string, unknown>);
    default:
      return assertNever(name, 'in-process component');
  }
}

/** Partitioner: param `chunks` (default 1) empty files data_0.bin … data_{chunks-1}.bin. */
async function writeEmptyChunks(chunksDir: string, params: Record<string, unknown>): Promise<void> {
  const chunks = params.chunks ?? 1;
  if (typeof chunks !== 'number' || !Number.isInteger(chunks) || chunks < 1 || chunks > MAX_EMPTY_CHUNKS) {
    throw invalidArgument('params.partitioner.chunks', `chunks ${quote(chunks)} must be a whole number from 1 to ${MAX_EMPTY_CHUNKS}`, 'for example {"partitioner": {"chunks": 1000}}');
  }
  await eachAtMost(Array.from({ length: chunks }, (_, chunkIndex) => chunkIndex), FILES_AT_ONCE, (chunkIndex) => writeFile(path.join(chunksDir, `data_${chunkIndex}.bin`), ''));
}

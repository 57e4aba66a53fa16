import { assertNever, invalidArgument, quote } from '../domain/errors.js';
import type { InProcessName } from '../domain/in-process.js';
import type { OutputFile } from '../domain/worker-link.js';

// The code of the in-process built-ins (src/domain/in-process.ts). Each takes the environment a
// process would get (PARTITIONER_PARAMS, APP_PARAMS…) and keeps to the same contract, so
// everything around it — leases, uploads, completion, fencing — runs as for any app.

/** The most chunks `empty-chunks` makes: the scale benchmark's 100,000 with room to spare. */
const MAX_EMPTY_CHUNKS = 1_000_000;

/** What an in-process component made: nothing (noop), or a partitioner's chunks, kept off the disk. */
export async function runInProcess(name: InProcessName, stageEnv: Record<string, string>): Promise<OutputFile[] | undefined> {
  switch (name) {
    case 'noop':
      // An app that reads nothing and writes no result: what is left is the platform's own cost.
      return undefined;
    case 'empty-chunks':
      return emptyChunks(JSON.parse(stageEnv.PARTITIONER_PARAMS ?? '{}') as Record<string, unknown>);
    default:
      return assertNever(name, 'in-process component');
  }
}

/**
 * Partitioner: param `chunks` (default 1) empty chunks data_0.bin … data_{chunks-1}.bin, as a
 * list without files. An empty chunk is never uploaded (the app task's worker makes the empty
 * file itself), so writing, listing and removing a file for each one was all the work a fan-out
 * of 1,000 did on the worker here: about a second of file creation.
 */
function emptyChunks(params: Record<string, unknown>): OutputFile[] {
  const chunks = params.chunks ?? 1;
  if (typeof chunks !== 'number' || !Number.isInteger(chunks) || chunks < 1 || chunks > MAX_EMPTY_CHUNKS) {
    throw invalidArgument('params.partitioner.chunks', `chunks ${quote(chunks)} must be a whole number from 1 to ${MAX_EMPTY_CHUNKS}`, 'for example {"partitioner": {"chunks": 1000}}');
  }
  return Array.from({ length: chunks }, (_, chunkIndex) => ({ name: `data_${chunkIndex}.bin`, path: null }));
}

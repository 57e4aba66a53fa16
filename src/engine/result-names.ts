import { assertNever } from '../domain/errors.js';
import { plainFileName } from '../domain/file-names.js';
import type { TaskLease } from '../domain/worker-link.js';
import type { StoredOutput } from '../store/tasks.js';

// Names and keys of the files tasks produce. Apps usually write the same file name in every task
// (output.png in each chunk); the assembler gets one flat folder, so names must be made unique.

/**
 * A name stays as it is when no other task wrote the same one; otherwise it is prefixed with its
 * chunk number (`3_output.png`). Nested paths are flattened with `_`. Anything still clashing
 * (an app that itself wrote `3_output.png`) gets a counter.
 */
export function uniqueResultNames(tasks: { chunkIndex: number; outputs: StoredOutput[] }[]): { name: string; blobKey: string }[] {
  const flat = tasks.flatMap((task) => task.outputs.map((output) => ({ chunkIndex: task.chunkIndex, name: output.name.replaceAll('/', '_'), blobKey: output.blobKey })));
  const uses = new Map<string, number>();
  for (const file of flat) uses.set(file.name, (uses.get(file.name) ?? 0) + 1);
  const taken = new Set<string>();
  return flat.map((file) => {
    let name = uses.get(file.name) === 1 ? file.name : `${file.chunkIndex}_${file.name}`;
    for (let counter = 2; taken.has(name); counter++) name = `${file.chunkIndex}_${counter}_${file.name}`;
    taken.add(name);
    return { name, blobKey: file.blobKey };
  });
}

/**
 * Where a task's file is stored. Keys are scoped by attempt, so a worker that lost its lease and
 * uploads late writes beside the current attempt's files, never over them; and they never hold
 * the user's file name raw (only a sanitised copy after an index), so no name can escape a folder.
 */
export function taskFileKey(lease: Pick<TaskLease, 'jobId' | 'kind' | 'chunkIndex' | 'attempt'>, index: number, name: string): string {
  const base = `jobs/${lease.jobId}`;
  switch (lease.kind) {
    case 'partition':
      return `${base}/chunks/a${lease.attempt}/data_${index}.bin`;
    case 'app':
      return `${base}/results/${lease.chunkIndex}/a${lease.attempt}/${index}-${safeName(name)}`;
    case 'assemble':
      return `${base}/output/a${lease.attempt}/${index}-${safeName(name)}`;
    default:
      return assertNever(lease.kind, 'task kind');
  }
}

function safeName(name: string): string {
  const last = name.split('/').pop() ?? '';
  return plainFileName(last, 'file', 120);
}

/** The download name of a stored task file (the part after the index). */
export function downloadName(blobKey: string): string {
  const last = blobKey.split('/').pop() ?? 'file';
  return last.replace(/^\d+-/, '');
}

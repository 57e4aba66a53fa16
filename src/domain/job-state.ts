import { TesseraError } from './errors.js';

// The seed's job states, in lifecycle order. FAILED can be reached from any non-final state.
export const JOB_STATES = [
  'JOB_STATE_NEW',
  'JOB_STATE_STARTED',
  'JOB_STATE_UPLOADING',
  'JOB_STATE_PARTITIONING',
  'JOB_STATE_PARTITIONED',
  'JOB_STATE_TASKS_COMPLETED',
  'JOB_STATE_MERGING',
  'JOB_STATE_MERGED',
  'JOB_STATE_DOWNLOADING',
  'JOB_STATE_COMPLETE',
  'JOB_STATE_FAILED',
] as const;

export type JobState = (typeof JOB_STATES)[number];

export const FINAL_STATES: ReadonlySet<JobState> = new Set(['JOB_STATE_COMPLETE', 'JOB_STATE_FAILED']);

/**
 * The one table of allowed transitions (besides "→ FAILED from any non-final state").
 * Every state change in the store is guarded on the `from` state, so two replicas that race
 * to advance a job cannot both succeed.
 */
export const NEXT_STATE: Readonly<Partial<Record<JobState, JobState>>> = {
  JOB_STATE_NEW: 'JOB_STATE_STARTED',
  JOB_STATE_STARTED: 'JOB_STATE_UPLOADING',
  JOB_STATE_UPLOADING: 'JOB_STATE_PARTITIONING',
  JOB_STATE_PARTITIONING: 'JOB_STATE_PARTITIONED',
  JOB_STATE_PARTITIONED: 'JOB_STATE_TASKS_COMPLETED',
  JOB_STATE_TASKS_COMPLETED: 'JOB_STATE_MERGING',
  JOB_STATE_MERGING: 'JOB_STATE_MERGED',
  JOB_STATE_MERGED: 'JOB_STATE_DOWNLOADING',
  JOB_STATE_DOWNLOADING: 'JOB_STATE_COMPLETE',
};

export function isJobState(value: unknown): value is JobState {
  return typeof value === 'string' && (JOB_STATES as readonly string[]).includes(value);
}

export function isFinal(state: JobState): boolean {
  return FINAL_STATES.has(state);
}

export function stateIndex(state: JobState): number {
  return JOB_STATES.indexOf(state);
}

/** The state a job must be in to move to `to`; FAILED has no single predecessor. */
export function previousState(to: JobState): JobState {
  for (const [from, next] of Object.entries(NEXT_STATE)) {
    if (next === to) return from as JobState;
  }
  throw new TesseraError('INTERNAL', `${to} has no single previous state`);
}

/** Short human name, e.g. "PARTITIONING" for JOB_STATE_PARTITIONING. */
export function shortState(state: JobState): string {
  return state.replace(/^JOB_STATE_/, '');
}

import { isTesseraError } from '../domain/errors.js';

// How a worker agent waits out servers or a database that are away: the wait before each retry
// doubles from RETRY_FIRST_MS to RETRY_MAX_MS, with jitter so a fleet does not retry in step.

const RETRY_FIRST_MS = 500;
export const RETRY_MAX_MS = 30_000;

/** The wait before the next try, after `failuresBefore` failed tries in a row. */
export function retryDelay(failuresBefore: number): number {
  const base = Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** Math.min(failuresBefore, 16));
  return Math.round(base * (0.75 + Math.random() * 0.25));
}

/** Whether trying again later can help: the servers or their database away, not a refusal. */
export function retryable(error: unknown): boolean {
  if (!isTesseraError(error)) return true;
  return error.code === 'UNAVAILABLE' || error.code === 'DEADLINE_EXCEEDED';
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
  });
}

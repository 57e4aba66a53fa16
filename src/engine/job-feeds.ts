import { isFinal } from '../domain/job-state.js';
import { notFound } from '../domain/errors.js';
import type { JobProgress, LogQuery, StoredLogLine } from '../store/task-reports.js';
import { lastFeedEventId, lastTaskLogId, listFeedEvents, listJobProgress, listTaskLogs } from '../store/task-reports.js';
import { getJob } from '../store/jobs.js';
import type { EngineDeps } from './deps.js';

// Live views of jobs: every state change and progress report of one job or of an account's jobs,
// and a job's log lines as they are stored (a job's feed also says `logs` when new ones are
// stored). Subscribers are served by one sweep every FEED_POLL_MS that reads what is new since
// each subscriber's cursor. Reading the database, rather than listening to this process, is what
// makes a subscriber on one replica see a job that another replica's workers are running.

const FEED_POLL_MS = 250;

export type FeedMessage =
  | { id: number; event: 'state'; data: { jobId: string; state: string; at: string; message: string } }
  | { id: number; event: 'task'; data: { jobId: string; at: string; message: string } }
  | { event: 'progress'; data: JobProgress }
  | { event: 'logs'; data: { jobId: string; lastLogId: number } }
  | { event: 'end'; data: { jobId: string; state: string } };

interface Subscription {
  accountId: string;
  jobId: string | null;
  cursor: number;
  progress: Map<string, string>;
  /** A job's feed: the newest log line it announced (a `logs` event tells followers to read). */
  lastLogId: number;
  send: (message: FeedMessage) => void;
  /** Per-job feeds end once the job has ended and everything up to its end was sent. */
  onEnd: () => void;
  busy: boolean;
}

export function createJobFeeds(deps: EngineDeps) {
  const { db, log } = deps;
  const subscriptions = new Set<Subscription>();
  let timer: NodeJS.Timeout | undefined;

  async function serve(subscription: Subscription): Promise<void> {
    if (subscription.busy) return;
    subscription.busy = true;
    try {
      const events = await listFeedEvents(db, subscription.accountId, subscription.jobId, subscription.cursor);
      let ended: { jobId: string; state: string } | null = null;
      for (const event of events) {
        subscription.cursor = event.id;
        if (event.kind === 'state' && event.state) {
          subscription.send({ id: event.id, event: 'state', data: { jobId: event.jobId, state: event.state, at: event.at.toISOString(), message: event.message } });
          if (subscription.jobId && isFinal(event.state)) ended = { jobId: event.jobId, state: event.state };
        } else {
          subscription.send({ id: event.id, event: 'task', data: { jobId: event.jobId, at: event.at.toISOString(), message: event.message } });
        }
      }
      for (const progress of await listJobProgress(db, subscription.accountId, subscription.jobId)) {
        const key = `${progress.state}/${progress.tasksDone}/${progress.tasksFailed}/${progress.tasksTotal}`;
        if (subscription.progress.get(progress.jobId) === key) continue;
        subscription.progress.set(progress.jobId, key);
        subscription.send({ event: 'progress', data: progress });
      }
      if (subscription.jobId) {
        const lastLogId = await lastTaskLogId(db, subscription.jobId);
        if (lastLogId > subscription.lastLogId) {
          subscription.lastLogId = lastLogId;
          subscription.send({ event: 'logs', data: { jobId: subscription.jobId, lastLogId } });
        }
      }
      // A page of 500 may end before the final state: only end when nothing more was waiting.
      if (ended && events.length < 500) {
        subscription.send({ event: 'end', data: ended });
        subscription.onEnd();
      }
    } catch (error) {
      log.warn({ err: error, jobId: subscription.jobId }, 'event feed sweep failed; retrying');
    } finally {
      subscription.busy = false;
    }
  }

  function sweep(): void {
    for (const subscription of subscriptions) void serve(subscription);
  }

  async function requireJob(accountId: string, jobId: string) {
    const job = /^[\x21-\x7e]{1,128}$/.test(jobId) ? await getJob(db, accountId, jobId) : null;
    if (!job) throw notFound('job', jobId, 'list your jobs with GET /v1/customer/jobs');
    return job;
  }

  return {
    /**
     * Streams a job's (or, with jobId null, every job of the account's) events to `send` until the
     * returned function is called or, for one job, the job has ended. A job's feed starts from its
     * first event, the account's from now; `afterId` (Last-Event-ID) resumes either.
     */
    async subscribe(accountId: string, jobId: string | null, afterId: number | null, send: (message: FeedMessage) => void, onEnd: () => void): Promise<() => void> {
      if (jobId) await requireJob(accountId, jobId);
      const subscription: Subscription = {
        accountId,
        jobId,
        cursor: afterId ?? (jobId ? 0 : await lastFeedEventId(db)),
        progress: new Map(),
        lastLogId: 0,
        send,
        busy: false,
        onEnd: () => {
          subscriptions.delete(subscription);
          onEnd();
        },
      };
      subscriptions.add(subscription);
      timer ??= setInterval(sweep, FEED_POLL_MS);
      void serve(subscription);
      return () => {
        subscriptions.delete(subscription);
        if (subscriptions.size === 0 && timer) {
          clearInterval(timer);
          timer = undefined;
        }
      };
    },

    /** A page of a job's log lines, after `afterId`. */
    async logs(accountId: string, query: LogQuery): Promise<{ lines: StoredLogLine[]; ended: boolean }> {
      const job = await requireJob(accountId, query.jobId);
      return { lines: await listTaskLogs(db, query), ended: isFinal(job.state) };
    },

    close(): void {
      if (timer) clearInterval(timer);
      timer = undefined;
      subscriptions.clear();
    },
  };
}

export type JobFeeds = ReturnType<typeof createJobFeeds>;

// Batching for calls that are cheaper together: the first call goes out at once (no added delay),
// and calls made while batches are in flight ride in the next one, so under load every round trip
// carries everything that piled up meanwhile. At most `maxInFlight` batches are out at a time.

export type Batched<T, R> = (item: T) => Promise<R>;

/** `send` answers one result per item, in order; if it throws, every item of that batch fails with it. */
export function createBatcher<T, R>(send: (items: T[]) => Promise<R[]>, maxItems: number, maxInFlight = 1): Batched<T, R> {
  const pending: { item: T; resolve: (result: R) => void; reject: (error: unknown) => void }[] = [];
  let inFlight = 0;

  function flush(): void {
    if (inFlight >= maxInFlight || pending.length === 0) return;
    inFlight++;
    const batch = pending.splice(0, maxItems);
    send(batch.map((entry) => entry.item))
      .then(
        (results) => {
          if (results.length !== batch.length) throw new Error(`a batch of ${batch.length} was answered with ${results.length} results`);
          for (const [index, entry] of batch.entries()) entry.resolve(results[index]!);
        },
      )
      .catch((error: unknown) => {
        for (const entry of batch) entry.reject(error);
      })
      .finally(() => {
        inFlight--;
        flush();
      });
  }

  return (item) =>
    new Promise<R>((resolve, reject) => {
      pending.push({ item, resolve, reject });
      // After the current turn: calls made in the same turn go out together.
      queueMicrotask(flush);
    });
}

/**
 * Runs `work` for every item, `atOnce` at a time, in the items' order; the first failure is thrown
 * once the calls already started have ended. For file work: one operation's round trip through
 * node's thread pool costs several times the operation itself, and a hundred thousand of them one
 * after another added minutes to a big partition.
 */
export async function eachAtMost<T>(items: readonly T[], atOnce: number, work: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | undefined;
  const runner = async () => {
    while (next < items.length && !failure) {
      const index = next++;
      try {
        await work(items[index]!, index);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(atOnce, items.length) }, runner));
  if (failure) throw failure.error;
}

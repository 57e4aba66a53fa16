import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createBatcher, eachAtMost } from '../../src/domain/batch.js';

// The batcher behind shared completion calls: no added delay for the first call, everything that
// piles up meanwhile in the next, answers in order, a failed batch failing only its own items.

function deferred<T>() {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}

test('calls in one turn go together; calls made while a batch is out ride in the next, at most maxItems each', async () => {
  const sent: number[][] = [];
  const gates: ReturnType<typeof deferred<void>>[] = [];
  const double = createBatcher<number, number>(async (items) => {
    sent.push(items);
    const gate = deferred<void>();
    gates.push(gate);
    await gate.promise;
    return items.map((item) => item * 2);
  }, 3);
  const first = [double(1), double(2)];
  await Promise.resolve();
  await Promise.resolve();
  assert.deepEqual(sent, [[1, 2]], 'the first batch left at once, with both calls of the turn');
  const later = [double(3), double(4), double(5), double(6)];
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(sent.length, 1, 'one batch in flight at a time');
  gates[0]!.resolve();
  assert.deepEqual(await Promise.all(first), [2, 4]);
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(sent[1], [3, 4, 5], 'what piled up, capped at maxItems');
  gates[1]!.resolve();
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(sent[2], [6]);
  gates[2]!.resolve();
  assert.deepEqual(await Promise.all(later), [6, 8, 10, 12]);
});

test('a failed batch rejects its own items only; a wrong number of answers is an error, not a silent mismatch', async () => {
  let calls = 0;
  const flaky = createBatcher<string, string>(async (items) => {
    calls++;
    if (calls === 1) throw new Error('server unreachable');
    if (items.includes('short')) return [];
    return items.map((item) => item.toUpperCase());
  }, 10);
  await assert.rejects(flaky('a'), /server unreachable/);
  assert.equal(await flaky('b'), 'B', 'the next batch goes out after a failure');
  await assert.rejects(flaky('short'), /batch of 1 was answered with 0 results/);
});

test('with maxInFlight 2, a second batch leaves while the first is still out, and no third', async () => {
  const gates: ReturnType<typeof deferred<void>>[] = [];
  const sent: string[][] = [];
  const echo = createBatcher<string, string>(async (items) => {
    sent.push(items);
    const gate = deferred<void>();
    gates.push(gate);
    await gate.promise;
    return items;
  }, 10, 2);
  const answers = [echo('a')];
  await new Promise((resolve) => setImmediate(resolve));
  answers.push(echo('b'));
  await new Promise((resolve) => setImmediate(resolve));
  answers.push(echo('c'), echo('d'));
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(sent, [['a'], ['b']], 'two out at once, the rest waiting');
  gates[1]!.resolve();
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(sent[2], ['c', 'd'], 'a free place takes everything that piled up');
  gates[0]!.resolve();
  gates[2]!.resolve();
  assert.deepEqual(await Promise.all(answers), ['a', 'b', 'c', 'd']);
});

test('eachAtMost runs every item with at most N under way, and throws the first failure once the started ones end', async () => {
  let running = 0;
  let most = 0;
  const seen: number[] = [];
  await eachAtMost(Array.from({ length: 50 }, (_, index) => index), 4, async (item, index) => {
    assert.equal(item, index);
    running++;
    most = Math.max(most, running);
    await new Promise((resolve) => setTimeout(resolve, item % 3));
    seen.push(item);
    running--;
  });
  assert.equal(most, 4);
  assert.deepEqual([...seen].sort((a, b) => a - b), Array.from({ length: 50 }, (_, index) => index));

  const finished: number[] = [];
  await assert.rejects(
    eachAtMost([0, 1, 2, 3, 4, 5, 6, 7], 3, async (item) => {
      // Item 1 fails first, while 0 and 2 are still under way.
      await new Promise((resolve) => setTimeout(resolve, item === 1 ? 1 : 20));
      if (item === 1) throw new Error('item 1 broke');
      finished.push(item);
    }),
    /item 1 broke/,
  );
  // 0 and 2 were under way beside 1 and were waited for; nothing new started after the failure.
  assert.deepEqual(finished.sort(), [0, 2]);
  assert.equal(running, 0);
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createAuthThrottle, throttleKey } from '../../src/api/auth-throttle.js';
import { TesseraError } from '../../src/domain/errors.js';

// Failed authentication counted per address: slowed past a few failures, refused (429 with
// Retry-After) past the limit until the window ends, with a bounded number of addresses kept.

test('an address is slowed, then refused until its window ends; others are not affected', () => {
  let now = 1_000_000;
  const throttle = createAuthThrottle({ limit: 5, slowAfter: 2, windowMs: 60_000, maxAddresses: 100 }, () => now);
  const delays = Array.from({ length: 5 }, () => throttle.failed('198.51.100.7'));
  assert.deepEqual(delays, [0, 0, 100, 200, 400], 'held back more with every failure past the second');
  let refusal: unknown;
  try {
    throttle.check('198.51.100.7');
  } catch (error) {
    refusal = error;
  }
  assert.ok(refusal instanceof TesseraError);
  assert.equal(refusal.code, 'RESOURCE_EXHAUSTED');
  assert.match(refusal.message, /too many failed authentications from 198\.51\.100\.7: 5 in the last 60 s/);
  assert.equal(refusal.retryAfterSeconds, 60);
  throttle.check('198.51.100.8');
  now += 30_000;
  assert.throws(() => throttle.check('198.51.100.7'), (error: TesseraError) => error.retryAfterSeconds === 30);
  now += 30_000;
  throttle.check('198.51.100.7');
  assert.equal(throttle.failed('198.51.100.7'), 0, 'a new window starts from nothing');
});

test('at most maxAddresses are tracked, the oldest forgotten first', () => {
  const throttle = createAuthThrottle({ limit: 3, slowAfter: 3, windowMs: 60_000, maxAddresses: 1000 });
  for (let index = 0; index < 3; index++) throttle.failed('203.0.113.1');
  for (let index = 0; index < 100_000; index++) throttle.failed(`10.${(index >> 16) & 255}.${(index >> 8) & 255}.${index & 255}`);
  assert.equal(throttle.size(), 1000);
  throttle.check('203.0.113.1');
});

test('IPv6 clients are counted by their /64; IPv4 in IPv6 as IPv4', () => {
  assert.equal(throttleKey('2001:db8:1:2:aaaa::1'), '2001:db8:1:2::/64');
  assert.equal(throttleKey('2001:0db8:0001:0002:ffff:ffff:ffff:ffff'), '2001:db8:1:2::/64');
  assert.equal(throttleKey('2001:db8::1'), '2001:db8:0:0::/64');
  assert.equal(throttleKey('::1'), '0:0:0:0::/64');
  assert.equal(throttleKey('::ffff:192.0.2.10'), '192.0.2.10');
  assert.equal(throttleKey('192.0.2.10'), '192.0.2.10');
});

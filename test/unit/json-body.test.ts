import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseJsonBody } from '../../src/api/json-body.js';
import { TesseraError } from '../../src/domain/errors.js';

// Request bodies: parsed plainly when their text cannot hold a "__proto__" key or a NUL, through
// the checking reviver otherwise. Every spelling of either is refused, whichever way it went.

const refused = (pattern: RegExp, field?: string) => (error: unknown) => {
  assert.ok(error instanceof TesseraError, String(error));
  assert.equal(error.code, 'INVALID_ARGUMENT');
  assert.match(error.message, pattern);
  if (field !== undefined) assert.equal(error.fieldViolations[0]?.field, field);
  return true;
};

test('ordinary bodies parse, an empty one is no body, escapes decode', () => {
  assert.deepEqual(parseJsonBody('{"a":1,"b":[1,"x",null,{"c":true}]}'), { a: 1, b: [1, 'x', null, { c: true }] });
  assert.equal(parseJsonBody(''), undefined);
  assert.equal(parseJsonBody(' \n\t'), undefined);
  assert.deepEqual(parseJsonBody('{"name":"caf\\u00e9 \\"q\\""}'), { name: 'café "q"' }, 'an escape goes through the reviver and decodes the same');
  assert.deepEqual(parseJsonBody('{"text":"__proto__"}'), { text: '__proto__' }, 'only a key of that name is refused, not a value');
  assert.deepEqual(parseJsonBody('{"text":"a\\\\u0000b"}'), { text: 'a\\u0000b' }, 'an escaped backslash before u0000 is text, not a NUL');
});

test('a "__proto__" key is refused however it is spelled and wherever it is', () => {
  for (const body of ['{"__proto__":{"polluted":true}}', '{"a":[{"__proto__":1}]}', '{"\\u005f_proto__":{"polluted":true}}', '{"a":{"__proto\\u005f_":1}}', '{"\\u005F\\u005Fproto\\u005F\\u005F":1}']) {
    assert.throws(() => parseJsonBody(body), refused(/the request body holds a "__proto__" key/, 'body'), body);
  }
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
});

test('a NUL character is refused, naming its field, in a value or a key', () => {
  assert.throws(() => parseJsonBody('{"name":"nul\\u0000here"}'), refused(/NUL character \(\\u0000\) in the field "name"/, 'name'));
  assert.throws(() => parseJsonBody('{"tags":["ok","x\\u0000"]}'), refused(/NUL character/));
  assert.throws(() => parseJsonBody('{"ke\\u0000y":1}'), refused(/NUL character/));
  assert.throws(() => parseJsonBody('"\\u0000"'), refused(/NUL character \(\\u0000\)$/, 'body'));
  // Not valid JSON at all: a raw NUL is a control character JSON does not allow unescaped.
  assert.throws(() => parseJsonBody('{"a":"x\u0000y"}'), refused(/not valid JSON/, 'body'));
});

test('text that is not JSON says so', () => {
  for (const body of ['{"a":', '[1,2', '{a:1}', 'nul']) assert.throws(() => parseJsonBody(body), refused(/^the request body is not valid JSON: /, 'body'), body);
});

test('bodies nested deeper than 64 levels are refused; brackets inside strings do not count', () => {
  const nested = (depth: number, open = '[', close = ']') => open.repeat(depth) + close.repeat(depth);
  assert.deepEqual(parseJsonBody(nested(64)), JSON.parse(nested(64)), '64 levels are fine');
  assert.throws(() => parseJsonBody(nested(65)), refused(/nests objects and arrays more than 64 levels deep \(at character 64\)/, 'body'));
  assert.throws(() => parseJsonBody(nested(20_000)), refused(/more than 64 levels deep/));
  const objects = '{"a":'.repeat(65) + '1' + '}'.repeat(65);
  assert.throws(() => parseJsonBody(objects), refused(/more than 64 levels deep/));
  // Brackets in strings, with escaped quotes and backslashes around them, are text.
  const text = `[${Array(40).fill('"[[[[\\"[[[[\\\\"').join(',')}]`;
  assert.equal((parseJsonBody(text) as string[]).length, 40);
  const tricky = JSON.stringify({ a: '\\', b: '"'.repeat(3) + '['.repeat(100), c: [[['\\"[']]] });
  assert.deepEqual(parseJsonBody(tricky), JSON.parse(tricky));
  // An unterminated string is JSON.parse's to refuse.
  assert.throws(() => parseJsonBody('["abc'), refused(/not valid JSON/));
});

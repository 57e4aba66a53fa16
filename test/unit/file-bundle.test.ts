import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TesseraError } from '../../src/domain/errors.js';
import { decodeBundle, encodeBundle } from '../../src/domain/file-bundle.js';

// The framing of many small output files in one upload body: what goes in comes out byte for
// byte, and a broken or hostile body is refused whole, saying which file and what is wrong.

const refused = (pattern: RegExp) => (error: unknown) => {
  assert.ok(error instanceof TesseraError, String(error));
  assert.equal(error.code, 'INVALID_ARGUMENT');
  assert.match(error.message, pattern);
  return true;
};

test('files come back as they went in: empty ones, binary ones, non-ASCII names, any order of indexes', () => {
  const files = [
    { index: 7, name: 'data_7.bin', bytes: new Uint8Array() },
    { index: 0, name: 'naïve/résumé.txt', bytes: Buffer.from('hello') },
    { index: 4_000_000, name: 'x', bytes: Uint8Array.from({ length: 70_000 }, (_, index) => index % 256) },
  ];
  const decoded = decodeBundle(encodeBundle(files));
  assert.deepEqual(decoded.map((file) => [file.index, file.name, Buffer.from(file.bytes).toString('base64')]), files.map((file) => [file.index, file.name, Buffer.from(file.bytes).toString('base64')]));
  assert.deepEqual(decodeBundle(Buffer.alloc(0)), [], 'an empty body is an empty bundle');
});

test('a broken or hostile bundle is refused, naming the file and what is wrong', () => {
  const good = encodeBundle([{ index: 0, name: 'a', bytes: Buffer.from('abc') }, { index: 1, name: 'b', bytes: Buffer.from('def') }]);
  // Cut inside the second file's bytes, inside its header, and one byte past the end.
  assert.throws(() => decodeBundle(good.subarray(0, good.length - 1)), refused(/file 1 of the bundle \(at byte 14\): its name and bytes need 4 bytes and 3 are left/));
  assert.throws(() => decodeBundle(good.subarray(0, 20)), refused(/file 1 of the bundle \(at byte 14\): its header needs 10 bytes and 6 are left/));
  assert.throws(() => decodeBundle(Buffer.concat([good, Buffer.from([0])])), refused(/file 2 of the bundle \(at byte 28\): its header needs 10 bytes and 1 are left/));
  // A size far past the body (4 GiB - 1) is refused without allocating anything.
  const huge = Buffer.from(good);
  huge.writeUInt32BE(0xffffffff, 6);
  assert.throws(() => decodeBundle(huge), refused(/file 0 .*need 4294967296 bytes and 18 are left/));
  // Names: empty, too long, not UTF-8, with a NUL.
  const named = (name: Buffer) => {
    const header = Buffer.alloc(10);
    header.writeUInt16BE(name.length, 4);
    return Buffer.concat([header, name]);
  };
  assert.throws(() => decodeBundle(named(Buffer.alloc(0))), refused(/its name is 0 bytes long; names are 1 to 1024/));
  assert.throws(() => decodeBundle(named(Buffer.alloc(1025, 0x61))), refused(/its name is 1025 bytes long/));
  assert.throws(() => decodeBundle(named(Buffer.from([0xff, 0xfe]))), refused(/is not valid UTF-8 text/));
  assert.throws(() => decodeBundle(named(Buffer.from('a\u0000b'))), refused(/holds a NUL character/));
  // A real U+FFFD in a name is valid UTF-8 and stays.
  assert.equal(decodeBundle(encodeBundle([{ index: 0, name: 'a\uFFFDb', bytes: new Uint8Array() }]))[0]!.name, 'a\uFFFDb');
  // The same index twice would store two files under one output.
  assert.throws(() => decodeBundle(encodeBundle([{ index: 3, name: 'a', bytes: new Uint8Array() }, { index: 3, name: 'b', bytes: new Uint8Array() }])), refused(/file 1 .*index 3 appears twice/));
});

import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { packFolder, unpackArchive } from '../../src/blobs/archive.js';
import { TesseraError } from '../../src/domain/errors.js';
import { LogCollector } from '../../src/worker/task-logs.js';
import { levelOf } from '../../src/worker/log-levels.js';
import { appEntries, tarArchive } from '../helpers/tar.js';

// Component archives and task logs, on their own: the same folder always packs to the same bytes
// and unpacks to the same tree; what an unpack refuses leaves nothing behind.

const LIMITS = { maxBytes: 16 * 1024 * 1024, maxEntries: 1000 };

function scratch(): string {
  return mkdtempSync(path.join(tmpdir(), 'tessera-archive-test-'));
}

function tree(dir: string, prefix = ''): string[] {
  return readdirSync(dir).sort().flatMap((name) => {
    const full = path.join(dir, name);
    const info = statSync(full);
    const label = `${prefix}${name}`;
    return info.isDirectory() ? [`${label}/`, ...tree(full, `${label}/`)] : [`${label} ${info.mode & 0o777} ${readFileSync(full).toString('base64')}`];
  });
}

test('a folder packs to the same bytes every time and unpacks to the same tree', async () => {
  const root = scratch();
  try {
    const source = path.join(root, 'source');
    const deep = `app/${'nested-folder-name/'.repeat(9)}module.py`;
    mkdirSync(path.dirname(path.join(source, deep)), { recursive: true });
    writeFileSync(path.join(source, 'manifest.json'), '{"name": "x", "entrypoint": "main.py"}');
    writeFileSync(path.join(source, 'app', 'main.py'), 'print("hi")\n');
    chmodSync(path.join(source, 'app', 'main.py'), 0o755);
    writeFileSync(path.join(source, 'app', 'empty.txt'), '');
    writeFileSync(path.join(source, deep), 'x = 1\n');
    mkdirSync(path.join(source, 'app', '__pycache__'));
    writeFileSync(path.join(source, 'app', '__pycache__', 'main.cpython-311.pyc'), 'junk');
    assert.ok(deep.length > 100, 'the long path needs a PAX header');

    const first = await packFolder(source);
    const second = await packFolder(source);
    assert.deepEqual(first, second, 'deterministic: the content hash names the folder');
    const target = path.join(root, 'target');
    const unpacked = await unpackArchive(first, target, LIMITS);
    assert.deepEqual(unpacked, { files: 4, bytes: Buffer.byteLength('{"name": "x", "entrypoint": "main.py"}') + 12 + 6 });
    const expected = tree(source).filter((line) => !line.includes('__pycache__'));
    assert.deepEqual(tree(target), expected);
    assert.equal(statSync(path.join(target, 'app', 'main.py')).mode & 0o100, 0o100, 'the exec bit survives');

    // A plain (not gzipped) tar unpacks too, and a link inside the folder is allowed.
    const plain = path.join(root, 'plain');
    await unpackArchive(tarArchive([...appEntries('plain'), { name: 'app/current', type: '2', linkname: 'main.py' }]), plain, LIMITS);
    assert.equal(readFileSync(path.join(plain, 'app', 'current'), 'utf8'), 'print("hello")\n');

    symlinkSync('/etc/passwd', path.join(source, 'app', 'passwd'));
    await assert.rejects(packFolder(source), /"app\/passwd" is a symbolic link/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('refusals leave the target empty, and writing through an in-archive link is refused', async () => {
  const root = scratch();
  try {
    const cases: [string, Buffer, RegExp][] = [
      ['through a link', tarArchive([...appEntries('a'), { name: 'app/out', type: '2', linkname: '.' }, { name: 'app/out/x.py', data: 'x' }]), /would be written through the link "app\/out"/],
      ['corrupt checksum', (() => {
        const archive = tarArchive(appEntries('b'));
        archive[1024 + 5] = archive[1024 + 5]! ^ 0xff; // inside the second header
        return archive;
      })(), /truncated or corrupt: bad header checksum/],
      ['truncated', tarArchive([...appEntries('c'), { name: 'app/big', data: Buffer.alloc(5000) }]).subarray(0, 2600), /truncated or corrupt/],
      ['too many entries', tarArchive(Array.from({ length: 20 }, (_, index) => ({ name: `f${index}`, data: 'x' }))), /more than 10 entries/],
    ];
    for (const [what, archive, message] of cases) {
      const target = path.join(root, what.replace(/ /g, '-'));
      await assert.rejects(unpackArchive(archive, target, { maxBytes: 1 << 20, maxEntries: 10 }), (error: unknown) => {
        assert.ok(error instanceof TesseraError, what);
        assert.equal(error.code, 'INVALID_ARGUMENT');
        assert.match(error.message, message, what);
        return true;
      });
      assert.deepEqual(readdirSync(target), [], `${what}: nothing is left`);
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('task logs: split into lines, levels read from the text, bounded to the first and last lines', () => {
  assert.equal(levelOf('ERROR: boom', 'stdout'), 'ERROR');
  assert.equal(levelOf('WARNING:root:careful', 'stdout'), 'WARN');
  assert.equal(levelOf('[debug] detail', 'stderr'), 'DEBUG');
  assert.equal(levelOf('level=info msg=ok', 'stderr'), 'INFO');
  assert.equal(levelOf('plain words', 'stdout'), 'INFO');
  assert.equal(levelOf('Traceback (most recent call last):', 'stderr'), 'ERROR');

  const logs = new LogCollector(10);
  logs.write('stdout', Buffer.from('one\ntw'));
  logs.write('stderr', Buffer.from('err\n'));
  logs.write('stdout', Buffer.from('o\r\n'));
  for (let line = 0; line < 100; line++) logs.write('stdout', Buffer.from(`line ${line}\n`));
  logs.write('stdout', Buffer.from('last, unterminated'));
  const lines = logs.lines();
  assert.deepEqual(lines.slice(0, 5).map((line) => line.line), ['one', 'err', 'two', 'line 0', 'line 1']);
  assert.equal(lines[1]!.stream, 'stderr');
  assert.match(lines[5]!.line, /… 94 lines left out/);
  assert.deepEqual(lines.slice(6).map((line) => line.line), ['line 96', 'line 97', 'line 98', 'line 99', 'last, unterminated']);

  // A line of 50 MB, written in pieces, is one line cut at 4,096 characters and marked; a UTF-8
  // character split between two writes is whole.
  const long = new LogCollector(10);
  long.write('stdout', Buffer.from('é'.slice(0, 1)));
  const half = Buffer.from('€');
  long.write('stdout', half.subarray(0, 1));
  long.write('stdout', half.subarray(1));
  const block = Buffer.alloc(1 << 20, 'x');
  for (let piece = 0; piece < 50; piece++) long.write('stdout', block);
  long.write('stdout', Buffer.from('\nafter\n'));
  const [cut, after] = long.lines();
  assert.equal(cut!.line.slice(0, 2), 'é€');
  assert.match(cut!.line, new RegExp(`^é€x{${4096 - 5}}… \\(${50 * 2 ** 20 - (4096 - 5)} more bytes of this line left out\\)$`));
  assert.equal(after!.line, 'after');
});

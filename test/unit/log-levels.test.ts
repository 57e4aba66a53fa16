import assert from 'node:assert/strict';
import test from 'node:test';
import { LevelReader, levelOf, namedLevel } from '../../src/worker/log-levels.js';
import { LogCollector } from '../../src/worker/task-logs.js';

// A line's level is what the line says, wherever it was written: python's logging writes INFO to
// stderr, so stderr alone makes nothing an error.

test('python logging\'s default format and common prefixes name the level', () => {
  const cases: [string, string | undefined][] = [
    ['INFO:root:starting', 'INFO'],
    ['WARNING:app.db:slow query', 'WARN'],
    ['ERROR:root:it broke', 'ERROR'],
    ['CRITICAL:root:gone', 'FATAL'],
    ['DEBUG:urllib3.connectionpool:Starting new HTTPS connection', 'DEBUG'],
    ['INFO  chunk 3: 120 words', 'INFO'],
    ['WARN disk almost full', 'WARN'],
    ['[info] ready', 'INFO'],
    ['[ERROR] failed', 'ERROR'],
    ['<warning> old format', 'WARN'],
    ['Error: ENOENT: no such file', 'ERROR'],
    ['warning: deprecated', 'WARN'],
    ['level=debug msg="cache miss"', 'DEBUG'],
    ['{"time":"2026-12-07T22:00:00Z","level":"warn","msg":"x"}', 'WARN'],
    ['2026-12-07 22:15:39,123 INFO starting', 'INFO'],
    ['2026-12-07 22:15:39,123 - app.worker - WARNING - retrying', 'WARN'],
    ['[2026-12-07T22:15:39.123Z] [ERROR] boom', 'ERROR'],
    ['22:15:39 DEBUG detail', 'DEBUG'],
    // Prose that starts with a level's word names no level.
    ['Information about the chunk', undefined],
    ['error handling done', undefined],
    ['Infos: 3', undefined],
    ['plain words', undefined],
  ];
  for (const [line, level] of cases) assert.equal(namedLevel(line), level, line);
});

test('a line naming no level is INFO on stdout and UNKNOWN on stderr, not ERROR', () => {
  assert.equal(levelOf('plain words', 'stdout'), 'INFO');
  assert.equal(levelOf('plain words', 'stderr'), 'UNKNOWN');
  assert.equal(levelOf('INFO:root:on stderr, as python logs', 'stderr'), 'INFO');
  assert.equal(levelOf('Traceback (most recent call last):', 'stderr'), 'ERROR');
});

test('a multi-line record keeps its first line\'s level; a traceback is ERROR to its exception line', () => {
  const reader = new LevelReader('stderr');
  const levels = [
    'INFO:root:config:',
    '  workers: 4',
    'Traceback (most recent call last):',
    '  File "/component/main.py", line 3, in <module>',
    '    main()',
    'ValueError: bad input',
    'cleaning up',
    'WARNING:root:left 2 files',
    '',
  ].map((line) => reader.levelOf(line));
  assert.deepEqual(levels, ['INFO', 'INFO', 'ERROR', 'ERROR', 'ERROR', 'ERROR', 'UNKNOWN', 'WARN', 'WARN']);
});

test('a collector streams its first half and keeps the rest for the report, never both', () => {
  const logs = new LogCollector(6);
  let told = 0;
  logs.onLine = () => void told++;
  for (let line = 0; line < 2; line++) logs.write('stdout', Buffer.from(`line ${line}\n`));
  assert.equal(told, 2);
  const first = logs.takeLive(10, 10_000);
  assert.deepEqual(first.map((line) => line.line), ['line 0', 'line 1']);
  // Under way, nothing more is taken; a failed call gives the lines back.
  assert.deepEqual(logs.takeLive(10, 10_000), []);
  logs.confirmLive(false);
  assert.equal(logs.takeLive(10, 10_000).length, 2);
  logs.confirmLive(true);
  for (let line = 2; line < 20; line++) logs.write('stdout', Buffer.from(`line ${line}\n`));
  // The head's last line, then a notice that later lines wait for the end.
  const second = logs.takeLive(10, 10_000);
  assert.deepEqual(second.map((line) => line.line.slice(0, 18)), ['line 2', '… later lines are ']);
  logs.confirmLive(true);
  assert.equal(logs.hasLive, false);
  const rest = logs.lines().map((line) => line.line);
  assert.deepEqual(rest, ['… 14 lines left out (TESSERA_MAX_LOG_LINES) …', 'line 17', 'line 18', 'line 19']);
});

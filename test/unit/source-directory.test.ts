import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sourceDirectory } from '../../src/engine/source-directory.js';

// A source's listing as ByteNite's directory model: folders nested from the object keys.

const file = (path: string, size = '1') => ({ name: path.split('/').pop()!, path, size });

test('a bucket prefix lists its files and nested folders, in the order met', () => {
  const listed = sourceDirectory('in/', [file('in/a.txt'), file('in/deep/er/b.txt', '2'), file('in/deep/c.txt', '3')]);
  assert.deepEqual(listed, {
    name: 'in',
    path: 'in',
    files: [file('in/a.txt')],
    directories: [{ name: 'deep', path: 'in/deep', files: [file('in/deep/c.txt', '3')], directories: [{ name: 'er', path: 'in/deep/er', files: [file('in/deep/er/b.txt', '2')], directories: [] }] }],
  });
});

test('a root naming one object lists the folder that holds it; an empty listing is an empty directory', () => {
  assert.deepEqual(sourceDirectory('in/colours.txt', [file('in/colours.txt')]), { name: 'in', path: 'in', files: [file('in/colours.txt')], directories: [] });
  assert.deepEqual(sourceDirectory('', []), { name: '', path: '', files: [], directories: [] });
  assert.deepEqual(sourceDirectory('', [file('top.txt')]).files, [file('top.txt')]);
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TesseraError } from '../../src/domain/errors.js';
import { parseTemplate } from '../../src/engine/catalog.js';

// Templates as developers push them: ByteNite's default_params, and named presets.

const base = { id: 't1', app: 'a', partitioner: 'passthrough', assembler: 'passthrough' };

function refused(raw: unknown, field: string, message: RegExp): void {
  assert.throws(() => parseTemplate(raw, 'template.json', 'acct123'), (error: unknown) => {
    assert.ok(error instanceof TesseraError);
    assert.equal(error.fieldViolations[0]?.field, field);
    assert.match(error.message, message);
    return true;
  });
}

test('default_params is the template\'s params where params is absent; both at once is refused', () => {
  assert.deepEqual(parseTemplate({ ...base, default_params: { app: { depth: 2 } } }, 'template.json', 'acct123').params, { app: { depth: 2 } });
  assert.deepEqual(parseTemplate({ ...base, params: { app: { depth: 3 } } }, 'template.json', 'acct123').params, { app: { depth: 3 } });
  refused({ ...base, params: {}, default_params: {} }, 'template.default_params', /both params and default_params/);
  refused({ ...base, default_params: [1] }, 'template.default_params', /must be a JSON object/);
});

test('presets are named param sets, names unique, each checked', () => {
  const parsed = parseTemplate({ ...base, presets: [{ name: 'fast', params: { app: { q: 1 } } }, { name: 'best', description: 'slow', params: {} }] }, 'template.json', 'acct123');
  assert.deepEqual(parsed.presets, [{ name: 'fast', description: '', params: { app: { q: 1 } } }, { name: 'best', description: 'slow', params: {} }]);
  assert.equal(parseTemplate(base, 'template.json', 'acct123').presets, undefined);
  refused({ ...base, presets: { fast: {} } }, 'template.presets', /must be a list/);
  refused({ ...base, presets: [{ name: 'a/b', params: {} }] }, 'template.presets[0].name', /"a\/b" must be 1-64 letters/);
  refused({ ...base, presets: [{ name: 'x', params: {} }, { name: 'x', params: {} }] }, 'template.presets[1].name', /"x" is used twice/);
  refused({ ...base, presets: [{ name: 'x', params: [] }] }, 'template.presets[0].params', /must be an object/);
});

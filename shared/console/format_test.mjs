// Tests of how the console writes values (static/format.mjs).
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { defaultRange, describeHead, formatTemp } from './static/format.mjs';

test('defaultRange is the 30 local days up to today', () => {
  assert.deepEqual(defaultRange(new Date(2026, 2, 5, 13, 0)), { from: '2026-02-04', to: '2026-03-05' });
  assert.deepEqual(defaultRange(new Date(2026, 0, 1)), { from: '2025-12-03', to: '2026-01-01' });
});

test('describeHead: text, an ellipsis when the message is longer, or its size', () => {
  const b64 = (t) => Buffer.from(t).toString('base64');
  assert.equal(describeHead({ head: b64('{"v":1}'), head_text: '{"v":1}', size: 7 }), '{"v":1}');
  assert.equal(describeHead({ head: b64('abcd'), head_text: 'abcd', size: 4000 }), 'abcd…');
  assert.equal(describeHead({ head: b64('ab€'), head_text: 'ab', size: 9 }), 'ab…', 'the text of a head that cut a character');
  assert.equal(describeHead({ head: '', head_text: '', size: 0 }), '');
  assert.equal(describeHead({ head: b64('\xff\xfe'), size: 300 }), '(not text, 300 bytes)');
});

test('formatTemp', () => {
  assert.equal(formatTemp(4.25), '4.25 °C');
  assert.equal(formatTemp(-0.5), '-0.50 °C');
  assert.equal(formatTemp(null), '–');
  assert.equal(formatTemp(NaN), '–');
});

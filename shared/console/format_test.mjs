// Tests of how the console writes values (static/format.mjs).
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { browserZone, defaultRange, describeHead, formatDuration, formatTemp, formatTime, nextDay } from './static/format.mjs';

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

test('formatTime writes the time in the zone it names', () => {
  const at = '2026-07-01T12:05:03Z';
  assert.equal(formatTime(at, 'Europe/Berlin', 'en-GB'), '1 Jul 2026, 14:05:03 Europe/Berlin');
  assert.equal(formatTime(at, 'UTC', 'en-GB'), '1 Jul 2026, 12:05:03 UTC');
  assert.equal(formatTime(at, 'Asia/Kathmandu', 'en-GB'), '1 Jul 2026, 17:50:03 Asia/Kathmandu');
  assert.equal(formatTime(new Date(at), 'America/New_York', 'en-GB'), '1 Jul 2026, 08:05:03 America/New_York');
  assert.equal(formatTime(null, 'UTC'), '–');
  assert.equal(formatTime('not a time', 'UTC'), 'not a time');
  assert.match(formatTime(at, browserZone()), new RegExp(`${browserZone().replace('/', '\\/')}$`), 'the browser\'s zone is named too');
});

test('formatDuration: the two largest units', () => {
  const cases = [[0, '0 s'], [45.4, '45 s'], [60, '1 min 00 s'], [125, '2 min 05 s'], [3600, '1 h 00 min'],
    [7500, '2 h 05 min'], [86400, '1 d 0 h'], [90061, '1 d 1 h'], [-1, '–'], [null, '–'], [NaN, '–']];
  for (const [secs, want] of cases) assert.equal(formatDuration(secs), want, `formatDuration(${secs})`);
});

test('nextDay crosses months, years and leap days', () => {
  assert.equal(nextDay('2026-01-31'), '2026-02-01');
  assert.equal(nextDay('2026-12-31'), '2027-01-01');
  assert.equal(nextDay('2028-02-28'), '2028-02-29');
  assert.equal(nextDay('2026-03-29'), '2026-03-30', 'a day of a clock change is a calendar day');
});

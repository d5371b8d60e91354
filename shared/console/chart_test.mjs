// Tests of the chart's geometry (static/chart.mjs).
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { chartSize, layout, niceStep, thin } from './static/chart.mjs';

const t0 = Date.parse('2026-07-01T00:00:00Z');
const minute = 60_000;

test('niceStep is 1, 2 or 5 times a power of ten', () => {
  const cases = [[10, 5, 2], [7, 5, 2], [1, 5, 0.2], [0.3, 5, 0.1], [240, 5, 50], [0, 5, 1], [NaN, 5, 1]];
  for (const [span, n, want] of cases) assert.ok(Math.abs(niceStep(span, n) - want) < 1e-12, `niceStep(${span}, ${n}) = ${niceStep(span, n)}, want ${want}`);
});

test('thin keeps each column\'s lowest and highest reading, in time order', () => {
  const points = Array.from({ length: 1000 }, (_, i) => ({ t: t0 + i, v: i === 500 ? 99 : i === 501 ? -99 : i % 7 }));
  const out = thin(points, t0, t0 + 1000, 10);
  assert.ok(out.length <= 20, `thin kept ${out.length} readings for 10 columns`);
  assert.ok(out.some((p) => p.v === 99) && out.some((p) => p.v === -99), 'the peaks stay');
  for (let i = 1; i < out.length; i++) assert.ok(out[i].t > out[i - 1].t, 'in time order');
  const few = points.slice(0, 15);
  assert.equal(thin(few, t0, t0 + 1000, 10), few, 'few readings are kept as they are');
});

test('layout: readings inside the range, limits and alarm periods where they fall', () => {
  const points = [
    { t: t0 + 60 * minute, v: 4 }, { t: t0, v: 2 }, { t: t0 + 30 * minute, v: 9 }, // out of order: sorted
    { t: t0 - minute, v: 50 }, // before the range: left out
  ];
  const l = layout({ points, from: t0, to: t0 + 60 * minute, low: 2, high: 8, zone: 'UTC', locale: 'en-GB',
    periods: [{ from: t0 + 20 * minute, to: t0 + 40 * minute, kind: 'high' }, { from: t0 - 99 * minute, to: t0 - 90 * minute, kind: 'low' }] });
  const { plot } = l;
  assert.equal(l.width, chartSize.width);
  assert.equal(l.shown, 3);
  const moves = l.path.split(' ');
  assert.equal(moves.length, 3);
  assert.match(moves[0], /^M/);
  const xy = moves.map((m) => m.slice(1).split(',').map(Number));
  assert.equal(xy[0][0], plot.left, 'the first reading at the left edge');
  assert.equal(xy[2][0], plot.right, 'the last at the right edge');
  assert.ok(xy[1][1] < xy[0][1], 'a higher value is drawn higher');
  const high = l.limits.find((x) => x.kind === 'high');
  const low = l.limits.find((x) => x.kind === 'low');
  assert.ok(high && low);
  assert.ok(high.y < low.y);
  assert.ok(xy[1][1] < high.y && xy[2][1] > high.y, '9 above the high line, 4 below it');
  assert.equal(low.y, xy[0][1], 'a reading on the low limit sits on its line');
  assert.equal(l.bands.length, 1, 'a period outside the range is not drawn');
  const mid = (plot.left + plot.right) / 2;
  assert.ok(Math.abs(l.bands[0].x + l.bands[0].width / 2 - mid) < 1, 'the period is centred as it is in the range');
  assert.equal(l.xTicks[0].label, '00:00');
  assert.equal(l.xTicks.at(-1).label, '01:00');
  for (const t of l.yTicks) assert.ok(t.y >= plot.top - 0.5 && t.y <= plot.bottom + 0.5, `tick ${t.label} inside the plot`);
});

test('layout writes time labels in the zone it is given', () => {
  const l = layout({ points: [], from: t0, to: t0 + 60 * minute, low: null, high: null, periods: [], zone: 'Asia/Kolkata', locale: 'en-GB' });
  assert.equal(l.xTicks[0].label, '05:30');
  assert.equal(l.path, '');
  assert.deepEqual(l.limits, []);
  const week = layout({ points: [], from: t0, to: t0 + 7 * 1440 * minute, low: null, high: null, periods: [], zone: 'UTC', locale: 'en-GB' });
  assert.equal(week.xTicks[0].label, '1 Jul');
});

test('layout lifts the pen over a gap in the readings', () => {
  const points = [];
  for (let i = 0; i < 30; i++) points.push({ t: t0 + i * minute, v: 5 });
  for (let i = 0; i < 30; i++) points.push({ t: t0 + (300 + i) * minute, v: 6 });
  const l = layout({ points, from: t0, to: t0 + 330 * minute, low: null, high: null, periods: [], zone: 'UTC' });
  assert.equal(l.path.split(' ').filter((m) => m.startsWith('M')).length, 2);
});

test('layout fits the width it is given, with fewer time labels when narrow', () => {
  const narrow = layout({ points: [{ t: t0, v: 1 }, { t: t0 + 60 * minute, v: 2 }], from: t0, to: t0 + 60 * minute, low: null, high: null,
    periods: [], zone: 'UTC', width: 340 });
  assert.equal(narrow.width, 340);
  assert.equal(narrow.xTicks.length, 4);
  assert.equal(narrow.xTicks.at(-1).x, narrow.plot.right);
  assert.ok(narrow.plot.right <= 340);
  assert.equal(layout({ points: [], from: t0, to: t0 + 1, low: null, high: null, periods: [], zone: 'UTC', width: 10 }).width, 320);
});

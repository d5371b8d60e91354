// @ts-check
// A sensor's readings as a line chart, drawn as SVG by hand: its limits as
// lines and its alarm periods shaded. layout() is the geometry (no DOM, so
// `node --test` runs it); chartSvg() turns it into elements.
//
// Hand-written rather than a vendored chart library: the console needs one
// line chart with horizontal lines and shaded spans, far less than any
// library carries; a library would be a second code base to audit and pin,
// and most set inline styles (style="..."), which the console's CSP
// (style-src 'self') refuses.

/**
 * @typedef {{ t: number, v: number }} Point a reading: time (ms since the epoch) and value (°C)
 * @typedef {{ from: number, to: number, kind: string }} Period an alarm's span (ms), clipped to the chart
 * @typedef {{ x: number, label: string }} XTick
 * @typedef {{ y: number, label: string }} YTick
 * @typedef {{ kind: 'low' | 'high', y: number, label: string }} LimitLine
 * @typedef {{ x: number, width: number, kind: string }} Band
 * @typedef {object} Layout
 * @property {number} width
 * @property {number} height
 * @property {{ left: number, top: number, right: number, bottom: number }} plot the drawing area
 * @property {string} path the readings as SVG path data ('' for none); a gap in the data lifts the pen
 * @property {LimitLine[]} limits
 * @property {Band[]} bands
 * @property {XTick[]} xTicks
 * @property {YTick[]} yTicks
 * @property {number} shown how many readings the path draws (after thinning)
 */

/**
 * The chart's default box in SVG user units; the page scales it to its
 * width, and asks for the width it has so that text keeps its size.
 */
export const chartSize = { width: 800, height: 300 };

const margin = { left: 56, right: 12, top: 12, bottom: 36 };

/**
 * A step of 1, 2 or 5 times a power of ten that cuts span into about n parts.
 * @param {number} span
 * @param {number} n
 */
export function niceStep(span, n) {
  if (!(span > 0) || !Number.isFinite(span)) return 1;
  const raw = span / n;
  const p = 10 ** Math.floor(Math.log10(raw));
  const f = raw / p;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * p;
}

/**
 * thin keeps at most two readings per column of the plot (its lowest and
 * highest, in time order), so a month of readings draws as fast as an hour
 * and every peak stays visible.
 * @param {Point[]} points sorted by time
 * @param {number} from
 * @param {number} to
 * @param {number} columns
 * @returns {Point[]}
 */
export function thin(points, from, to, columns) {
  if (points.length <= columns * 2 || to <= from) return points;
  /** @type {Point[]} */
  const out = [];
  let col = -1;
  /** @type {Point | null} */
  let lo = null;
  /** @type {Point | null} */
  let hi = null;
  const flush = () => {
    if (!lo || !hi) return;
    if (lo === hi) out.push(lo);
    else out.push(...(lo.t <= hi.t ? [lo, hi] : [hi, lo]));
  };
  for (const p of points) {
    const c = Math.floor(((p.t - from) / (to - from)) * columns);
    if (c !== col) {
      flush();
      col = c;
      lo = hi = p;
    } else {
      if (lo && p.v < lo.v) lo = p;
      if (hi && p.v > hi.v) hi = p;
    }
  }
  flush();
  return out;
}

/**
 * The chart's geometry for readings between from and to (ms), with the
 * sensor's limits (null: none) and its alarm periods; time labels are
 * written in zone.
 * @param {object} input
 * @param {Point[]} input.points in any order
 * @param {number} input.from
 * @param {number} input.to
 * @param {number | null} input.low
 * @param {number | null} input.high
 * @param {Period[]} input.periods
 * @param {string} input.zone an IANA time zone
 * @param {string} [input.locale]
 * @param {number} [input.width] the box's width (default chartSize's; at least 320)
 * @returns {Layout}
 */
export function layout({ points, from, to, low, high, periods, zone, locale, width = chartSize.width }) {
  width = Math.max(320, Math.round(width));
  const { height } = chartSize;
  const plot = { left: margin.left, top: margin.top, right: width - margin.right, bottom: height - margin.bottom };
  if (!(to > from)) to = from + 1;
  const inRange = points.filter((p) => p.t >= from && p.t <= to && Number.isFinite(p.v)).sort((a, b) => a.t - b.t);
  const drawn = thin(inRange, from, to, plot.right - plot.left);

  const values = drawn.map((p) => p.v);
  for (const l of [low, high]) if (l !== null && Number.isFinite(l)) values.push(l);
  let vmin = values.length ? Math.min(...values) : 0;
  let vmax = values.length ? Math.max(...values) : 10;
  if (vmax - vmin < 1) {
    const mid = (vmax + vmin) / 2;
    vmin = mid - 0.5;
    vmax = mid + 0.5;
  }
  const step = niceStep(vmax - vmin, 5);
  vmin = Math.floor(vmin / step) * step;
  vmax = Math.ceil(vmax / step) * step;

  const x = (/** @type {number} */ t) => plot.left + ((t - from) / (to - from)) * (plot.right - plot.left);
  const y = (/** @type {number} */ v) => plot.bottom - ((v - vmin) / (vmax - vmin)) * (plot.bottom - plot.top);
  const r = (/** @type {number} */ n) => Math.round(n * 10) / 10;

  // A gap much longer than the usual spacing is a time without readings,
  // drawn as one: the pen lifts rather than drawing a line across it.
  const gaps = [];
  for (let i = 1; i < inRange.length; i++) gaps.push(inRange[i].t - inRange[i - 1].t);
  gaps.sort((a, b) => a - b);
  const usual = gaps.length ? gaps[Math.floor(gaps.length / 2)] : 0;
  const gap = Math.max(usual * 10, (to - from) / 100);
  let path = '';
  drawn.forEach((p, i) => {
    const cmd = i === 0 || p.t - drawn[i - 1].t > gap ? 'M' : 'L';
    path += `${path ? ' ' : ''}${cmd}${r(x(p.t))},${r(y(p.v))}`;
  });

  /** @type {LimitLine[]} */
  const limits = [];
  if (low !== null && Number.isFinite(low)) limits.push({ kind: 'low', y: r(y(low)), label: `low ${low} °C` });
  if (high !== null && Number.isFinite(high)) limits.push({ kind: 'high', y: r(y(high)), label: `high ${high} °C` });

  /** @type {Band[]} */
  const bands = [];
  for (const p of periods) {
    const a = Math.max(p.from, from);
    const b = Math.min(p.to, to);
    if (b < a) continue;
    bands.push({ x: r(x(a)), width: Math.max(1, r(x(b) - x(a))), kind: p.kind });
  }

  /** @type {YTick[]} */
  const yTicks = [];
  const decimals = step < 1 ? Math.ceil(-Math.log10(step)) : 0;
  for (let v = vmin; v <= vmax + step / 2; v += step) yTicks.push({ y: r(y(v)), label: v.toFixed(decimals) });

  const span = to - from;
  const short = span <= 2 * 86400_000;
  const f = new Intl.DateTimeFormat(locale, short
    ? { timeZone: zone, hour: '2-digit', minute: '2-digit', ...(span > 86400_000 ? { weekday: 'short' } : {}) }
    : { timeZone: zone, month: 'short', day: 'numeric' });
  /** @type {XTick[]} */
  const xTicks = [];
  const n = width < 600 ? 3 : 5; // labels of a narrow chart would overlap
  for (let i = 0; i <= n; i++) {
    const t = from + (span * i) / n;
    xTicks.push({ x: r(x(t)), label: f.format(new Date(t)) });
  }
  return { width, height, plot, path, limits, bands, xTicks, yTicks, shown: drawn.length };
}

const svgNS = 'http://www.w3.org/2000/svg';

/**
 * An SVG element with attributes and children.
 * @param {string} tag
 * @param {Record<string, string | number>} attrs
 * @param {...(Node | string)} children
 */
function s(tag, attrs, ...children) {
  const el = document.createElementNS(svgNS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  el.append(...children);
  return el;
}

/**
 * The chart of a layout, titled for screen readers; the time axis names zone.
 * @param {Layout} l
 * @param {string} title
 * @param {string} zone
 * @returns {SVGSVGElement}
 */
export function chartSvg(l, title, zone) {
  const { plot } = l;
  const svg = /** @type {SVGSVGElement} */ (s('svg', { viewBox: `0 0 ${l.width} ${l.height}`, class: 'chart', role: 'img',
    'aria-label': title }, s('title', {}, title)));
  for (const b of l.bands) {
    svg.append(s('rect', { class: `band band-${b.kind}`, x: b.x, y: plot.top, width: b.width, height: plot.bottom - plot.top }));
  }
  for (const t of l.yTicks) {
    svg.append(s('line', { class: 'grid', x1: plot.left, x2: plot.right, y1: t.y, y2: t.y }),
      s('text', { class: 'tick', x: plot.left - 6, y: t.y + 4, 'text-anchor': 'end' }, t.label));
  }
  l.xTicks.forEach((t, i) => {
    const anchor = i === 0 ? 'start' : i === l.xTicks.length - 1 ? 'end' : 'middle';
    svg.append(s('line', { class: 'axis', x1: t.x, x2: t.x, y1: plot.bottom, y2: plot.bottom + 4 }),
      s('text', { class: 'tick', x: t.x, y: plot.bottom + 16, 'text-anchor': anchor }, t.label));
  });
  svg.append(s('text', { class: 'tick', x: plot.right, y: l.height - 2, 'text-anchor': 'end' }, `time (${zone})`),
    s('text', { class: 'tick', x: 4, y: plot.top + 4 }, '°C'));
  for (const lim of l.limits) {
    svg.append(s('line', { class: `limit limit-${lim.kind}`, x1: plot.left, x2: plot.right, y1: lim.y, y2: lim.y }),
      s('text', { class: `limit-label limit-${lim.kind}`, x: plot.right - 4, y: lim.y - 4, 'text-anchor': 'end' }, lim.label));
  }
  svg.append(s('line', { class: 'axis', x1: plot.left, x2: plot.left, y1: plot.top, y2: plot.bottom }),
    s('line', { class: 'axis', x1: plot.left, x2: plot.right, y1: plot.bottom, y2: plot.bottom }));
  if (l.path) svg.append(s('path', { class: 'series', d: l.path }));
  return svg;
}

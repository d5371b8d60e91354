// @ts-check
// #/sensors/{id}: a sensor's status, a chart of its readings over a chosen
// range (limits drawn, alarm periods shaded) with its CSV export, its alarms,
// its alarm settings (edited by those who manage sensors), its readings and
// daily averages; and the status badge, the device-key panel and the rotate
// button, which the client's sensor list shows too.

import { chartSize, chartSvg, layout } from '../chart.mjs';
import { displayZone, downloadButton, form, h, invalid, link, messageOf, pagedList, time } from '../dom.mjs';
import { defaultRange, formatDuration, formatTemp, isoDate, nextDay } from '../format.mjs';
import { can } from '../roles.mjs';
import { alarmList, loadUserNames } from './alarms.mjs';

/**
 * @typedef {{ measured_at: string, value: number, created_at: string, seq?: number }} Reading
 * @typedef {'online' | 'silent' | 'in_alarm' | 'unknown'} SensorStatus
 * @typedef {object} Sensor
 * @property {string} id
 * @property {string} client_id
 * @property {string} name
 * @property {string} device_id
 * @property {string} location
 * @property {string} unit
 * @property {number | null} alert_low
 * @property {number | null} alert_high
 * @property {number} alarm_delay_seconds
 * @property {number} alarm_hysteresis
 * @property {number} silence_after_seconds
 * @property {string | null} last_measured_at
 * @property {string | null} last_received_at
 * @property {SensorStatus} [status]
 * @property {Reading | null} [latest_reading] null before the first reading
 * @typedef {Sensor & { device_key: string }} SensorWithKey a sensor as created or re-keyed: its key shown once
 * @typedef {{ day: string, avg: number, min: number, max: number, count: number }} DailyAverage
 * @typedef {import('../api.mjs').Page<DailyAverage> & { from: string, to: string, timezone: string }} DailyAveragesPage
 */

const statusText = { online: 'online', silent: 'silent', in_alarm: 'in alarm', unknown: 'unknown' };

/**
 * A sensor's status as a badge (online, silent, in alarm, unknown).
 * @param {Sensor} s
 */
export function statusBadge(s) {
  const st = s.status || 'unknown';
  return h('span', { class: `badge status-${st}`, title: st === 'unknown' ? 'no reading yet' : undefined },
    /** @type {Record<string, string>} */ (statusText)[st] || st);
}

/**
 * When the sensor was last heard of: its newest reading's measured time and
 * when that reading was stored.
 * @param {Sensor} s
 */
export function lastSeen(s) {
  if (!s.last_received_at && !s.last_measured_at) return h('span', { class: 'muted' }, 'never');
  return h('span', { class: 'last-seen' }, 'measured ', time(s.last_measured_at), h('br', {}), 'received ', time(s.last_received_at));
}

/** At most this many pages of readings make one chart. */
const chartPages = 10;

/** The ranges the chart offers, by the value of its select. */
const ranges = { '6h': 6 * 3600_000, '24h': 86400_000, '7d': 7 * 86400_000, '30d': 30 * 86400_000 };

/**
 * A datetime-local input's value for d (the browser's zone, to the minute).
 * @param {Date} d
 */
function localInput(d) {
  const p = (/** @type {number} */ n) => String(n).padStart(2, '0');
  return `${isoDate(d)}T${p(d.getHours())}:${p(d.getMinutes())}`;
}

/**
 * @param {import('../api.mjs').SignedIn} signedIn
 * @param {string} id the sensor's id
 */
export async function viewSensor(signedIn, id) {
  const { session: { api }, me } = signedIn;
  /** @type {Sensor} */
  let s = await api('GET', '/sensors/{id}', { params: { id } });
  const keys = h('div', {});
  const latest = s.latest_reading;
  /** @param {Reading} r */
  const readingRow = (r) => h('tr', {}, h('td', {}, time(r.measured_at)), h('td', { class: 'num' }, formatTemp(r.value)),
    h('td', {}, time(r.created_at)), h('td', { class: 'num' }, r.seq ?? ''));
  const readings = pagedList(['Measured at', 'Value', 'Stored at', 'Seq'], 'No readings yet.',
    (cursor) => api('GET', '/sensors/{id}/readings', { params: { id }, query: { limit: 50, cursor } }), readingRow);

  const range = defaultRange(new Date());
  let query = { from: range.from, to: range.to, tz: '' };
  const rangeInfo = h('p', { class: 'muted' });
  /** @param {DailyAverage} d */
  const averageRow = (d) => h('tr', {}, h('td', {}, d.day), h('td', { class: 'num' }, formatTemp(d.avg)),
    h('td', { class: 'num' }, formatTemp(d.min)), h('td', { class: 'num' }, formatTemp(d.max)),
    h('td', { class: 'num' }, d.count));
  const averages = pagedList(['Day', 'Average', 'Min', 'Max', 'Readings'], 'No readings in this range.',
    async (cursor) => {
      rangeInfo.textContent = '';
      /** @type {DailyAveragesPage} */
      const page = await api('GET', '/sensors/{id}/daily-averages', {
        params: { id }, query: { ...query, limit: 100, cursor },
      });
      rangeInfo.textContent = `${page.from} to ${page.to}, days cut at midnight in ${page.timezone}, newest first`;
      return page;
    }, averageRow);
  const rangeForm = form([
    { name: 'from', label: 'From', type: 'date', value: range.from },
    { name: 'to', label: 'To (inclusive)', type: 'date', value: range.to },
    { name: 'tz', label: 'Time zone (empty: the client\'s)', placeholder: 'Europe/Berlin' },
  ], 'Show', async (v) => {
    if (v.from && v.to && v.from > v.to) throw invalid({ from: 'The first day must not be after the last.' });
    query = { from: v.from, to: v.to, tz: v.tz.trim() };
    const err = await averages.reload(false);
    if (err) throw err;
  }, { inline: true });

  const userNames = await loadUserNames(signedIn);
  const alarms = alarmList(signedIn, { filter: () => ({ sensor_id: id }), sensorNames: new Map([[s.id, s.name]]), userNames,
    showSensor: false });

  const chart = chartCard(api, () => s);
  const summary = h('p', { class: 'muted' });
  const status = h('p', {});
  const showSensor = () => {
    summary.replaceChildren(`device ${s.device_id}`, s.location ? ` · ${s.location}` : '', ` · reports in °${s.unit}`);
    status.replaceChildren('Status: ', statusBadge(s), ' · last reading ', lastSeen(s));
  };
  showSensor();
  const limits = limitsCard(api, me, s, (updated) => {
    s = { ...s, ...updated };
    showSensor();
    chart.redraw();
  });

  const refresh = h('button', { type: 'button', class: 'secondary', onclick: () => readings.reload() }, 'Refresh');
  const out = [
    h('p', {}, link(`#/clients/${encodeURIComponent(s.client_id)}`, '← Sensors of the client')),
    h('h1', {}, s.name),
    summary,
    status,
    h('p', {}, 'Latest: ', latest ? [h('strong', {}, formatTemp(latest.value)), ' at ', time(latest.measured_at)] : 'no reading yet'),
    can(me.role, 'manageSensors') && rotateButton(api, s, keys),
    keys,
    chart.el,
    h('section', { class: 'card' }, h('h2', {}, 'Alarms'), alarms.el),
    limits,
    h('section', { class: 'card' }, h('h2', {}, 'Readings (newest first)'), refresh, readings.el),
    h('section', { class: 'card' }, h('h2', {}, 'Daily averages'), rangeForm.el, rangeInfo, averages.el),
  ];
  await Promise.all([readings.reload(), averages.reload(), alarms.reload(), chart.redraw()]);
  return out;
}

/**
 * The chart card: a range to choose, the readings in it with the sensor's
 * limits and alarm periods, and the CSV export of that range.
 * @param {import('../api.mjs').Api} api
 * @param {() => Sensor} sensor the sensor as it now stands (its limits change)
 */
function chartCard(api, sensor) {
  const now = new Date();
  let from = new Date(now.getTime() - ranges['24h']);
  let to = now;
  let preset = '24h';
  const area = h('div', { class: 'chart-area' });
  const info = h('p', { class: 'muted' });
  const f = form([
    { name: 'range', label: 'Range', value: preset, options: [['6h', 'last 6 hours'], ['24h', 'last 24 hours'],
      ['7d', 'last 7 days'], ['30d', 'last 30 days'], ['custom', 'from … to …']] },
    { name: 'from', label: `From (${displayZone})`, type: 'datetime-local', value: localInput(from) },
    { name: 'to', label: `To (${displayZone})`, type: 'datetime-local', value: localInput(to) },
  ], 'Show', async (v) => {
    preset = v.range;
    if (preset === 'custom') {
      const a = new Date(v.from);
      const b = new Date(v.to);
      if (Number.isNaN(a.getTime())) throw invalid({ from: 'Give a date and time.' });
      if (Number.isNaN(b.getTime())) throw invalid({ to: 'Give a date and time.' });
      if (a >= b) throw invalid({ from: 'The start must be before the end.' });
      from = a;
      to = b;
    }
    await redraw();
  }, { inline: true });
  const exportButton = downloadButton('Export CSV', () => {
    const s = sensor();
    return api('GET', '/sensors/{id}/export.csv', {
      params: { id: s.id }, query: { from: from.toISOString(), to: to.toISOString(), tz: displayZone }, file: true,
    });
  });
  // The daily statistics of the days the chart's range touches (its end
  // is exclusive: a range ending at midnight takes no day after it).
  const exportDailyButton = downloadButton('Export daily statistics', () => {
    const s = sensor();
    const last = isoDate(new Date(to.getTime() - 1));
    return api('GET', '/sensors/{id}/export.csv', {
      params: { id: s.id }, query: { data: 'daily', from: isoDate(from), to: nextDay(last), tz: displayZone }, file: true,
    });
  });

  async function redraw() {
    if (preset !== 'custom') {
      to = new Date();
      from = new Date(to.getTime() - /** @type {Record<string, number>} */ (ranges)[preset]);
    }
    const s = sensor();
    /** @type {Reading[]} */
    const got = [];
    let cursor = '';
    let capped = false;
    for (let i = 0; ; i++) {
      /** @type {import('../api.mjs').Page<Reading>} */
      const page = await api('GET', '/sensors/{id}/readings', {
        params: { id: s.id }, query: { from: from.toISOString(), to: to.toISOString(), limit: 500, cursor },
      });
      got.push(...page.items);
      if (!page.has_more || !page.next_cursor) break;
      if (i + 1 >= chartPages) {
        capped = true;
        break;
      }
      cursor = page.next_cursor;
    }
    /** @type {import('../api.mjs').Page<import('./alarms.mjs').Alarm>} */
    // The alarms live in the range, those that started before it included.
    const alarms = await api('GET', '/alarms', { query: { sensor_id: s.id, from: from.toISOString(), to: to.toISOString(), limit: 100 } });
    const nowMs = Date.now();
    const periods = alarms.items.filter((a) => a.state !== 'withdrawn').map((a) => ({
      from: Date.parse(a.started_at),
      to: a.cleared_at ? Date.parse(a.cleared_at) : Math.max(nowMs, Date.parse(a.last_at)),
      kind: a.kind,
    }));
    const l = layout({
      points: got.map((r) => ({ t: Date.parse(r.measured_at), v: r.value })),
      from: from.getTime(), to: to.getTime(), low: s.alert_low, high: s.alert_high, periods, zone: displayZone,
      // The box as wide as the card has room for (before the first draw the
      // card is not on the page yet: the window's width less the margins),
      // so the labels keep their size on a phone.
      width: Math.min(chartSize.width, area.clientWidth || document.documentElement.clientWidth - 64),
    });
    area.replaceChildren(chartSvg(l, `Readings of ${s.name}`, displayZone));
    info.replaceChildren(`${got.length} readings from `, time(from.toISOString()), ' to ', time(to.toISOString()),
      capped ? ' (the newest stored; narrow the range to see all)' : '',
      periods.length ? ` · ${periods.length} alarm period(s) shaded` : '');
  }

  const el = h('section', { class: 'card' }, h('h2', {}, 'Chart'), f.el, area, info,
    h('p', { class: 'muted' }, 'Lines: the alert limits. Shaded: alarm periods (red above the high limit, blue below the low, grey silent).'),
    h('p', { class: 'row-actions' }, exportButton, exportDailyButton,
      h('span', { class: 'muted' }, `the chart's range, times and days in ${displayZone}`)));
  return { el, redraw };
}

/**
 * The sensor's alarm settings: a form for those who manage sensors, a list
 * for everyone else. onSaved gets the sensor as the API answered.
 * @param {import('../api.mjs').Api} api
 * @param {import('../api.mjs').User} me
 * @param {Sensor} s
 * @param {(s: Sensor) => void} onSaved
 */
function limitsCard(api, me, s, onSaved) {
  const title = h('h2', {}, 'Alarm settings');
  const num = (/** @type {number | null} */ v) => (v === null || v === undefined ? '' : String(v));
  if (!can(me.role, 'manageSensors')) {
    return h('section', { class: 'card' }, title, h('dl', { class: 'settings' },
      h('dt', {}, 'Low limit'), h('dd', {}, s.alert_low === null ? 'none' : formatTemp(s.alert_low)),
      h('dt', {}, 'High limit'), h('dd', {}, s.alert_high === null ? 'none' : formatTemp(s.alert_high)),
      h('dt', {}, 'Delay before an alarm opens'), h('dd', {}, formatDuration(s.alarm_delay_seconds)),
      h('dt', {}, 'Hysteresis (back inside by)'), h('dd', {}, `${s.alarm_hysteresis} °C`),
      h('dt', {}, 'Silent after'), h('dd', {}, formatDuration(s.silence_after_seconds))),
    h('p', { class: 'muted' }, 'Client admins change these.'));
  }
  const f = form([
    { name: 'alert_low', label: 'Low limit, °C (empty: none)', type: 'number', step: 'any', value: num(s.alert_low) },
    { name: 'alert_high', label: 'High limit, °C (empty: none)', type: 'number', step: 'any', value: num(s.alert_high) },
    { name: 'alarm_delay_seconds', label: 'Delay before an alarm opens, seconds', type: 'number', min: 0, step: 1,
      value: num(s.alarm_delay_seconds), required: true },
    { name: 'alarm_hysteresis', label: 'Hysteresis: back inside by, °C', type: 'number', min: 0, step: 'any',
      value: num(s.alarm_hysteresis), required: true },
    { name: 'silence_after_seconds', label: 'Silent after, seconds without a reading', type: 'number', min: 1, step: 1,
      value: num(s.silence_after_seconds), required: true },
  ], 'Save settings', async (v) => {
    const body = limitsBody(v);
    /** @type {Sensor} */
    const updated = await api('PATCH', '/sensors/{id}', { params: { id: s.id }, body });
    onSaved(updated);
    return 'Saved.';
  });
  return h('section', { class: 'card' }, title, f.el);
}

/**
 * The PATCH body of the alarm settings form: limits as numbers or null (an
 * empty field), the others as numbers; a field that is not a number throws
 * invalid() naming it.
 * @param {Record<string, string>} v
 */
export function limitsBody(v) {
  /** @type {Record<string, string>} */
  const bad = {};
  /** @type {Record<string, number | null>} */
  const body = {};
  for (const name of ['alert_low', 'alert_high']) {
    const t = (v[name] ?? '').trim();
    const n = Number(t);
    if (t === '') body[name] = null;
    else if (Number.isFinite(n)) body[name] = n;
    else bad[name] = 'must be a number, or empty for none';
  }
  for (const name of ['alarm_delay_seconds', 'alarm_hysteresis', 'silence_after_seconds']) {
    const t = (v[name] ?? '').trim();
    const n = Number(t);
    if (t === '' || !Number.isFinite(n) || n < 0) bad[name] = 'must be a number, zero or more';
    else if (name !== 'alarm_hysteresis' && !Number.isInteger(n)) bad[name] = 'must be a whole number of seconds';
    else body[name] = n;
  }
  if (body.alert_low !== null && body.alert_high !== null && body.alert_low !== undefined && body.alert_high !== undefined &&
      body.alert_low >= body.alert_high) {
    bad.alert_low = 'must be below the high limit';
  }
  if (Object.keys(bad).length) throw invalid(bad);
  return body;
}

/**
 * A button that replaces the sensor's device key (after a confirmation)
 * and shows the new key in keys.
 * @param {import('../api.mjs').Api} api
 * @param {Sensor} sensor
 * @param {HTMLElement} keys where the new key's panel goes
 */
export function rotateButton(api, sensor, keys) {
  const err = h('span', { class: 'field-error', role: 'alert' });
  const b = h('button', { type: 'button', class: 'secondary' }, 'Rotate key');
  b.addEventListener('click', async () => {
    if (!confirm(`Replace the device key of ${sensor.name}? The current key stops working at once.`)) return;
    err.replaceChildren();
    b.disabled = true;
    try {
      keys.replaceChildren(keyPanel(await api('POST', '/sensors/{id}/rotate-key', { params: { id: sensor.id } })));
      keys.scrollIntoView({ block: 'nearest' });
    } catch (e) {
      err.textContent = messageOf(e);
    } finally {
      b.disabled = false;
    }
  });
  return h('span', { class: 'row-actions' }, b, err);
}

/**
 * The device key panel: shown once, with the warning that it cannot be shown again.
 * @param {SensorWithKey} sensor
 */
export function keyPanel(sensor) {
  const copy = h('button', { type: 'button', class: 'secondary' }, 'Copy');
  const panel = h('div', { class: 'key-once', role: 'alert' },
    h('strong', {}, `Device key of ${sensor.name} (${sensor.device_id})`),
    h('p', {}, 'This key is shown only now. It is stored only as a hash and cannot be shown again: ' +
      'copy it into the device now. Any earlier key of this sensor no longer works.'),
    h('code', {}, sensor.device_key),
    h('div', { class: 'row-actions' }, copy,
      h('button', { type: 'button', onclick: () => panel.remove() }, 'I have stored it')));
  copy.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(sensor.device_key);
      copy.textContent = 'Copied';
    } catch {
      copy.textContent = 'Select and copy it by hand';
    }
  });
  return panel;
}

// @ts-check
// #/sensors/{id}: a sensor's readings and its daily averages for a date
// range; and the device-key panel and the rotate button, which the client's
// sensor list shows too.

import { form, h, invalid, link, messageOf, pagedList, time } from '../dom.mjs';
import { defaultRange, formatTemp } from '../format.mjs';
import { can } from '../roles.mjs';

/**
 * @typedef {{ measured_at: string, value: number, created_at: string, seq?: number }} Reading
 * @typedef {object} Sensor
 * @property {string} id
 * @property {string} client_id
 * @property {string} name
 * @property {string} device_id
 * @property {string} location
 * @property {string} unit
 * @property {number | null} alert_low
 * @property {number | null} alert_high
 * @property {Reading | null} [latest_reading] null before the first reading
 * @typedef {Sensor & { device_key: string }} SensorWithKey a sensor as created or re-keyed: its key shown once
 * @typedef {{ day: string, avg: number, min: number, max: number, count: number }} DailyAverage
 * @typedef {import('../api.mjs').Page<DailyAverage> & { from: string, to: string, timezone: string }} DailyAveragesPage
 */

/**
 * @param {import('../api.mjs').SignedIn} signedIn
 * @param {string} id the sensor's id
 */
export async function viewSensor({ session: { api }, me }, id) {
  /** @type {Sensor} */
  const s = await api('GET', '/sensors/{id}', { params: { id } });
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

  const refresh = h('button', { type: 'button', class: 'secondary', onclick: () => readings.reload() }, 'Refresh');
  const out = [
    h('p', {}, link(`#/clients/${encodeURIComponent(s.client_id)}`, '← Sensors of the client')),
    h('h1', {}, s.name),
    h('p', { class: 'muted' }, `device ${s.device_id}`, s.location ? ` · ${s.location}` : '', ` · reports in °${s.unit}`,
      s.alert_low !== null ? ` · alert below ${formatTemp(s.alert_low)}` : '',
      s.alert_high !== null ? ` · alert above ${formatTemp(s.alert_high)}` : ''),
    h('p', {}, 'Latest: ', latest ? [h('strong', {}, formatTemp(latest.value)), ' at ', time(latest.measured_at)] : 'no reading yet'),
    can(me.role, 'manageSensors') && rotateButton(api, s, keys),
    keys,
    h('section', { class: 'card' }, h('h2', {}, 'Readings (newest first)'), refresh, readings.el),
    h('section', { class: 'card' }, h('h2', {}, 'Daily averages'), rangeForm.el, rangeInfo, averages.el),
  ];
  await Promise.all([readings.reload(), averages.reload()]);
  return out;
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

// @ts-check
// #/clients/{id}: a client's sensors with each one's status, last reading
// and when it was last heard of, and the client's CSV export; admins and
// client admins create sensors and rotate device keys.

import { createCard, displayZone, downloadButton, form, h, invalid, link, pagedList } from '../dom.mjs';
import { defaultRange, formatTemp, nextDay } from '../format.mjs';
import { can } from '../roles.mjs';
import { keyPanel, lastSeen, rotateButton, statusBadge } from './sensor.mjs';

/**
 * @param {import('../api.mjs').SignedIn} signedIn
 * @param {string} id the client's id
 */
export async function viewClient({ session: { api }, me }, id) {
  /** @type {import('./clients.mjs').Client} */
  const client = await api('GET', '/clients/{id}', { params: { id } });
  const keys = h('div', {});
  const manage = can(me.role, 'manageSensors');
  /** @param {import('./sensor.mjs').Sensor} s */
  const row = (s) => h('tr', {},
    h('td', {}, link(`#/sensors/${encodeURIComponent(s.id)}`, s.name)),
    h('td', { class: 'mono' }, s.device_id),
    h('td', {}, statusBadge(s)),
    h('td', {}, s.location),
    h('td', { class: 'num' }, s.latest_reading ? formatTemp(s.latest_reading.value) : '–'),
    h('td', {}, s.latest_reading || s.last_received_at ? lastSeen(s) : h('span', { class: 'muted' }, 'no reading yet')),
    manage && h('td', {}, rotateButton(api, s, keys)));
  const list = pagedList(['Name', 'Device id', 'Status', 'Location', 'Latest', 'Last seen', manage ? '' : null].filter((x) => x !== null),
    'No sensors yet.',
    (cursor) => api('GET', '/sensors', { query: { client_id: id, limit: 50, cursor } }), row);
  const out = [
    h('p', {}, link('#/clients', '← Clients')),
    h('h1', {}, client.name),
    h('p', { class: 'muted' }, `slug ${client.slug} · time zone ${client.timezone}`),
    keys,
    h('section', { class: 'card' }, h('h2', {}, 'Sensors'), list.el),
    exportCard(api, client),
  ];
  if (manage) {
    out.push(createCard('New sensor', [
      { name: 'name', label: 'Name', required: true },
      { name: 'device_id', label: 'Device id (A-Z, a-z, 0-9, . _ -)', required: true },
      { name: 'location', label: 'Location' },
      { name: 'unit', label: 'Unit the device reports in', options: [['C', '°C'], ['F', '°F']], value: 'C' },
    ], 'Create sensor', list, async (v) => {
      /** @type {import('./sensor.mjs').SensorWithKey} */
      const s = await api('POST', '/sensors', {
        body: { client_id: id, name: v.name, device_id: v.device_id, location: v.location, unit: v.unit },
      });
      keys.replaceChildren(keyPanel(s));
      return `Sensor ${s.name} created.`;
    }));
  }
  await list.reload();
  return out;
}

/**
 * The client's CSV export: every sensor's readings for a range of days, in
 * the zone the days are cut in (the client's unless another is named).
 * @param {import('../api.mjs').Api} api
 * @param {import('./clients.mjs').Client} client
 */
function exportCard(api, client) {
  const range = defaultRange(new Date());
  /** @type {Record<string, string>} */
  let query = { data: 'readings', from: range.from, to: nextDay(range.to), tz: client.timezone || displayZone };
  const f = form([
    { name: 'data', label: 'Data', options: [['readings', 'every reading'], ['daily', 'daily statistics']], value: 'readings' },
    { name: 'from', label: 'From', type: 'date', value: range.from },
    { name: 'to', label: 'To (inclusive)', type: 'date', value: range.to },
    { name: 'tz', label: 'Time zone of the days and times', value: query.tz },
  ], 'Use these', async (v) => {
    if (!v.from) throw invalid({ from: 'Give a day.' });
    if (!v.to) throw invalid({ to: 'Give a day.' });
    if (v.from > v.to) throw invalid({ from: 'The first day must not be after the last.' });
    query = { data: v.data, from: v.from, to: nextDay(v.to), tz: v.tz.trim() || client.timezone };
    return `The export covers ${v.from} to ${v.to}, days in ${query.tz}.`;
  }, { inline: true });
  const button = downloadButton('Export CSV of every sensor',
    () => api('GET', '/clients/{id}/export.csv', { params: { id: client.id }, query, file: true }));
  return h('section', { class: 'card' }, h('h2', {}, 'Export'), f.el, h('p', {}, button));
}

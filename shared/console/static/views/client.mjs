// @ts-check
// #/clients/{id}: a client's sensors with each one's latest reading; admins
// and client admins create sensors and rotate device keys.

import { createCard, h, link, pagedList, time } from '../dom.mjs';
import { formatTemp } from '../format.mjs';
import { can } from '../roles.mjs';
import { keyPanel, rotateButton } from './sensor.mjs';

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
    h('td', {}, s.location),
    h('td', { class: 'num' }, s.latest_reading ? formatTemp(s.latest_reading.value) : '–'),
    h('td', {}, s.latest_reading ? time(s.latest_reading.measured_at) : h('span', { class: 'muted' }, 'no reading yet')),
    manage && h('td', {}, rotateButton(api, s, keys)));
  const list = pagedList(['Name', 'Device id', 'Location', 'Latest', 'Measured at', manage ? '' : null].filter((x) => x !== null),
    'No sensors yet.',
    (cursor) => api('GET', '/sensors', { query: { client_id: id, limit: 50, cursor } }), row);
  const out = [
    h('p', {}, link('#/clients', '← Clients')),
    h('h1', {}, client.name),
    h('p', { class: 'muted' }, `slug ${client.slug} · time zone ${client.timezone}`),
    keys,
    h('section', { class: 'card' }, h('h2', {}, 'Sensors'), list.el),
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

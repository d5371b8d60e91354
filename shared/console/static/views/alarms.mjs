// @ts-check
// #/alarms: alarms, open ones first, then the newest; filtered by state,
// kind and sensor; acknowledged with a comment (which does not clear them).
// The sensor page shows its own alarms with alarmList too.

import { chainPages } from '../api.mjs';
import { form, h, invalid, link, pagedList, time } from '../dom.mjs';
import { formatDuration, formatTemp } from '../format.mjs';
import { can } from '../roles.mjs';

/**
 * An alarm as GET /alarms returns it (shared/tempwatch's Alarm).
 * @typedef {object} Alarm
 * @property {string} id
 * @property {string} sensor_id
 * @property {string} client_id
 * @property {'high' | 'low' | 'silent'} kind
 * @property {'open' | 'cleared' | 'withdrawn'} state
 * @property {string} started_at
 * @property {string} opened_at
 * @property {string} last_at
 * @property {string | null} cleared_at
 * @property {number | null} peak
 * @property {number} duration_seconds
 * @property {{ user_id?: string, at: string, comment: string } | null} acknowledgement
 */

/**
 * What alarmList shows: the filter (empty values: any) and names for ids.
 * @typedef {object} AlarmFilter
 * @property {string} [state] '' lists open alarms first, then cleared, then withdrawn
 * @property {string} [kind]
 * @property {string} [sensor_id]
 */

/** The states in the order an unfiltered list shows them. */
export const stateOrder = ['open', 'cleared', 'withdrawn'];

const kindText = { high: 'above the high limit', low: 'below the low limit', silent: 'silent (no readings)' };

const pageSize = 50;

/**
 * What the kind of an alarm means, in words.
 * @param {string} kind
 */
export function describeKind(kind) {
  return /** @type {Record<string, string>} */ (kindText)[kind] || kind;
}

/**
 * The names of the users the caller may list, by id; empty for a viewer,
 * who may not list users (and is not asked, so no refused call shows in
 * the browser's console): they see ids, and "you" for themselves.
 * @param {import('../api.mjs').SignedIn} signedIn
 * @returns {Promise<Map<string, string>>}
 */
export async function loadUserNames({ session: { api }, me }) {
  const names = new Map();
  if (!can(me.role, 'manageUsers')) return names;
  try {
    /** @type {import('../api.mjs').Page<import('../api.mjs').User>} */
    const us = await api('GET', '/users', { query: { limit: 500 } });
    for (const u of us.items) names.set(u.id, u.name || u.email);
  } catch {
    // Names are a convenience: viewers may not list users.
  }
  return names;
}

/**
 * A paged list of alarms with an acknowledge form on each one not yet
 * acknowledged.
 * @param {import('../api.mjs').SignedIn} signedIn
 * @param {object} opts
 * @param {() => AlarmFilter} opts.filter read at every reload
 * @param {Map<string, string>} opts.sensorNames
 * @param {Map<string, string>} opts.userNames
 * @param {boolean} [opts.showSensor] a column naming the sensor (default true)
 */
export function alarmList({ session: { api }, me }, { filter, sensorNames, userNames, showSensor = true }) {
  /**
   * One state's (or every state's) alarms of the filter.
   * @param {string} state
   * @returns {import('../api.mjs').PageSource<Alarm>}
   */
  const source = (state) => (cursor, limit) => {
    const f = filter();
    return api('GET', '/alarms', { query: { state, kind: f.kind, sensor_id: f.sensor_id, limit, cursor } });
  };
  /** @param {string} cursor */
  const load = (cursor) => {
    const state = filter().state || '';
    return chainPages(state ? [source(state)] : stateOrder.map(source), pageSize)(cursor);
  };

  /** @param {NonNullable<Alarm['acknowledgement']>} ack */
  const acknowledged = (ack) => {
    const who = ack.user_id === me.id ? 'you' : ack.user_id ? userNames.get(ack.user_id) || ack.user_id : 'a deleted user';
    return h('div', { class: 'ack' }, h('span', {}, `Acknowledged by ${who}, `, time(ack.at)),
      h('q', {}, ack.comment));
  };

  /** @param {Alarm} a */
  const ackCell = (a) => {
    const cell = h('td', {});
    if (a.acknowledgement) {
      cell.append(acknowledged(a.acknowledgement));
      return cell;
    }
    const f = form([{ name: 'comment', label: 'Comment', required: true, placeholder: 'What was done' }], 'Acknowledge',
      async (v) => {
        const comment = v.comment.trim();
        if (!comment) throw invalid({ comment: 'Say what was done about the alarm.' });
        /** @type {Alarm} */
        const done = await api('POST', '/alarms/{id}/ack', { params: { id: a.id }, body: { comment } });
        if (done.acknowledgement) cell.replaceChildren(acknowledged(done.acknowledgement));
      }, { inline: true });
    f.el.classList.add('ack-form');
    cell.append(f.el);
    return cell;
  };

  /** @param {Alarm} a */
  const row = (a) => h('tr', { class: `alarm alarm-${a.state}`, 'data-alarm-id': a.id },
    h('td', {}, h('span', { class: `badge state-${a.state}` }, a.state)),
    h('td', {}, describeKind(a.kind)),
    showSensor && h('td', {}, link(`#/sensors/${encodeURIComponent(a.sensor_id)}`, sensorNames.get(a.sensor_id) || a.sensor_id)),
    h('td', {}, time(a.started_at)),
    h('td', {}, a.cleared_at ? time(a.cleared_at) : h('span', { class: 'muted' }, 'not cleared')),
    h('td', { class: 'num' }, a.kind === 'silent' ? '–' : formatTemp(a.peak)),
    h('td', { class: 'num' }, formatDuration(a.duration_seconds)),
    ackCell(a));
  const headings = ['State', 'Kind', showSensor ? 'Sensor' : null, 'Started', 'Cleared', 'Peak', 'Out of range', 'Acknowledgement']
    .filter((x) => x !== null);
  return pagedList(/** @type {string[]} */ (headings), 'No alarms.', load, row);
}

/** @param {import('../api.mjs').SignedIn} signedIn */
export async function viewAlarms(signedIn) {
  const { api } = signedIn.session;
  /** @type {[import('../api.mjs').Page<import('./sensor.mjs').Sensor>, Map<string, string>]} */
  const [sensors, userNames] = await Promise.all([
    api('GET', '/sensors', { query: { limit: 500 } }),
    loadUserNames(signedIn),
  ]);
  const sensorNames = new Map(sensors.items.map((s) => [s.id, s.name]));
  /** @type {AlarmFilter} */
  let current = { state: '', kind: '', sensor_id: '' };
  const list = alarmList(signedIn, { filter: () => current, sensorNames, userNames });
  const filters = form([
    { name: 'state', label: 'State', options: [['', 'any (open first)'], ...stateOrder.map((s) => /** @type {[string, string]} */ ([s, s]))] },
    { name: 'kind', label: 'Kind', options: [['', 'any'], ['high', 'high'], ['low', 'low'], ['silent', 'silent']] },
    { name: 'sensor_id', label: 'Sensor', options: [['', 'any'], ...sensors.items.map((s) => /** @type {[string, string]} */ ([s.id, s.name]))] },
  ], 'Filter', async (v) => {
    current = { state: v.state, kind: v.kind, sensor_id: v.sensor_id };
    const err = await list.reload(false);
    if (err) throw err;
  }, { inline: true });
  await list.reload();
  return [
    h('h1', {}, 'Alarms'),
    h('p', { class: 'muted' }, 'Open alarms first, then the newest. Acknowledging records who saw an alarm and what was done; it does not clear it.'),
    h('section', { class: 'card' }, filters.el, list.el),
  ];
}

// @ts-check
// #/dead-letters: messages refused for good, newest first.

import { h, pagedList, time } from '../dom.mjs';
import { describeHead } from '../format.mjs';
import { loadClientNames } from './clients.mjs';

/**
 * @typedef {object} DeadLetter
 * @property {string} received_at
 * @property {string} reason
 * @property {string} [client_id] the client it named, when one is known
 * @property {string} topic
 * @property {number} size
 * @property {string} head the first bytes, base64
 * @property {string} [head_text] the same bytes, when they are text
 */

/** @param {import('../api.mjs').SignedIn} signedIn */
export async function viewDeadLetters({ session: { api } }) {
  const clientNames = await loadClientNames(api);
  /** @param {DeadLetter} d */
  const row = (d) => h('tr', {}, h('td', {}, time(d.received_at)), h('td', {}, d.reason),
    h('td', {}, d.client_id ? clientNames.get(d.client_id) || d.client_id : 'none known'),
    h('td', { class: 'mono' }, d.topic), h('td', { class: 'num' }, d.size),
    h('td', { class: 'mono' }, describeHead(d)));
  const list = pagedList(['Received', 'Reason', 'Client', 'Topic', 'Size', 'First bytes'], 'No dead letters.',
    (cursor) => api('GET', '/dead-letters', { query: { limit: 50, cursor } }), row);
  await list.reload();
  return [
    h('h1', {}, 'Dead letters'),
    h('p', { class: 'muted' }, 'Messages refused for good, newest first; kept for the configured time (30 days by default).'),
    h('section', { class: 'card' }, list.el),
  ];
}

// @ts-check
// #/clients: the list of clients; admins create clients.

import { createCard, h, link, pagedList, time } from '../dom.mjs';
import { can } from '../roles.mjs';

/**
 * @typedef {{ id: string, name: string, slug: string, timezone: string, created_at: string }} Client
 */

/** @param {import('../api.mjs').SignedIn} signedIn */
export async function viewClients({ session: { api }, me }) {
  /** @param {Client} c */
  const row = (c) => h('tr', {}, h('td', {}, link(`#/clients/${encodeURIComponent(c.id)}`, c.name)),
    h('td', { class: 'mono' }, c.slug), h('td', {}, c.timezone), h('td', {}, time(c.created_at)));
  const list = pagedList(['Name', 'Slug', 'Time zone', 'Created'], 'No clients yet.',
    (cursor) => api('GET', '/clients', { query: { limit: 50, cursor } }), row);
  const out = [h('h1', {}, 'Clients'), h('section', { class: 'card' }, list.el)];
  if (can(me.role, 'createClient')) {
    const zone = Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
    out.push(createCard('New client', [
      { name: 'name', label: 'Name', required: true },
      { name: 'slug', label: 'Slug (a-z, 0-9, -; used in MQTT topics)', required: true, placeholder: 'acme-cold' },
      { name: 'timezone', label: 'Time zone (IANA)', value: zone },
    ], 'Create client', list, async (v) => {
      /** @type {Client} */
      const c = await api('POST', '/clients', { body: { name: v.name, slug: v.slug, timezone: v.timezone || undefined } });
      return `Client ${c.name} created.`;
    }));
  }
  await list.reload();
  return out;
}

/**
 * The names of the clients the caller may read, by id (empty when they
 * cannot be loaded); the users and dead-letter lists show them for ids.
 * @param {import('../api.mjs').Api} api
 * @returns {Promise<Map<string, string>>}
 */
export async function loadClientNames(api) {
  const names = new Map();
  try {
    /** @type {import('../api.mjs').Page<Client>} */
    const cs = await api('GET', '/clients', { query: { limit: 500 } });
    for (const c of cs.items) names.set(c.id, c.name);
  } catch {
    // Names are a convenience; ids are shown without them.
  }
  return names;
}

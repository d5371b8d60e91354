// @ts-check
// #/users: the list of users; admins and client admins create users and
// change roles (up to their own).

import { createCard, fieldsOf, h, messageOf, pagedList, time } from '../dom.mjs';
import { can, grantableRoles } from '../roles.mjs';
import { loadClientNames } from './clients.mjs';

/**
 * @typedef {import('../api.mjs').User & { created_at: string }} ListedUser
 */

/** @param {import('../api.mjs').SignedIn} signedIn */
export async function viewUsers({ session: { api }, me }) {
  const manage = can(me.role, 'manageUsers');
  const roles = grantableRoles(me.role);
  const clientNames = await loadClientNames(api);
  /** @param {string | null | undefined} cid */
  const clientName = (cid) => (cid ? clientNames.get(cid) || cid : 'all clients (admin)');

  /** @param {ListedUser} u */
  const row = (u) => h('tr', {}, h('td', {}, u.email), h('td', {}, u.name),
    h('td', {}, manage && u.id !== me.id && roles.includes(u.role) ? roleEditor(u) : u.role),
    h('td', {}, clientName(u.client_id)), h('td', {}, time(u.created_at)));
  const list = pagedList(['Email', 'Name', 'Role', 'Client', 'Created'], 'No users.',
    (cursor) => api('GET', '/users', { query: { limit: 50, cursor } }), row);

  /** @param {ListedUser} u */
  function roleEditor(u) {
    const err = h('span', { class: 'field-error', role: 'alert' });
    const select = h('select', { 'aria-label': `Role of ${u.email}` },
      roles.map((r) => h('option', { value: r, selected: r === u.role }, r)));
    const save = h('button', { type: 'button', class: 'secondary' }, 'Change role');
    save.addEventListener('click', async () => {
      err.replaceChildren();
      save.disabled = true;
      try {
        /** @type {ListedUser} */
        const updated = await api('PATCH', '/users/{id}', { params: { id: u.id }, body: { role: select.value } });
        u.role = updated.role;
        err.className = 'notice';
        err.textContent = `now ${updated.role}`;
      } catch (e) {
        err.className = 'field-error';
        err.textContent = messageOf(e) + Object.values(fieldsOf(e)).map((m) => ` ${m}`).join('');
        select.value = u.role;
      } finally {
        save.disabled = false;
      }
    });
    return h('span', { class: 'row-actions' }, select, save, err);
  }

  const out = [h('h1', {}, 'Users'), h('section', { class: 'card' }, list.el)];
  if (manage) {
    /** @type {import('../dom.mjs').Field[]} */
    const fields = [
      { name: 'email', label: 'Email', type: 'email', required: true },
      { name: 'name', label: 'Name' },
      { name: 'role', label: 'Role', options: roles.map((r) => [r, r]), value: 'viewer' },
    ];
    if (me.role === 'admin') {
      fields.push({ name: 'client_id', label: 'Client (none for an admin)',
        options: [['', '— none —'], ...[...clientNames].map(([cid, name]) => /** @type {[string, string]} */ ([cid, name]))] });
    }
    fields.push({ name: 'password', label: 'Initial password (at least 12 characters)', type: 'password',
      required: true, autocomplete: 'new-password' });
    out.push(createCard('New user', fields, 'Create user', list, async (v) => {
      /** @type {Record<string, string>} */
      const body = { email: v.email.trim(), name: v.name, role: v.role, password: v.password };
      if (me.role === 'admin' && v.client_id) body.client_id = v.client_id;
      /** @type {ListedUser} */
      const u = await api('POST', '/users', { body });
      return `User ${u.email} created.`;
    }));
  }
  await list.reload();
  return out;
}

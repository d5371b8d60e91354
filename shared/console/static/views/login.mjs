// @ts-check
// The login page (shown whenever no one is signed in).

import { form, h } from '../dom.mjs';

/**
 * @param {object} deps
 * @param {import('../api.mjs').Session} deps.session
 * @param {string} deps.reason why the last session ended ('' for none)
 * @param {(me: import('../api.mjs').User) => void} deps.onLogin
 */
export function viewLogin({ session, reason, onLogin }) {
  // An email is unique within a client company, not across them: its users
  // name it by its slug; operators (admins) leave it empty.
  const f = form([
    { name: 'client', label: 'Company (its slug; empty for operators)', autocomplete: 'organization' },
    { name: 'email', label: 'Email', type: 'email', required: true, autocomplete: 'username' },
    { name: 'password', label: 'Password', type: 'password', required: true, autocomplete: 'current-password' },
  ], 'Log in', async (v) => {
    onLogin(await session.login(v.email.trim(), v.password, v.client.trim().toLowerCase()));
  });
  return [h('h1', {}, 'Log in'), reason && h('p', { class: 'muted' }, reason), h('section', { class: 'card' }, f.el)];
}

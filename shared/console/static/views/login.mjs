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
  const f = form([
    { name: 'email', label: 'Email', type: 'email', required: true, autocomplete: 'username' },
    { name: 'password', label: 'Password', type: 'password', required: true, autocomplete: 'current-password' },
  ], 'Log in', async (v) => {
    onLogin(await session.login(v.email.trim(), v.password));
  });
  return [h('h1', {}, 'Log in'), reason && h('p', { class: 'muted' }, reason), h('section', { class: 'card' }, f.el)];
}

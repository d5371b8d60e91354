// @ts-check
// #/account: who is signed in, and changing one's own password.

import { form, h, invalid } from '../dom.mjs';

/** @param {import('../api.mjs').SignedIn} signedIn */
export function viewAccount({ session, me }) {
  const f = form([
    { name: 'current_password', label: 'Current password', type: 'password', required: true, autocomplete: 'current-password' },
    { name: 'new_password', label: 'New password (at least 12 characters)', type: 'password', required: true, autocomplete: 'new-password' },
    { name: 'confirm', label: 'New password again', type: 'password', required: true, autocomplete: 'new-password' },
  ], 'Change password', async (v) => {
    if (v.new_password !== v.confirm) throw invalid({ confirm: 'The two new passwords differ.' });
    await session.changePassword(v.current_password, v.new_password);
    f.reset();
    return 'Password changed. Every other session of yours has ended.';
  });
  return [
    h('h1', {}, 'Account'),
    h('section', { class: 'card' },
      h('p', {}, h('strong', {}, me.email), me.name ? ` (${me.name})` : ''),
      h('p', { class: 'muted' }, `role ${me.role}`, me.client_id ? ` · client ${me.client_id}` : '')),
    h('section', { class: 'card' }, h('h2', {}, 'Change password'), f.el),
  ];
}

// @ts-check
// tempwatch admin console: ES modules, no framework, no build step. This
// entry module holds the session and routes #/hashes to the views
// (views/*.mjs); the API client is api.mjs, the DOM helpers dom.mjs. It runs
// only in a browser, on the page index.html.

import { apiBase, createApi } from './api.mjs';
import { errorBox, fill, h } from './dom.mjs';
import { viewAccount } from './views/account.mjs';
import { viewAlarms } from './views/alarms.mjs';
import { viewClient } from './views/client.mjs';
import { viewClients } from './views/clients.mjs';
import { viewDeadLetters } from './views/dead-letters.mjs';
import { viewLogin } from './views/login.mjs';
import { viewSensor } from './views/sensor.mjs';
import { viewUsers } from './views/users.mjs';

/**
 * A view: the nodes of one page, for the signed-in user and the route's
 * decoded {params}.
 * @typedef {(signedIn: import('./api.mjs').SignedIn, ...params: string[]) =>
 *   import('./dom.mjs').Child[] | Promise<import('./dom.mjs').Child[]>} View
 */

/** @type {[RegExp, View][]} */
const routes = [
  [/^#\/alarms$/, viewAlarms],
  [/^#\/clients$/, viewClients],
  [/^#\/clients\/([^/]+)$/, viewClient],
  [/^#\/sensors\/([^/]+)$/, viewSensor],
  [/^#\/users$/, viewUsers],
  [/^#\/dead-letters$/, viewDeadLetters],
  [/^#\/account$/, viewAccount],
];

/**
 * The view of hash and the route's {params} as they stand in it (still
 * encoded), or null when no view has hash.
 * @param {string} hash
 * @returns {[View, string[]] | null}
 */
export function route(hash) {
  for (const [re, view] of routes) {
    const m = re.exec(hash);
    if (m) return [view, m.slice(1)];
  }
  return null;
}

/**
 * The page's element with id.
 * @param {string} id
 */
function byId(id) {
  const el = document.getElementById(id);
  if (!el) throw new Error(`console: the page has no #${id}`);
  return el;
}

function start() {
  const app = byId('app');
  const nav = byId('nav');
  const who = byId('who');
  const logoutButton = byId('logout');
  /** @type {import('./api.mjs').User | null} */
  let me = null;
  let renders = 0;
  let signedOutReason = '';

  const session = createApi({
    base: apiBase(location.href),
    fetchFn: (url, init) => fetch(url, init),
    onSignedOut(reason) {
      me = null;
      signedOutReason = reason;
      render();
    },
  });

  function chrome() {
    nav.hidden = logoutButton.hidden = !me;
    who.textContent = me ? `${me.email} (${me.role})` : '';
    for (const a of nav.querySelectorAll('a')) {
      a.classList.toggle('active', location.hash.startsWith(a.getAttribute('href') || ''));
    }
  }

  logoutButton.addEventListener('click', async () => {
    try {
      await session.logout();
    } catch {
      // The tokens are dropped either way; an unreachable API cannot keep the session here.
    }
    me = null;
    signedOutReason = 'You have logged out.';
    location.hash = '#/clients';
    render();
  });

  /** @param {import('./api.mjs').User} user */
  function onLogin(user) {
    me = user;
    signedOutReason = '';
    render();
  }

  async function render() {
    const n = ++renders;
    chrome();
    if (!me) {
      fill(app, viewLogin({ session, reason: signedOutReason, onLogin }));
      return;
    }
    const found = route(location.hash);
    if (!found) {
      location.hash = '#/clients'; // hashchange renders it
      return;
    }
    const [view, params] = found;
    app.replaceChildren(h('p', { class: 'muted' }, 'Loading…'));
    let nodes;
    try {
      nodes = await view({ session, me }, ...params.map(decodeURIComponent));
    } catch (err) {
      nodes = [errorBox(err)];
    }
    if (n === renders && me) fill(app, nodes);
  }

  window.addEventListener('hashchange', render);
  render();
}

if (typeof document !== 'undefined' && document.getElementById('app')) start();

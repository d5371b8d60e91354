// tempwatch admin console: one ES module, no framework, no build step.
//
// Rules this file keeps (shared/console's tests check the first three):
//   - every API call is written api('METHOD', '/route/{param}', {...}) with
//     the method and the route as literals, as template.yaml names them;
//   - data reaches the page only as text (textContent, text nodes), never as HTML;
//   - tokens live in this module's memory only, never in web storage or cookies:
//     a reload means logging in again;
//   - an expired access token is refreshed once (POST /auth/refresh) and the
//     call retried; a second 401 ends the session.
//
// The top half is plain logic, exported for `node --test` (console_test.mjs);
// the bottom half builds the page and runs only in a browser.

// ---------------------------------------------------------------- logic

/** The API base for a page at href: the page's directory (the API Gateway stage). */
export function apiBase(href) {
  return new URL('./', href).toString();
}

/** Fills a route's {params}; each value is one URL path segment. */
export function fillRoute(route, params = {}) {
  return route.replace(/\{([a-z_]+)\}/g, (_, name) => {
    const v = params[name];
    if (v === undefined || v === null || v === '') {
      throw new Error(`route ${route}: no value for {${name}}`);
    }
    return encodeURIComponent(String(v));
  });
}

/** The URL of route under base, with the query's non-empty values. */
export function buildURL(base, route, params, query) {
  const url = new URL(fillRoute(route, params).replace(/^\//, ''), base);
  for (const [k, v] of Object.entries(query || {})) {
    if (v !== undefined && v !== null && v !== '') url.searchParams.set(k, String(v));
  }
  return url.toString();
}

/** An API call that failed: the HTTP status (0: no answer) and what to show. */
export class ApiError extends Error {
  constructor(status, problem, retryAfter) {
    const d = describeProblem(status, problem, retryAfter);
    super(d.message);
    this.name = 'ApiError';
    this.status = status;
    this.fields = d.fields;
    this.requestId = d.requestId;
  }
}

/**
 * What to show for a failed call: a one-line message and the message of
 * each bad field, from an RFC 9457 problem body when there is one.
 */
export function describeProblem(status, problem, retryAfter) {
  const fields = {};
  let message;
  if (status === 0) {
    message = 'The API could not be reached. Check your connection and try again.';
  } else if (problem && typeof problem === 'object' && (problem.title || problem.detail)) {
    const title = typeof problem.title === 'string' ? problem.title : '';
    const detail = typeof problem.detail === 'string' ? problem.detail : '';
    message = title && detail && title !== detail ? `${title}: ${detail}` : title || detail;
    if (problem.errors && typeof problem.errors === 'object') {
      for (const [k, v] of Object.entries(problem.errors)) fields[k] = String(v);
    }
  } else {
    message = `The API answered ${status}.`;
  }
  const secs = Number(retryAfter);
  if (status === 429 && Number.isFinite(secs) && secs > 0) {
    message += ` Try again in ${secs} s.`;
  }
  const requestId = problem && typeof problem.request_id === 'string' ? problem.request_id : '';
  if (status >= 500 && requestId) message += ` (request id ${requestId})`;
  return { message, fields, requestId };
}

/**
 * Keyset paging over the API's opaque cursors: forward follows next_cursor,
 * back returns to the cursor of the page before (kept on a stack).
 */
export class CursorPager {
  constructor() {
    this.reset();
  }

  reset() {
    this.cursor = '';
    this.nextCursor = '';
    this.previous = [];
  }

  /** Records the page just loaded (its has_more and next_cursor). */
  loaded(page) {
    this.nextCursor = page && page.has_more && page.next_cursor ? page.next_cursor : '';
  }

  get hasNext() {
    return this.nextCursor !== '';
  }

  get hasPrevious() {
    return this.previous.length > 0;
  }

  get number() {
    return this.previous.length + 1;
  }

  forward() {
    if (!this.hasNext) return false;
    this.previous.push(this.cursor);
    this.cursor = this.nextCursor;
    this.nextCursor = '';
    return true;
  }

  back() {
    if (!this.hasPrevious) return false;
    this.cursor = this.previous.pop();
    this.nextCursor = '';
    return true;
  }
}

/** Who may do what; the API decides, this only hides what would be refused. */
export const permissions = {
  createClient: ['admin'],
  manageSensors: ['admin', 'client_admin'],
  manageUsers: ['admin', 'client_admin'],
};

export function can(role, action) {
  return (permissions[action] || []).includes(role);
}

const roleRank = { viewer: 1, client_admin: 2, admin: 3 };

/** The roles a user of role may grant: up to their own (users.checkGrant). */
export function grantableRoles(role) {
  if (!can(role, 'manageUsers')) return [];
  return Object.keys(roleRank)
    .filter((r) => roleRank[r] <= roleRank[role])
    .sort((a, b) => roleRank[b] - roleRank[a]);
}

/** A local date as YYYY-MM-DD. */
export function isoDate(d) {
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}`;
}

/** The default range of daily averages: the 30 days up to today, inclusive. */
export function defaultRange(today) {
  const from = new Date(today.getFullYear(), today.getMonth(), today.getDate() - 29);
  return { from: isoDate(from), to: isoDate(today) };
}

export function formatTemp(v) {
  if (typeof v !== 'number' || !Number.isFinite(v)) return '–';
  return `${v.toFixed(2)} °C`;
}

/**
 * What a list shows of a dead letter's first bytes: its head as text, with
 * an ellipsis when the message is longer, or how long it is when the bytes
 * are not text.
 */
export function describeHead(item) {
  const shown = item.head ? Math.floor((item.head.length * 3) / 4) - (item.head.match(/=+$/)?.[0].length ?? 0) : 0;
  if (typeof item.head_text !== 'string') return `(not text, ${item.size} bytes)`;
  return item.size > shown ? `${item.head_text}…` : item.head_text;
}

/**
 * An API client holding one session's tokens in memory. fetchFn is the
 * browser's fetch (tests pass their own); onSignedOut(reason) is called
 * when the session ends without a logout (refresh refused).
 */
export function createApi({ base, fetchFn, onSignedOut = () => {} }) {
  let tokens = null;
  let generation = 0; // bumped on every sign-in and sign-out
  let refreshing = null;

  function setTokens(t) {
    tokens = { access: t.access_token, refresh: t.refresh_token };
  }

  function clear() {
    tokens = null;
    generation++;
    refreshing = null;
  }

  async function call(method, route, opts, retried) {
    const { params, query, body, auth = true } = opts;
    const headers = { Accept: 'application/json, application/problem+json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const sent = tokens;
    if (auth) {
      if (!sent) throw new ApiError(401, { title: 'Unauthorized', detail: 'Please log in.' });
      headers.Authorization = `Bearer ${sent.access}`;
    }
    let resp;
    try {
      resp = await fetchFn(buildURL(base, route, params, query), {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: 'omit',
        cache: 'no-store',
      });
    } catch {
      throw new ApiError(0, null);
    }
    if (resp.status === 401 && auth && !retried) {
      if (await refreshOnce(sent)) return call(method, route, opts, true);
      if (tokens === sent) {
        clear();
        onSignedOut('Your session has ended. Please log in again.');
      }
    }
    const data = await readBody(resp);
    if (!resp.ok) throw new ApiError(resp.status, data, resp.headers.get('Retry-After'));
    return data;
  }

  // refreshOnce gets new tokens for the session whose tokens were sent;
  // concurrent 401s share one refresh (a refresh token works once).
  async function refreshOnce(sent) {
    if (!tokens || !sent) return false;
    if (tokens !== sent) return true; // refreshed since this call was sent
    if (!refreshing) {
      const gen = generation;
      refreshing = api('POST', '/auth/refresh', { body: { refresh_token: sent.refresh }, auth: false }).then(
        (t) => {
          if (gen !== generation) return false;
          setTokens(t);
          return true;
        },
        () => false,
      ).finally(() => {
        if (gen === generation) refreshing = null;
      });
    }
    return refreshing;
  }

  /** One API call: method and route as template.yaml names them. */
  async function api(method, route, opts = {}) {
    return call(method, route, opts, false);
  }

  return {
    api,
    get signedIn() {
      return tokens !== null;
    },
    async login(email, password) {
      const t = await api('POST', '/auth/login', { body: { email, password }, auth: false });
      clear();
      setTokens(t);
      return api('GET', '/auth/me');
    },
    async changePassword(current, next) {
      // Every session of the user ends; the answer is the new session's tokens.
      const t = await api('POST', '/auth/password', { body: { current_password: current, new_password: next } });
      setTokens(t);
    },
    async logout() {
      try {
        if (tokens) await api('POST', '/auth/logout');
      } finally {
        clear();
      }
    },
  };
}

async function readBody(resp) {
  if (resp.status === 204) return null;
  const type = resp.headers.get('Content-Type') || '';
  if (!/^application\/([a-z.+-]*\+)?json/.test(type)) return null;
  try {
    return await resp.json();
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------- page

/** h builds an element; strings become text nodes, never markup. */
function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

const timeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });

function time(iso) {
  if (!iso) return '–';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : h('time', { datetime: iso, title: iso }, timeFormat.format(d));
}

function link(hash, text) {
  return h('a', { href: hash }, text);
}

function table(headings, rows, empty) {
  if (rows.length === 0) return h('p', { class: 'muted' }, empty);
  return h('table', {}, h('thead', {}, h('tr', {}, headings.map((t) => h('th', {}, t)))), h('tbody', {}, rows));
}

/**
 * form builds a form whose submit runs onSubmit(values); an ApiError shows
 * next to the form: its message on top, each field's message by the field.
 * fields: {name, label, type, required, options: [[value, text]], value, ...}.
 */
function form(fields, submitText, onSubmit, { inline = false } = {}) {
  const summary = h('div', { class: 'form-error', role: 'alert' });
  const notice = h('div', { class: 'notice', role: 'status' });
  const errorOf = {};
  const inputs = {};
  const button = h('button', { type: 'submit' }, submitText);
  const el = h('form', { class: inline ? 'inline' : 'stacked', novalidate: true }, summary);
  for (const f of fields) {
    const attrs = {
      name: f.name,
      type: f.type || 'text',
      required: f.required,
      autocomplete: f.autocomplete || 'off',
      placeholder: f.placeholder,
      min: f.min,
      max: f.max,
      step: f.step,
      value: f.value,
    };
    let input;
    if (f.options) {
      input = h('select', { name: f.name, required: f.required },
        f.options.map(([value, text]) => h('option', { value, selected: value === f.value }, text)));
    } else {
      input = h('input', attrs);
    }
    inputs[f.name] = input;
    errorOf[f.name] = h('span', { class: 'field-error' });
    el.append(h('label', {}, f.label, input, errorOf[f.name]));
  }
  el.append(h('div', { class: 'row-actions' }, button, notice));

  function clearErrors() {
    summary.replaceChildren();
    notice.replaceChildren();
    for (const [name, span] of Object.entries(errorOf)) {
      span.replaceChildren();
      inputs[name].removeAttribute('aria-invalid');
    }
  }

  function showError(err) {
    const fieldsErr = err instanceof ApiError ? err.fields : err.fields || {};
    const unplaced = [];
    for (const [name, msg] of Object.entries(fieldsErr)) {
      if (errorOf[name]) {
        errorOf[name].textContent = msg;
        inputs[name].setAttribute('aria-invalid', 'true');
      } else {
        unplaced.push(h('li', {}, `${name}: ${msg}`));
      }
    }
    summary.append(err.message || 'Something went wrong.');
    if (unplaced.length) summary.append(h('ul', {}, unplaced));
  }

  el.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clearErrors();
    const values = {};
    for (const [name, input] of Object.entries(inputs)) values[name] = input.value;
    button.disabled = true;
    try {
      const done = await onSubmit(values);
      if (typeof done === 'string') notice.textContent = done;
    } catch (err) {
      showError(err);
    } finally {
      button.disabled = false;
    }
  });
  return { el, inputs, showError, reset: () => el.reset() };
}

/** A client-side check failed: shown like an API validation problem. */
function invalid(fields) {
  const err = new Error('Please correct the marked fields.');
  err.fields = fields;
  return err;
}

function errorBox(err) {
  return h('div', { class: 'form-error', role: 'alert' }, err.message || String(err));
}

/**
 * pagedList renders a list route page by page with Previous/Next; load(cursor)
 * returns the page, row(item) its table row. reload() goes back to the first
 * page and returns the error of the load, if any, shown in the list unless
 * the caller shows it (reload(false), for a form that asked for the list).
 */
function pagedList(headings, empty, load, row) {
  const pager = new CursorPager();
  const body = h('div', {});
  const prev = h('button', { type: 'button', class: 'secondary' }, 'Previous');
  const next = h('button', { type: 'button', class: 'secondary' }, 'Next');
  const number = h('span', { class: 'muted' });
  const el = h('div', {}, body, h('div', { class: 'pager' }, prev, number, next));

  async function show(report = true) {
    prev.disabled = next.disabled = true;
    let failed = null;
    try {
      const page = await load(pager.cursor);
      pager.loaded(page);
      body.replaceChildren(table(headings, page.items.map(row), empty));
    } catch (err) {
      failed = err;
      pager.loaded(null);
      body.replaceChildren(...(report ? [errorBox(err)] : []));
    }
    prev.disabled = !pager.hasPrevious;
    next.disabled = !pager.hasNext;
    number.textContent = `Page ${pager.number}`;
    return failed;
  }
  prev.addEventListener('click', () => pager.back() && show());
  next.addEventListener('click', () => pager.forward() && show());
  return {
    el,
    reload(report = true) {
      pager.reset();
      return show(report);
    },
  };
}

/**
 * createCard is a card with a creation form: create(values) makes the thing
 * and returns what to say; then the form clears and the list reloads.
 */
function createCard(title, fields, submitText, list, create) {
  const f = form(fields, submitText, async (v) => {
    const said = await create(v);
    f.reset();
    await list.reload();
    return said;
  });
  return h('section', { class: 'card' }, h('h2', {}, title), f.el);
}

/** The device key panel: shown once, with the warning that it cannot be shown again. */
function keyPanel(sensor) {
  const copy = h('button', { type: 'button', class: 'secondary' }, 'Copy');
  const panel = h('div', { class: 'key-once', role: 'alert' },
    h('strong', {}, `Device key of ${sensor.name} (${sensor.device_id})`),
    h('p', {}, 'This key is shown only now. It is stored only as a hash and cannot be shown again: ' +
      'copy it into the device now. Any earlier key of this sensor no longer works.'),
    h('code', {}, sensor.device_key),
    h('div', { class: 'row-actions' }, copy,
      h('button', { type: 'button', onclick: () => panel.remove() }, 'I have stored it')));
  copy.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(sensor.device_key);
      copy.textContent = 'Copied';
    } catch {
      copy.textContent = 'Select and copy it by hand';
    }
  });
  return panel;
}

function start() {
  const app = document.getElementById('app');
  const nav = document.getElementById('nav');
  const who = document.getElementById('who');
  const logoutButton = document.getElementById('logout');
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
  const { api } = session;

  function chrome() {
    nav.hidden = logoutButton.hidden = !me;
    who.textContent = me ? `${me.email} (${me.role})` : '';
    for (const a of nav.querySelectorAll('a')) {
      a.classList.toggle('active', location.hash.startsWith(a.getAttribute('href')));
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

  // ---- views: each returns the nodes of the page; data only via h().

  function viewLogin() {
    const f = form([
      { name: 'email', label: 'Email', type: 'email', required: true, autocomplete: 'username' },
      { name: 'password', label: 'Password', type: 'password', required: true, autocomplete: 'current-password' },
    ], 'Log in', async (v) => {
      me = await session.login(v.email.trim(), v.password);
      signedOutReason = '';
      render();
    });
    return [h('h1', {}, 'Log in'), signedOutReason && h('p', { class: 'muted' }, signedOutReason), h('section', { class: 'card' }, f.el)];
  }

  async function viewClients() {
    const list = pagedList(['Name', 'Slug', 'Time zone', 'Created'], 'No clients yet.',
      (cursor) => api('GET', '/clients', { query: { limit: 50, cursor } }),
      (c) => h('tr', {}, h('td', {}, link(`#/clients/${encodeURIComponent(c.id)}`, c.name)),
        h('td', { class: 'mono' }, c.slug), h('td', {}, c.timezone), h('td', {}, time(c.created_at))));
    const out = [h('h1', {}, 'Clients'), h('section', { class: 'card' }, list.el)];
    if (can(me.role, 'createClient')) {
      const zone = Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
      out.push(createCard('New client', [
        { name: 'name', label: 'Name', required: true },
        { name: 'slug', label: 'Slug (a-z, 0-9, -; used in MQTT topics)', required: true, placeholder: 'acme-cold' },
        { name: 'timezone', label: 'Time zone (IANA)', value: zone },
      ], 'Create client', list, async (v) => {
        const c = await api('POST', '/clients', { body: { name: v.name, slug: v.slug, timezone: v.timezone || undefined } });
        return `Client ${c.name} created.`;
      }));
    }
    await list.reload();
    return out;
  }

  async function viewClient(id) {
    const client = await api('GET', '/clients/{id}', { params: { id } });
    const keys = h('div', {});
    const manage = can(me.role, 'manageSensors');
    const list = pagedList(['Name', 'Device id', 'Location', 'Latest', 'Measured at', manage ? '' : null].filter((x) => x !== null),
      'No sensors yet.',
      (cursor) => api('GET', '/sensors', { query: { client_id: id, limit: 50, cursor } }),
      (s) => h('tr', {},
        h('td', {}, link(`#/sensors/${encodeURIComponent(s.id)}`, s.name)),
        h('td', { class: 'mono' }, s.device_id),
        h('td', {}, s.location),
        h('td', { class: 'num' }, s.latest_reading ? formatTemp(s.latest_reading.value) : '–'),
        h('td', {}, s.latest_reading ? time(s.latest_reading.measured_at) : h('span', { class: 'muted' }, 'no reading yet')),
        manage && h('td', {}, rotateButton(s, keys))));
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

  function rotateButton(sensor, keys) {
    const err = h('span', { class: 'field-error', role: 'alert' });
    const b = h('button', { type: 'button', class: 'secondary' }, 'Rotate key');
    b.addEventListener('click', async () => {
      if (!confirm(`Replace the device key of ${sensor.name}? The current key stops working at once.`)) return;
      err.replaceChildren();
      b.disabled = true;
      try {
        keys.replaceChildren(keyPanel(await api('POST', '/sensors/{id}/rotate-key', { params: { id: sensor.id } })));
        keys.scrollIntoView({ block: 'nearest' });
      } catch (e) {
        err.textContent = e.message;
      } finally {
        b.disabled = false;
      }
    });
    return h('span', { class: 'row-actions' }, b, err);
  }

  async function viewSensor(id) {
    const s = await api('GET', '/sensors/{id}', { params: { id } });
    const keys = h('div', {});
    const latest = s.latest_reading;
    const readings = pagedList(['Measured at', 'Value', 'Stored at', 'Seq'], 'No readings yet.',
      (cursor) => api('GET', '/sensors/{id}/readings', { params: { id }, query: { limit: 50, cursor } }),
      (r) => h('tr', {}, h('td', {}, time(r.measured_at)), h('td', { class: 'num' }, formatTemp(r.value)),
        h('td', {}, time(r.created_at)), h('td', { class: 'num' }, r.seq ?? '')));

    const range = defaultRange(new Date());
    let query = { from: range.from, to: range.to, tz: '' };
    const rangeInfo = h('p', { class: 'muted' });
    const averages = pagedList(['Day', 'Average', 'Min', 'Max', 'Readings'], 'No readings in this range.',
      async (cursor) => {
        rangeInfo.textContent = '';
        const page = await api('GET', '/sensors/{id}/daily-averages', {
          params: { id }, query: { ...query, limit: 100, cursor },
        });
        rangeInfo.textContent = `${page.from} to ${page.to}, days cut at midnight in ${page.timezone}, newest first`;
        return page;
      },
      (d) => h('tr', {}, h('td', {}, d.day), h('td', { class: 'num' }, formatTemp(d.avg)),
        h('td', { class: 'num' }, formatTemp(d.min)), h('td', { class: 'num' }, formatTemp(d.max)),
        h('td', { class: 'num' }, d.count)));
    const rangeForm = form([
      { name: 'from', label: 'From', type: 'date', value: range.from },
      { name: 'to', label: 'To (inclusive)', type: 'date', value: range.to },
      { name: 'tz', label: 'Time zone (empty: the client\'s)', placeholder: 'Europe/Berlin' },
    ], 'Show', async (v) => {
      if (v.from && v.to && v.from > v.to) throw invalid({ from: 'The first day must not be after the last.' });
      query = { from: v.from, to: v.to, tz: v.tz.trim() };
      const err = await averages.reload(false);
      if (err) throw err;
    }, { inline: true });

    const refresh = h('button', { type: 'button', class: 'secondary', onclick: () => readings.reload() }, 'Refresh');
    const out = [
      h('p', {}, link(`#/clients/${encodeURIComponent(s.client_id)}`, '← Sensors of the client')),
      h('h1', {}, s.name),
      h('p', { class: 'muted' }, `device ${s.device_id}`, s.location ? ` · ${s.location}` : '', ` · reports in °${s.unit}`,
        s.alert_low !== null ? ` · alert below ${formatTemp(s.alert_low)}` : '',
        s.alert_high !== null ? ` · alert above ${formatTemp(s.alert_high)}` : ''),
      h('p', {}, 'Latest: ', latest ? [h('strong', {}, formatTemp(latest.value)), ' at ', time(latest.measured_at)] : 'no reading yet'),
      can(me.role, 'manageSensors') && rotateButton(s, keys),
      keys,
      h('section', { class: 'card' }, h('h2', {}, 'Readings (newest first)'), refresh, readings.el),
      h('section', { class: 'card' }, h('h2', {}, 'Daily averages'), rangeForm.el, rangeInfo, averages.el),
    ];
    await Promise.all([readings.reload(), averages.reload()]);
    return out;
  }

  /** The names of the clients the caller may read, by id (empty when they cannot be loaded). */
  async function loadClientNames() {
    const names = new Map();
    try {
      const cs = await api('GET', '/clients', { query: { limit: 500 } });
      for (const c of cs.items) names.set(c.id, c.name);
    } catch {
      // Names are a convenience; ids are shown without them.
    }
    return names;
  }

  async function viewUsers() {
    const manage = can(me.role, 'manageUsers');
    const roles = grantableRoles(me.role);
    const clientNames = await loadClientNames();
    const clientName = (cid) => (cid ? clientNames.get(cid) || cid : 'all clients (admin)');

    const list = pagedList(['Email', 'Name', 'Role', 'Client', 'Created'], 'No users.',
      (cursor) => api('GET', '/users', { query: { limit: 50, cursor } }),
      (u) => h('tr', {}, h('td', {}, u.email), h('td', {}, u.name),
        h('td', {}, manage && u.id !== me.id && roles.includes(u.role) ? roleEditor(u) : u.role),
        h('td', {}, clientName(u.client_id)), h('td', {}, time(u.created_at))));

    function roleEditor(u) {
      const err = h('span', { class: 'field-error', role: 'alert' });
      const select = h('select', { 'aria-label': `Role of ${u.email}` },
        roles.map((r) => h('option', { value: r, selected: r === u.role }, r)));
      const save = h('button', { type: 'button', class: 'secondary' }, 'Change role');
      save.addEventListener('click', async () => {
        err.replaceChildren();
        save.disabled = true;
        try {
          const updated = await api('PATCH', '/users/{id}', { params: { id: u.id }, body: { role: select.value } });
          u.role = updated.role;
          err.className = 'notice';
          err.textContent = `now ${updated.role}`;
        } catch (e) {
          err.className = 'field-error';
          err.textContent = e.message + Object.values(e.fields || {}).map((m) => ` ${m}`).join('');
          select.value = u.role;
        } finally {
          save.disabled = false;
        }
      });
      return h('span', { class: 'row-actions' }, select, save, err);
    }

    const out = [h('h1', {}, 'Users'), h('section', { class: 'card' }, list.el)];
    if (manage) {
      const fields = [
        { name: 'email', label: 'Email', type: 'email', required: true },
        { name: 'name', label: 'Name' },
        { name: 'role', label: 'Role', options: roles.map((r) => [r, r]), value: 'viewer' },
      ];
      if (me.role === 'admin') {
        fields.push({ name: 'client_id', label: 'Client (none for an admin)',
          options: [['', '— none —'], ...[...clientNames].map(([cid, name]) => [cid, name])] });
      }
      fields.push({ name: 'password', label: 'Initial password (at least 12 characters)', type: 'password',
        required: true, autocomplete: 'new-password' });
      out.push(createCard('New user', fields, 'Create user', list, async (v) => {
        const body = { email: v.email.trim(), name: v.name, role: v.role, password: v.password };
        if (me.role === 'admin' && v.client_id) body.client_id = v.client_id;
        const u = await api('POST', '/users', { body });
        return `User ${u.email} created.`;
      }));
    }
    await list.reload();
    return out;
  }

  async function viewDeadLetters() {
    const clientNames = await loadClientNames();
    const list = pagedList(['Received', 'Reason', 'Client', 'Topic', 'Size', 'First bytes'], 'No dead letters.',
      (cursor) => api('GET', '/dead-letters', { query: { limit: 50, cursor } }),
      (d) => h('tr', {}, h('td', {}, time(d.received_at)), h('td', {}, d.reason),
        h('td', {}, d.client_id ? clientNames.get(d.client_id) || d.client_id : 'none known'),
        h('td', { class: 'mono' }, d.topic), h('td', { class: 'num' }, d.size),
        h('td', { class: 'mono' }, describeHead(d))));
    await list.reload();
    return [
      h('h1', {}, 'Dead letters'),
      h('p', { class: 'muted' }, 'Messages refused for good, newest first; kept for the configured time (30 days by default).'),
      h('section', { class: 'card' }, list.el),
    ];
  }

  function viewAccount() {
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

  const routes = [
    [/^#\/clients$/, viewClients],
    [/^#\/clients\/([^/]+)$/, viewClient],
    [/^#\/sensors\/([^/]+)$/, viewSensor],
    [/^#\/users$/, viewUsers],
    [/^#\/dead-letters$/, viewDeadLetters],
    [/^#\/account$/, viewAccount],
  ];

  async function render() {
    const n = ++renders;
    chrome();
    if (!me) {
      app.replaceChildren(...viewLogin());
      return;
    }
    const match = routes.map(([re, view]) => [re.exec(location.hash), view]).find(([m]) => m);
    if (!match) {
      location.hash = '#/clients'; // hashchange renders it
      return;
    }
    const [m, view] = match;
    app.replaceChildren(h('p', { class: 'muted' }, 'Loading…'));
    let nodes;
    try {
      nodes = await view(...m.slice(1).map(decodeURIComponent));
    } catch (err) {
      nodes = [errorBox(err)];
    }
    if (n === renders && me) app.replaceChildren(...nodes.flat().filter(Boolean));
  }

  window.addEventListener('hashchange', render);
  render();
}

if (typeof document !== 'undefined' && document.getElementById('app')) start();

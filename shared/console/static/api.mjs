// @ts-check
// The console's API client: URLs of template.yaml's routes, the session's
// tokens, problem answers turned into errors, and keyset paging.
//
// Rules this module keeps:
//   - every API call is written api('METHOD', '/route/{param}', {...}) with
//     the method and the route as literals, as template.yaml names them
//     (shared/console's Go tests check every module for it);
//   - tokens live in this module's memory only, never in web storage or
//     cookies: a reload means logging in again;
//   - an expired access token is refreshed once (POST /auth/refresh) and the
//     call retried; a second 401 ends the session.
// Nothing here touches the DOM, so `node --test` runs all of it.

/**
 * An RFC 9457 problem body as the API sends it; any field may be missing or
 * of another type when something else answered.
 * @typedef {{ title?: unknown, detail?: unknown, errors?: unknown, request_id?: unknown }} Problem
 */

/**
 * What one call sends besides its method and route.
 * @typedef {object} CallOptions
 * @property {Record<string, unknown>} [params] the route's {params}, each one path segment
 * @property {Record<string, unknown>} [query] query parameters; empty values are left out
 * @property {unknown} [body] sent as JSON
 * @property {boolean} [auth] send the access token (default true)
 * @property {boolean} [file] the answer is a file (a CSV export): the call
 *   resolves to a Download instead of decoded JSON
 */

/**
 * A file the API sent: its bytes and the name its Content-Disposition gives.
 * @typedef {{ blob: Blob, filename: string }} Download
 */

/**
 * One API call: method and route as template.yaml names them. The answer is
 * the decoded JSON body (null when there is none), typed by the caller.
 * @typedef {(method: string, route: string, opts?: CallOptions) => Promise<any>} Api
 */

/** @typedef {{ access_token: string, refresh_token: string, device_token?: string }} TokenPair */

/**
 * The user a session acts as (GET /auth/me).
 * @typedef {{ id: string, email: string, name: string, role: string, client_id?: string }} User
 */

/**
 * A page of a list route.
 * @template T
 * @typedef {{ items: T[], has_more: boolean, next_cursor?: string }} Page
 */

/** @typedef {ReturnType<typeof createApi>} Session */

/**
 * What every view but the login gets: the session and the user it acts as.
 * @typedef {{ session: Session, me: User }} SignedIn
 */

/**
 * The API base for a page at href: the page's directory (the API Gateway stage).
 * @param {string} href
 */
export function apiBase(href) {
  return new URL('./', href).toString();
}

/**
 * Fills a route's {params}; each value is one URL path segment.
 * @param {string} route
 * @param {Record<string, unknown>} [params]
 */
export function fillRoute(route, params = {}) {
  return route.replace(/\{([a-z_]+)\}/g, (_, name) => {
    const v = params[name];
    if (v === undefined || v === null || v === '') {
      throw new Error(`route ${route}: no value for {${name}}`);
    }
    return encodeURIComponent(String(v));
  });
}

/**
 * The URL of route under base, with the query's non-empty values.
 * @param {string} base
 * @param {string} route
 * @param {Record<string, unknown>} [params]
 * @param {Record<string, unknown>} [query]
 */
export function buildURL(base, route, params, query) {
  const url = new URL(fillRoute(route, params).replace(/^\//, ''), base);
  for (const [k, v] of Object.entries(query || {})) {
    if (v !== undefined && v !== null && v !== '') url.searchParams.set(k, String(v));
  }
  return url.toString();
}

/** An API call that failed: the HTTP status (0: no answer) and what to show. */
export class ApiError extends Error {
  /**
   * @param {number} status
   * @param {Problem | null | undefined} problem
   * @param {string | null} [retryAfter] the Retry-After header
   */
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
 * @param {number} status
 * @param {Problem | null | undefined} problem
 * @param {string | null} [retryAfter]
 * @returns {{ message: string, fields: Record<string, string>, requestId: string }}
 */
export function describeProblem(status, problem, retryAfter) {
  /** @type {Record<string, string>} */
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
  /** The cursor of the page shown ('' for the first). */
  cursor = '';
  nextCursor = '';
  /** @type {string[]} */
  previous = [];

  reset() {
    this.cursor = '';
    this.nextCursor = '';
    this.previous = [];
  }

  /**
   * Records the page just loaded (its has_more and next_cursor).
   * @param {{ has_more?: boolean, next_cursor?: string } | null} page
   */
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
    const cursor = this.previous.pop();
    if (cursor === undefined) return false;
    this.cursor = cursor;
    this.nextCursor = '';
    return true;
  }
}

/**
 * The file name a Content-Disposition header gives (RFC 6266: filename*
 * before filename), reduced to its last path segment; fallback when it
 * gives none.
 * @param {string | null} header
 * @param {string} fallback
 */
export function filenameOf(header, fallback) {
  if (!header) return fallback;
  let name = '';
  const extended = /filename\*\s*=\s*(?:UTF-8|utf-8)''([^;]+)/.exec(header);
  if (extended) {
    try {
      name = decodeURIComponent(extended[1].trim());
    } catch {
      name = '';
    }
  }
  if (!name) {
    const plain = /filename\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]+))/.exec(header);
    if (plain) name = plain[1] !== undefined ? plain[1].replace(/\\(.)/g, '$1') : plain[2];
  }
  name = name.split(/[/\\]/).pop()?.trim() ?? '';
  return name && name !== '.' && name !== '..' ? name : fallback;
}

/**
 * One list of chainPages: the page at cursor, of at most limit items.
 * @template T
 * @typedef {(cursor: string, limit: number) => Promise<Page<T>>} PageSource
 */

/**
 * chainPages shows several lists as one, each after the other (all the open
 * alarms, then the cleared ones): a page is filled from the next list when
 * one ends. Its cursors are "<list>.<that list's cursor>"; an unknown one
 * starts at the beginning.
 * @template T
 * @param {PageSource<T>[]} sources
 * @param {number} limit items per page
 * @returns {(cursor: string) => Promise<Page<T>>}
 */
export function chainPages(sources, limit) {
  return async (cursor) => {
    const m = /^(\d+)\.(.*)$/.exec(cursor);
    let i = m && Number(m[1]) < sources.length ? Number(m[1]) : 0;
    let inner = m && Number(m[1]) < sources.length ? m[2] : '';
    /** @type {T[]} */
    const items = [];
    while (i < sources.length) {
      const page = await sources[i](inner, limit - items.length);
      items.push(...page.items);
      if (page.has_more && page.next_cursor) {
        inner = page.next_cursor;
        if (items.length >= limit) return { items, has_more: true, next_cursor: `${i}.${inner}` };
        continue; // a short page with more after it: read on in the same list
      }
      i++;
      inner = '';
      if (items.length >= limit) return i < sources.length ? { items, has_more: true, next_cursor: `${i}.` } : { items, has_more: false };
    }
    return { items, has_more: false };
  };
}

/**
 * An API client holding one session's tokens in memory. fetchFn is the
 * browser's fetch (tests pass their own); onSignedOut(reason) is called
 * when the session ends without a logout (refresh refused).
 * @param {object} deps
 * @param {string} deps.base the API base URL (apiBase)
 * @param {(url: string, init: RequestInit) => Promise<Response>} deps.fetchFn
 * @param {(reason: string) => void} [deps.onSignedOut]
 */
export function createApi({ base, fetchFn, onSignedOut = () => {} }) {
  /** @type {{ access: string, refresh: string } | null} */
  let tokens = null;
  let generation = 0; // bumped on every sign-in and sign-out
  /** @type {Promise<boolean> | null} */
  let refreshing = null;
  // Each account's device token (login's device_token), by client slug and
  // lower-case email, sent back at the account's next login so that others' failed
  // logins do not lock this page out. In memory like the tokens: a reload
  // starts as an untrusted client.
  /** @type {Map<string, string>} */
  const devices = new Map();

  /** @param {TokenPair} t */
  function setTokens(t) {
    tokens = { access: t.access_token, refresh: t.refresh_token };
  }

  function clear() {
    tokens = null;
    generation++;
    refreshing = null;
  }

  /**
   * @param {string} method
   * @param {string} route
   * @param {CallOptions} opts
   * @param {boolean} retried
   * @returns {Promise<any>}
   */
  async function call(method, route, opts, retried) {
    const { params, query, body, auth = true, file = false } = opts;
    /** @type {Record<string, string>} */
    const headers = { Accept: file ? '*/*' : 'application/json, application/problem+json' };
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
    if (file && resp.ok) {
      return { blob: await resp.blob(), filename: filenameOf(resp.headers.get('Content-Disposition'), 'export.csv') };
    }
    const data = await readBody(resp);
    if (!resp.ok) throw new ApiError(resp.status, data, resp.headers.get('Retry-After'));
    return data;
  }

  /**
   * refreshOnce gets new tokens for the session whose tokens were sent;
   * concurrent 401s share one refresh (a refresh token works once).
   * @param {typeof tokens} sent
   * @returns {Promise<boolean>}
   */
  async function refreshOnce(sent) {
    if (!tokens || !sent) return false;
    if (tokens !== sent) return true; // refreshed since this call was sent
    if (!refreshing) {
      const gen = generation;
      refreshing = api('POST', '/auth/refresh', { body: { refresh_token: sent.refresh }, auth: false }).then(
        (/** @type {TokenPair} */ t) => {
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

  /** @type {Api} */
  async function api(method, route, opts = {}) {
    return call(method, route, opts, false);
  }

  return {
    api,
    get signedIn() {
      return tokens !== null;
    },
    /**
     * @param {string} email
     * @param {string} password
     * @param {string} [client] the slug of the user's client company; '' for an admin
     * @returns {Promise<User>}
     */
    async login(email, password, client = '') {
      const account = `${client}\u0000${email.trim().toLowerCase()}`;
      const device = devices.get(account);
      /** @type {Record<string, string>} */
      const body = { email, password };
      if (client) body.client = client;
      if (device) body.device_token = device;
      const t = await api('POST', '/auth/login', { body, auth: false });
      if (t.device_token) devices.set(account, t.device_token);
      clear();
      setTokens(t);
      return api('GET', '/auth/me');
    },
    /**
     * @param {string} current
     * @param {string} next
     */
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

/**
 * The decoded JSON body of resp, or null when it has none or is not JSON.
 * @param {Response} resp
 * @returns {Promise<any>}
 */
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

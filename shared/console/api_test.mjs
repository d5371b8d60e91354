// Tests of the console's API client (static/api.mjs): node --test
// shared/console/ (infra/scripts/test.sh runs every *_test.mjs here). The
// fetch passed to createApi is a scripted stand-in: this tests the session
// logic, not the API.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { apiBase, fillRoute, buildURL, describeProblem, ApiError, CursorPager, createApi, chainPages, filenameOf } from './static/api.mjs';

test('apiBase is the directory of the page (the API Gateway stage)', () => {
  assert.equal(apiBase('http://127.0.0.1:3000/console'), 'http://127.0.0.1:3000/');
  assert.equal(apiBase('https://x.example/v1/console?a=1#/users'), 'https://x.example/v1/');
  assert.equal(apiBase('http://localhost:4566/restapis/abc/v1/_user_request_/console'),
    'http://localhost:4566/restapis/abc/v1/_user_request_/');
});

test('fillRoute puts each value into one path segment', () => {
  assert.equal(fillRoute('/sensors/{id}/readings', { id: 'abc' }), '/sensors/abc/readings');
  assert.equal(fillRoute('/users/{id}', { id: '../clients' }), '/users/..%2Fclients');
  assert.equal(fillRoute('/clients/{id}', { id: 'a b?c#d' }), '/clients/a%20b%3Fc%23d');
  assert.throws(() => fillRoute('/users/{id}', {}), /no value for \{id\}/);
  assert.throws(() => fillRoute('/users/{id}', { id: '' }), /no value/);
});

test('buildURL keeps the stage and drops empty query values', () => {
  assert.equal(buildURL('https://x.example/v1/', '/clients', {}, { limit: 50, cursor: '', name: undefined }),
    'https://x.example/v1/clients?limit=50');
  assert.equal(buildURL('http://h/', '/sensors', undefined, { client_id: 'c1', cursor: 'a+b/=' }),
    'http://h/sensors?client_id=c1&cursor=a%2Bb%2F%3D');
});

test('describeProblem shows title, detail and field errors', () => {
  const d = describeProblem(400, {
    type: 'https://tempwatch.dev/problems/invalid', title: 'Bad Request', status: 400, code: 'invalid',
    detail: 'Invalid input.', errors: { slug: 'must be lower case' },
  });
  assert.equal(d.message, 'Bad Request: Invalid input.');
  assert.deepEqual(d.fields, { slug: 'must be lower case' });

  assert.equal(describeProblem(404, { title: 'Not Found' }).message, 'Not Found');
  assert.equal(describeProblem(502, null).message, 'The API answered 502.');
  assert.match(describeProblem(0, null).message, /could not be reached/);
  assert.equal(describeProblem(429, { title: 'Too Many Requests', detail: 'Slow down.' }, '30').message,
    'Too Many Requests: Slow down. Try again in 30 s.');
  assert.equal(describeProblem(500, { title: 'Internal Server Error', request_id: 'r-1' }).message,
    'Internal Server Error (request id r-1)');
  assert.deepEqual(describeProblem(400, { title: 'x', errors: 'not a map' }).fields, {});
});

test('CursorPager walks forward by next_cursor and back by its stack', () => {
  const p = new CursorPager();
  assert.equal(p.cursor, '');
  assert.equal(p.forward(), false, 'no next page before a page is loaded');
  p.loaded({ items: [1], has_more: true, next_cursor: 'c2' });
  assert.ok(p.hasNext);
  assert.ok(!p.hasPrevious);
  assert.ok(p.forward());
  assert.equal(p.cursor, 'c2');
  assert.equal(p.number, 2);
  p.loaded({ items: [2], has_more: true, next_cursor: 'c3' });
  assert.ok(p.forward());
  p.loaded({ items: [3], has_more: false });
  assert.equal(p.cursor, 'c3');
  assert.ok(!p.hasNext);
  assert.ok(p.back());
  assert.equal(p.cursor, 'c2');
  assert.ok(p.back());
  assert.equal(p.cursor, '');
  assert.equal(p.back(), false);
  p.loaded({ items: [], has_more: true }); // has_more without a cursor: nowhere to go
  assert.ok(!p.hasNext);
  p.reset();
  assert.equal(p.number, 1);
});

// ---- the session: a scripted fetch answering by "METHOD path".

const tokens = (n) => ({ access_token: `access-${n}`, token_type: 'Bearer', expires_in: 900, refresh_token: `refresh-${n}` });

function json(status, body, headers = {}) {
  const type = status >= 400 ? 'application/problem+json' : 'application/json';
  return new Response(body === null ? null : JSON.stringify(body), { status, headers: { 'Content-Type': type, ...headers } });
}

const unauthorized = () => json(401, { type: 't', title: 'Unauthorized', status: 401, code: 'unauthorized', detail: 'The token has expired.' });

/**
 * script maps "METHOD /path" to a function (call) => Response or a promise
 * of one; calls are recorded as they are sent.
 */
function scriptedFetch(script) {
  const calls = [];
  const fetchFn = async (url, init) => {
    const u = new URL(url);
    const key = `${init.method} ${u.pathname}`;
    const call = { key, url: u, auth: init.headers.Authorization || '', body: init.body ? JSON.parse(init.body) : undefined };
    calls.push(call);
    const answer = script[key];
    if (!answer) throw new Error(`unexpected call ${key}`);
    return answer(call);
  };
  return { calls, fetchFn };
}

/** A gate that opens when n callers have reached it: each arrive() waits for the last. */
function gate(n) {
  let open;
  const opened = new Promise((resolve) => { open = resolve; });
  let arrived = 0;
  return {
    arrive() {
      if (++arrived === n) open();
      return opened;
    },
  };
}

async function signedIn(script, onSignedOut) {
  const f = scriptedFetch({
    'POST /v1/auth/login': () => json(200, tokens(1)),
    'GET /v1/auth/me': () => json(200, { id: 'u1', email: 'a@example.test', role: 'admin' }),
    ...script,
  });
  const session = createApi({ base: 'https://x.example/v1/', fetchFn: f.fetchFn, onSignedOut });
  const me = await session.login('a@example.test', 'pw');
  assert.equal(me.id, 'u1');
  f.calls.length = 0;
  return { session, calls: f.calls };
}

test('login sends no token, keeps the tokens and sends them as a bearer', async () => {
  const f = scriptedFetch({
    'POST /v1/auth/login': () => json(200, tokens(1)),
    'GET /v1/auth/me': () => json(200, { id: 'u1' }),
  });
  const session = createApi({ base: 'https://x.example/v1/', fetchFn: f.fetchFn });
  assert.ok(!session.signedIn);
  await session.login('a@example.test', 'secret');
  assert.deepEqual(f.calls.map((c) => [c.key, c.auth]), [['POST /v1/auth/login', ''], ['GET /v1/auth/me', 'Bearer access-1']]);
  assert.deepEqual(f.calls[0].body, { email: 'a@example.test', password: 'secret' });
  assert.ok(session.signedIn);
});

test('login keeps the device token per account and sends it at that account\'s next login', async () => {
  const f = scriptedFetch({
    'POST /v1/auth/login': () => json(200, { ...tokens(1), device_token: 'twd1.dev' }),
    'GET /v1/auth/me': () => json(200, { id: 'u1' }),
  });
  const session = createApi({ base: 'https://x.example/v1/', fetchFn: f.fetchFn });
  await session.login('a@example.test', 'secret');
  assert.deepEqual(f.calls[0].body, { email: 'a@example.test', password: 'secret' });
  await session.login('A@example.test', 'secret');
  assert.deepEqual(f.calls[2].body, { email: 'A@example.test', password: 'secret', device_token: 'twd1.dev' });
  await session.login('b@example.test', 'secret');
  assert.deepEqual(f.calls[4].body, { email: 'b@example.test', password: 'secret' }, 'another account gets no token of a');
  await session.login('a@example.test', 'secret');
  assert.equal(f.calls[6].body.device_token, 'twd1.dev', 'a\'s token is still kept after b logged in');
  await session.login('a@example.test', 'secret', 'acme');
  assert.deepEqual(f.calls[8].body, { client: 'acme', email: 'a@example.test', password: 'secret' },
    'the same email at a client company is another account');
});

test('a refused login is an ApiError with the problem, and no refresh', async () => {
  const f = scriptedFetch({ 'POST /v1/auth/login': () => unauthorized() });
  const session = createApi({ base: 'https://x.example/v1/', fetchFn: f.fetchFn });
  await assert.rejects(session.login('a@example.test', 'wrong'), (err) => {
    assert.ok(err instanceof ApiError);
    assert.equal(err.status, 401);
    assert.equal(err.message, 'Unauthorized: The token has expired.');
    return true;
  });
  assert.deepEqual(f.calls.map((c) => c.key), ['POST /v1/auth/login']);
});

test('a 401 refreshes once and retries with the new token', async () => {
  let first = true;
  const { session, calls } = await signedIn({
    'GET /v1/clients': (c) => {
      if (first) {
        first = false;
        return unauthorized();
      }
      return json(200, { items: [], has_more: false, auth: c.auth });
    },
    'POST /v1/auth/refresh': () => json(200, tokens(2)),
  });
  const page = await session.api('GET', '/clients', { query: { limit: 50 } });
  assert.equal(page.auth, 'Bearer access-2');
  assert.deepEqual(calls.map((c) => `${c.key} ${c.auth}`),
    ['GET /v1/clients Bearer access-1', 'POST /v1/auth/refresh ', 'GET /v1/clients Bearer access-2']);
  assert.deepEqual(calls[1].body, { refresh_token: 'refresh-1' });
  assert.equal(calls[2].url.search, '?limit=50');
});

test('a second 401 after the refresh ends the session without another refresh', async () => {
  const ended = [];
  const { session, calls } = await signedIn({
    'GET /v1/users': () => unauthorized(),
    'POST /v1/auth/refresh': () => json(200, tokens(2)),
  }, (reason) => ended.push(reason));
  await assert.rejects(session.api('GET', '/users'), (err) => err.status === 401);
  assert.deepEqual(calls.map((c) => c.key), ['GET /v1/users', 'POST /v1/auth/refresh', 'GET /v1/users']);
  // The retried call's 401 is final; the session itself still holds the new tokens.
  assert.ok(session.signedIn);
  assert.deepEqual(ended, []);
});

test('a refused refresh ends the session', async () => {
  const ended = [];
  const { session, calls } = await signedIn({
    'GET /v1/users': () => unauthorized(),
    'POST /v1/auth/refresh': () => unauthorized(),
  }, (reason) => ended.push(reason));
  await assert.rejects(session.api('GET', '/users'), (err) => err.status === 401);
  assert.deepEqual(calls.map((c) => c.key), ['GET /v1/users', 'POST /v1/auth/refresh']);
  assert.ok(!session.signedIn);
  assert.equal(ended.length, 1);
  await assert.rejects(session.api('GET', '/users'), (err) => err.status === 401);
  assert.equal(calls.length, 2, 'no call is sent without a session');
});

test('concurrent 401s share one refresh (a refresh token works once)', { timeout: 10_000 }, async () => {
  // The three calls are all sent with the old token before any is answered.
  const sentWithOldToken = gate(3);
  let refreshed = false;
  const answer = async (c) => {
    if (c.auth !== 'Bearer access-1') return json(200, { items: [], has_more: false });
    await sentWithOldToken.arrive();
    return unauthorized();
  };
  const { session, calls } = await signedIn({
    'GET /v1/clients': answer,
    'GET /v1/users': answer,
    'POST /v1/auth/refresh': () => {
      if (refreshed) return unauthorized(); // as the API answers a refresh token used before
      refreshed = true;
      return json(200, tokens(2));
    },
  });
  await Promise.all([session.api('GET', '/clients'), session.api('GET', '/users'), session.api('GET', '/clients')]);
  assert.equal(calls.filter((c) => c.key === 'POST /v1/auth/refresh').length, 1);
  assert.equal(calls.filter((c) => c.auth === 'Bearer access-2').length, 3);
  assert.ok(session.signedIn);
});

test('validation problems reach the caller with their fields', async () => {
  const { session } = await signedIn({
    'POST /v1/clients': () => json(400, { type: 't', title: 'Bad Request', status: 400, code: 'invalid', detail: 'Invalid input.', errors: { slug: 'is taken' } }),
  });
  await assert.rejects(session.api('POST', '/clients', { body: { name: 'A', slug: 'a' } }), (err) => {
    assert.equal(err.status, 400);
    assert.deepEqual(err.fields, { slug: 'is taken' });
    return true;
  });
});

test('a network failure is status 0', async () => {
  const session = createApi({ base: 'https://x.example/', fetchFn: async () => { throw new TypeError('Failed to fetch'); } });
  await assert.rejects(session.login('a', 'b'), (err) => err.status === 0 && /could not be reached/.test(err.message));
});

test('a password change switches to the new session\'s tokens', async () => {
  const { session, calls } = await signedIn({
    'POST /v1/auth/password': () => json(200, tokens(3)),
    'GET /v1/auth/me': (c) => json(200, { id: 'u1', auth: c.auth }),
  });
  await session.changePassword('old password', 'new password 12');
  assert.deepEqual(calls[0].body, { current_password: 'old password', new_password: 'new password 12' });
  const me = await session.api('GET', '/auth/me');
  assert.equal(me.auth, 'Bearer access-3');
});

test('logout revokes on the server and forgets the tokens even when the call fails', async () => {
  const { session, calls } = await signedIn({ 'POST /v1/auth/logout': () => json(503, { title: 'Service Unavailable' }) });
  await assert.rejects(session.logout());
  assert.deepEqual(calls.map((c) => `${c.key} ${c.auth}`), ['POST /v1/auth/logout Bearer access-1']);
  assert.ok(!session.signedIn);
});

test('filenameOf reads Content-Disposition and keeps only a file name', () => {
  const cases = [
    ['attachment; filename="Cold_room_2026-01-01_2026-02-01.csv"', 'Cold_room_2026-01-01_2026-02-01.csv'],
    ['attachment; filename=plain.csv', 'plain.csv'],
    ["attachment; filename=\"fallback.csv\"; filename*=UTF-8''K%C3%BChlraum.csv", 'Kühlraum.csv'],
    ['attachment; filename="a \\"quoted\\" name.csv"', 'a "quoted" name.csv'],
    ['attachment; filename="../../etc/passwd"', 'passwd'],
    ['attachment; filename="..\\\\evil.csv"', 'evil.csv'],
    ['attachment; filename=".."', 'export.csv'],
    ["attachment; filename*=UTF-8''%E0%A4%A", 'export.csv'],
    ['attachment', 'export.csv'],
    [null, 'export.csv'],
  ];
  for (const [header, want] of cases) assert.equal(filenameOf(header, 'export.csv'), want, `filenameOf(${header})`);
});

/** A list of n items served in pages, as the API serves one, recording each request. */
function listOf(name, n, seen) {
  const items = Array.from({ length: n }, (_, i) => `${name}${i}`);
  return async (cursor, limit) => {
    seen.push(`${name}:${cursor}:${limit}`);
    const start = cursor ? Number(cursor) : 0;
    const end = Math.min(start + limit, n);
    return end < n ? { items: items.slice(start, end), has_more: true, next_cursor: String(end) } : { items: items.slice(start, end), has_more: false };
  };
}

test('chainPages shows each list after the one before, filling pages across them', async () => {
  const seen = [];
  const load = chainPages([listOf('open', 3, seen), listOf('cleared', 0, seen), listOf('withdrawn', 6, seen)], 4);
  const p = new CursorPager();
  const shown = [];
  for (;;) {
    const page = await load(p.cursor);
    shown.push(page.items);
    p.loaded(page);
    if (!p.forward()) break;
  }
  assert.deepEqual(shown, [['open0', 'open1', 'open2', 'withdrawn0'], ['withdrawn1', 'withdrawn2', 'withdrawn3', 'withdrawn4'], ['withdrawn5']]);
  assert.deepEqual(seen.slice(0, 3), ['open::4', 'cleared::1', 'withdrawn::1'], 'a page asks each list for what it still lacks');

  seen.length = 0;
  assert.deepEqual((await load('2.3')).items, ['withdrawn3', 'withdrawn4', 'withdrawn5']);
  assert.deepEqual(seen, ['withdrawn:3:4']);
  assert.deepEqual((await load('9.3')).items, ['open0', 'open1', 'open2', 'withdrawn0'], 'an unknown cursor starts over');

  const exact = chainPages([listOf('a', 2, []), listOf('b', 1, [])], 2);
  const first = await exact('');
  assert.deepEqual(first, { items: ['a0', 'a1'], has_more: true, next_cursor: '1.' });
  assert.deepEqual(await exact(first.next_cursor), { items: ['b0'], has_more: false });
  assert.deepEqual(await chainPages([listOf('a', 2, [])], 2)(''), { items: ['a0', 'a1'], has_more: false });
});

test('a file call resolves to the bytes and the name; its failure is a problem', async () => {
  const { session, calls } = await signedIn({
    'GET /v1/sensors/s1/export.csv': (c) => c.url.searchParams.get('tz') === 'bad'
      ? json(400, { title: 'Bad Request', detail: 'Invalid input.', errors: { tz: 'must be an IANA time zone' } })
      : new Response('measured_at,value_c\n', { status: 200, headers: { 'Content-Type': 'text/csv; charset=utf-8',
        'Content-Disposition': 'attachment; filename="Cold_room.csv"' } }),
  });
  const file = await session.api('GET', '/sensors/{id}/export.csv', { params: { id: 's1' }, query: { tz: 'UTC' }, file: true });
  assert.equal(file.filename, 'Cold_room.csv');
  assert.equal(await file.blob.text(), 'measured_at,value_c\n');
  assert.equal(calls[0].auth, 'Bearer access-1', 'the export needs the bearer token');
  await assert.rejects(session.api('GET', '/sensors/{id}/export.csv', { params: { id: 's1' }, query: { tz: 'bad' }, file: true }),
    (err) => err.status === 400 && err.fields.tz === 'must be an IANA time zone');
});

// Tests of the console's module layout: every module links (each import
// names a file and an export that exist, as a browser checks before running
// any), the entry module's routes, and the DOM helpers that need no DOM.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';

import { ApiError } from './static/api.mjs';
import { route } from './static/console.mjs';
import { fieldsOf, invalid, messageOf } from './static/dom.mjs';
import { viewClient } from './static/views/client.mjs';
import { viewClients } from './static/views/clients.mjs';
import { viewDeadLetters } from './static/views/dead-letters.mjs';
import { limitsBody, viewSensor } from './static/views/sensor.mjs';
import { viewAlarms } from './static/views/alarms.mjs';
import { viewUsers } from './static/views/users.mjs';
import { viewAccount } from './static/views/account.mjs';

const staticDir = new URL('./static/', import.meta.url);
const modules = readdirSync(staticDir, { recursive: true }).filter((f) => f.endsWith('.mjs')).sort();

test('the layout: an entry module, the API client, the DOM helpers and one module per view', () => {
  for (const want of ['console.mjs', 'api.mjs', 'dom.mjs', 'views/clients.mjs', 'views/sensor.mjs', 'views/login.mjs', 'views/alarms.mjs', 'chart.mjs']) {
    assert.ok(modules.includes(want), `static/${want} is missing (found ${modules.join(', ')})`);
  }
});

for (const name of modules) {
  test(`static/${name} links and loads without a page`, async () => {
    const mod = await import(new URL(name, staticDir).href);
    assert.ok(Object.keys(mod).length > 0, `static/${name} exports nothing`);
  });
}

test('route: each hash to its view, with the params as they stand in the hash', () => {
  const cases = [
    ['#/alarms', viewAlarms, []],
    ['#/clients', viewClients, []],
    ['#/clients/c-1', viewClient, ['c-1']],
    ['#/sensors/a%2Fb', viewSensor, ['a%2Fb']],
    ['#/users', viewUsers, []],
    ['#/dead-letters', viewDeadLetters, []],
    ['#/account', viewAccount, []],
  ];
  for (const [hash, view, params] of cases) {
    const got = route(hash);
    assert.ok(got, `route(${hash}) found no view`);
    assert.equal(got[0], view, `route(${hash}) is ${got[0].name}, want ${view.name}`);
    assert.deepEqual(got[1], params, `route(${hash}) params`);
  }
  for (const hash of ['', '#', '#/', '#/clients/', '#/clients/a/b', '#/sensors', '#/nope', '#/users/u-1', '#/clientsx', '#/alarms/a-1']) {
    assert.equal(route(hash), null, `route(${JSON.stringify(hash)})`);
  }
});

test('fieldsOf and messageOf read what forms show of an ApiError, invalid() and anything else thrown', () => {
  const api = new ApiError(400, { title: 'Bad Request', detail: 'Invalid input.', errors: { slug: 'is taken' } });
  assert.deepEqual(fieldsOf(api), { slug: 'is taken' });
  assert.equal(messageOf(api), 'Bad Request: Invalid input.');

  const local = invalid({ confirm: 'The two new passwords differ.' });
  assert.ok(local instanceof Error);
  assert.deepEqual(fieldsOf(local), { confirm: 'The two new passwords differ.' });
  assert.equal(messageOf(local), 'Please correct the marked fields.');

  assert.deepEqual(fieldsOf(new Error('boom')), {});
  assert.equal(messageOf(new Error('boom')), 'boom');
  assert.deepEqual(fieldsOf('a string'), {});
  assert.equal(messageOf('a string'), '');
  assert.deepEqual(fieldsOf(null), {});
});

test('limitsBody: numbers, null for an empty limit, and the bad fields named', () => {
  assert.deepEqual(limitsBody({ alert_low: '', alert_high: '8', alarm_delay_seconds: '300', alarm_hysteresis: '0.5', silence_after_seconds: '900' }),
    { alert_low: null, alert_high: 8, alarm_delay_seconds: 300, alarm_hysteresis: 0.5, silence_after_seconds: 900 });
  assert.throws(() => limitsBody({ alert_low: 'cold', alert_high: '8', alarm_delay_seconds: '1.5', alarm_hysteresis: '-1', silence_after_seconds: '' }),
    (err) => {
      assert.deepEqual(Object.keys(fieldsOf(err)).sort(), ['alarm_delay_seconds', 'alarm_hysteresis', 'alert_low', 'silence_after_seconds']);
      return true;
    });
  assert.throws(() => limitsBody({ alert_low: '9', alert_high: '8', alarm_delay_seconds: '0', alarm_hysteresis: '0', silence_after_seconds: '60' }),
    (err) => fieldsOf(err).alert_low === 'must be below the high limit');
});

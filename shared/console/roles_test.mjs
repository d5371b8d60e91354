// Tests of who may do what in the console (static/roles.mjs).
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { can, grantableRoles } from './static/roles.mjs';

test('roles: what each may do in the console', () => {
  assert.ok(can('admin', 'createClient'));
  assert.ok(!can('client_admin', 'createClient'));
  assert.ok(can('client_admin', 'manageSensors'));
  assert.ok(!can('viewer', 'manageSensors'));
  assert.ok(!can('viewer', 'manageUsers'));
  assert.ok(!can('admin', 'no such action'));
  assert.deepEqual(grantableRoles('admin'), ['admin', 'client_admin', 'viewer']);
  assert.deepEqual(grantableRoles('client_admin'), ['client_admin', 'viewer']);
  assert.deepEqual(grantableRoles('viewer'), []);
});

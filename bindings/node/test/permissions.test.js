'use strict';
// The host's permission callback: replaces the roles, runs synchronously on
// the JS thread, and a throwing callback denies and surfaces its exception.

const test = require('node:test');
const assert = require('node:assert/strict');
const integ = require('..');

const REQUEST = {
  integration_definition_id: 'hubspot-crm',
  name: 'HubSpot Production',
  credentials: { api_key: '...' },
  config: { sync_interval: 3600, entities: ['contacts', 'companies', 'deals'], auto_sync: true },
};

function memContext() {
  return new integ.Context({ store: 'sqlite::memory:', master_key: integ.generateMasterKey() });
}

test('the callback decides, overriding roles', () => {
  const ctx = memContext();
  const calls = [];
  ctx.setPermissionCallback((tenantId, userId, resource, action) => {
    calls.push([tenantId, userId, resource, action]);
    return userId === 'boss';
  });
  const boss = ctx.session('t1', 'boss'); // no roles at all
  const admin = ctx.session('t1', 'admin-by-role', ['admin']);
  try {
    const created = boss.createIntegration(REQUEST);
    assert.deepEqual(calls, [['t1', 'boss', 'integration', 'admin']]);
    assert.throws(() => admin.updateIntegration(created.id, { name: 'x' }), integ.PermissionDenied);
    assert.deepEqual(calls.at(-1), ['t1', 'admin-by-role', 'integration', 'admin']);

    // Only `true` allows.
    for (const v of [1, 'yes', {}, undefined, Promise.resolve(true)]) {
      ctx.setPermissionCallback(() => v);
      assert.throws(() => boss.updateIntegration(created.id, { name: 'x' }), integ.PermissionDenied, String(v));
    }

    // Cleared: the roles decide again.
    ctx.setPermissionCallback(null);
    assert.equal(admin.updateIntegration(created.id, { name: 'renamed' }).name, 'renamed');
    assert.throws(() => boss.deleteIntegration(created.id), integ.PermissionDenied);
    ctx.setPermissionCallback(undefined);
    assert.throws(() => ctx.setPermissionCallback('yes'), integ.InvalidArgument);
  } finally {
    boss.close();
    admin.close();
    ctx.close();
  }
});

test('a throwing callback denies, and its exception is rethrown by the call', () => {
  const ctx = memContext();
  const s = ctx.session('t1', 'u1', ['admin']);
  try {
    class HostError extends Error {}
    ctx.setPermissionCallback(() => { throw new HostError('directory unavailable'); });
    assert.throws(() => s.createIntegration(REQUEST), (err) => {
      assert.ok(err instanceof HostError);
      assert.equal(err.message, 'directory unavailable');
      return true;
    });
    assert.equal(s.integrations().length, 0, 'nothing was written');

    // A thrown primitive survives too.
    ctx.setPermissionCallback(() => { throw 'plain string'; }); // eslint-disable-line no-throw-literal
    assert.throws(() => s.createIntegration(REQUEST), (err) => err === 'plain string');

    // The parked exception does not leak into the next call.
    ctx.setPermissionCallback(() => true);
    const created = s.createIntegration(REQUEST);
    assert.equal(s.integrations().length, 1);
    assert.equal(s.integration(created.id).id, created.id);
  } finally {
    s.close();
    ctx.close();
  }
});

test('the callback may not call back into the library', () => {
  const ctx = memContext();
  const s = ctx.session('t1', 'u1', ['admin']);
  try {
    let inner;
    ctx.setPermissionCallback(() => {
      try {
        s.integrations();
      } catch (err) {
        inner = err;
      }
      return true;
    });
    s.createIntegration(REQUEST);
    assert.ok(inner instanceof integ.InvalidArgument);
    assert.match(inner.message, /permission callback/);
    assert.equal(s.integrations().length, 1);
  } finally {
    s.close();
    ctx.close();
  }
});

test('the callback outlives ctx.close() for sessions still open', () => {
  const ctx = memContext();
  const s = ctx.session('t1', 'u1');
  let n = 0;
  ctx.setPermissionCallback(() => { n++; return true; });
  ctx.close();
  assert.throws(() => ctx.setPermissionCallback(null), integ.InvalidArgument);
  const created = s.createIntegration(REQUEST);
  assert.equal(n, 1);
  assert.equal(s.integration(created.id).id, created.id);
  s.close();
});

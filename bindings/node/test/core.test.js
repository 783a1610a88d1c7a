'use strict';
// The module functions, the catalog, and the integration lifecycle on an
// in-memory SQLite store.

const test = require('node:test');
const assert = require('node:assert/strict');
const integ = require('..');

// The seed's own example, verbatim.
const HUBSPOT_EXAMPLE = {
  integration_definition_id: 'hubspot-crm',
  name: 'HubSpot Production',
  credentials: { api_key: '...' },
  config: { sync_interval: 3600, entities: ['contacts', 'companies', 'deals'], auto_sync: true },
};

function memContext() {
  return new integ.Context({ store: 'sqlite::memory:', master_key: integ.generateMasterKey() });
}

test('module functions', () => {
  assert.match(integ.version(), /^\d+\.\d+\.\d+$/);
  assert.equal(integ.strerror(-2), 'not found');
  assert.equal(integ.strerror(0), 'success');
  const k1 = integ.generateMasterKey();
  const k2 = integ.generateMasterKey();
  assert.equal(k1.length, 44);
  assert.equal(Buffer.from(k1, 'base64').length, 32);
  assert.notEqual(k1, k2);
  assert.equal(integ.codes.ENOTFOUND, -2);
  assert.equal(integ.NotFound.code, -2);
});

test('error classes', () => {
  const e = integ.errorFromCode(-14, 'boom');
  assert.ok(e instanceof integ.CryptoError);
  assert.ok(e instanceof integ.IntegrationsError);
  assert.ok(e instanceof Error);
  assert.equal(e.code, -14);
  assert.equal(e.name, 'CryptoError');
  assert.equal(e.message, 'boom');
  const u = integ.errorFromCode(-1234, 'odd');
  assert.equal(u.constructor, integ.IntegrationsError);
  assert.equal(u.code, -1234);
  assert.equal(new integ.NotFound('x').code, -2);
  const all = ['InvalidArgument', 'NotFound', 'AlreadyExists', 'PermissionDenied', 'AuthError',
    'RateLimited', 'NetworkError', 'RemoteError', 'SignatureError', 'ReplayError',
    'ConflictError', 'MappingError', 'StoreError', 'CryptoError', 'OutOfMemory', 'Canceled',
    'Unsupported', 'InternalError'];
  const seen = new Set();
  for (const name of all) {
    const cls = integ[name];
    assert.equal(typeof cls, 'function', name);
    assert.equal(integ.errorFromCode(cls.code, '').constructor, cls);
    seen.add(cls.code);
  }
  assert.equal(seen.size, all.length);
});

test('opening without a key is InvalidArgument with the library message', () => {
  const saved = process.env.INTEG_MASTER_KEY;
  delete process.env.INTEG_MASTER_KEY;
  try {
    assert.throws(() => new integ.Context({ store: 'sqlite::memory:' }), (err) => {
      assert.ok(err instanceof integ.InvalidArgument);
      assert.equal(err.code, -1);
      assert.match(err.message, /master key/);
      return true;
    });
    assert.throws(() => new integ.Context({ store: 'sqlite::memory:', bogus: 1 }),
      (err) => err instanceof integ.InvalidArgument && /options\.bogus/.test(err.message));
  } finally {
    if (saved !== undefined) process.env.INTEG_MASTER_KEY = saved;
  }
});

test('catalog: 15 definitions, category filter, paging, lookup', () => {
  const ctx = memContext();
  try {
    const defs = ctx.definitions();
    assert.equal(defs.length, 15);
    const keys = defs.map((d) => d.key).sort();
    assert.deepEqual(keys, [
      'dynamics-erp', 'gmail-email', 'hubspot-crm', 'magento-ecommerce', 'outlook-email',
      'pipedrive-crm', 'poweroffice-accounting', 'salesforce-crm', 'sap-erp', 'sendgrid-email',
      'shopify-ecommerce', 'tripletex-accounting', 'visma-erp', 'woocommerce-ecommerce',
      'xledger-accounting',
    ]);
    const crm = ctx.definitions({ category: 'crm' });
    assert.deepEqual(crm.map((d) => d.key).sort(), ['hubspot-crm', 'pipedrive-crm', 'salesforce-crm']);
    for (const d of crm) assert.equal(d.category, 'crm');
    assert.equal(ctx.definitions({ limit: 4 }).length, 4);
    assert.deepEqual(ctx.definitions({ limit: 2, offset: 1 }).map((d) => d.key),
      defs.slice(1, 3).map((d) => d.key));
    const hub = ctx.definition('hubspot-crm');
    assert.equal(hub.key, 'hubspot-crm');
    assert.equal(hub.category, 'crm');
    assert.equal(typeof hub.config_schema, 'object');
    assert.deepEqual(ctx.definition(hub.id), hub);
    assert.throws(() => ctx.definition('nope-crm'), (err) => {
      assert.ok(err instanceof integ.NotFound);
      assert.equal(err.code, -2);
      assert.ok(err.message.length > 0);
      return true;
    });
    assert.throws(() => ctx.definition(42), integ.InvalidArgument);
    assert.throws(() => ctx.definition('a\u0000b'), integ.InvalidArgument);
    assert.throws(() => ctx.definitions({ category: 1 }), integ.InvalidArgument);
  } finally {
    ctx.close();
  }
});

test('HubSpot create (the seed example), read, list, update, credentials, delete, audit', () => {
  const ctx = memContext();
  const s = ctx.session('tenant-a', 'alice', ['admin']);
  try {
    assert.equal(s.tenantId, 'tenant-a');
    assert.equal(s.userId, 'alice');
    assert.equal(s.context, ctx);

    const created = s.createIntegration(HUBSPOT_EXAMPLE);
    assert.match(created.id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.equal(created.tenant_id, 'tenant-a');
    assert.equal(created.name, 'HubSpot Production');
    assert.equal(created.category, 'crm');
    assert.equal(created.status, 'active');
    assert.equal(created.has_credentials, true);
    assert.equal(created.config.sync_interval, 3600);
    assert.deepEqual(created.config.entities, ['contacts', 'companies', 'deals']);
    assert.equal(created.config.auto_sync, true);
    assert.equal(created.last_sync_at, null);
    assert.match(created.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    // No secret ever comes back.
    assert.ok(!JSON.stringify(created).includes('"api_key":'));
    assert.ok(!('credentials' in created));

    assert.deepEqual(s.integration(created.id), created);

    const second = s.createIntegration({ ...HUBSPOT_EXAMPLE, name: 'HubSpot Staging' });
    const list = s.integrations();
    assert.equal(list.length, 2);
    assert.deepEqual(list.map((i) => i.id), [second.id, created.id]); // newest first
    assert.equal(s.integrations({ limit: 1 }).length, 1);
    assert.equal(s.integrations({ category: 'erp' }).length, 0);
    assert.equal(s.integrations({ category: 'crm' }).length, 2);

    const updated = s.updateIntegration(created.id, { name: 'HubSpot Prod', config: { sync_interval: 7200 }, status: 'paused' });
    assert.equal(updated.name, 'HubSpot Prod');
    assert.equal(updated.status, 'paused');
    assert.equal(updated.config.sync_interval, 7200);
    assert.equal(updated.config.auto_sync, true); // merged, not replaced
    assert.equal(s.integrations({ status: 'paused' }).length, 1);

    assert.equal(s.setCredentials(created.id, { api_key: 'new-secret-value' }), undefined);
    assert.equal(s.integration(created.id).has_credentials, true);

    assert.equal(s.deleteIntegration(second.id), undefined);
    assert.throws(() => s.integration(second.id), integ.NotFound);
    assert.equal(s.integrations().length, 1);

    const audit = s.audit();
    assert.deepEqual(audit.map((a) => a.action), [
      'integration.delete', 'integration.set_credentials', 'integration.update',
      'integration.create', 'integration.create',
    ]);
    for (const a of audit) {
      assert.equal(a.tenant_id, 'tenant-a');
      assert.equal(a.user_id, 'alice');
      assert.equal(a.object_type, 'integration');
    }
    assert.ok(!JSON.stringify(audit).includes('new-secret-value'));
    assert.equal(s.audit({ action: 'integration.create' }).length, 2);
    assert.deepEqual(s.audit({ object_id: second.id }).map((a) => a.action),
      ['integration.delete', 'integration.create']);
    assert.equal(s.audit({ limit: 2 }).length, 2);
  } finally {
    s.close();
    ctx.close();
  }
});

test('error mapping: NotFound, PermissionDenied, InvalidArgument', () => {
  const ctx = memContext();
  const a = ctx.session('tenant-a', 'alice', ['admin']);
  const b = ctx.session('tenant-b', 'bob', ['admin']);
  const reader = ctx.session('tenant-a', 'rita');
  try {
    const mine = a.createIntegration(HUBSPOT_EXAMPLE);

    // Another tenant's id is exactly as if it did not exist.
    for (const call of [
      () => b.integration(mine.id),
      () => b.updateIntegration(mine.id, { name: 'x' }),
      () => b.setCredentials(mine.id, { api_key: 'x' }),
      () => b.deleteIntegration(mine.id),
    ]) {
      assert.throws(call, (err) => {
        assert.ok(err instanceof integ.NotFound, String(err));
        assert.equal(err.code, -2);
        assert.equal(err.name, 'NotFound');
        assert.ok(err.message.length > 0);
        return true;
      });
    }
    assert.equal(b.integrations().length, 0);
    assert.equal(a.integration(mine.id).id, mine.id);

    // Reading is allowed without roles; writing is not.
    assert.equal(reader.integrations().length, 1);
    assert.throws(() => reader.createIntegration(HUBSPOT_EXAMPLE), (err) => {
      assert.ok(err instanceof integ.PermissionDenied);
      assert.equal(err.code, -4);
      assert.match(err.message, /rita/);
      return true;
    });
    assert.throws(() => reader.deleteIntegration(mine.id), integ.PermissionDenied);

    // A schema violation names the field.
    assert.throws(() => a.createIntegration({
      ...HUBSPOT_EXAMPLE,
      config: { ...HUBSPOT_EXAMPLE.config, sync_interval: 'hourly' },
    }), (err) => {
      assert.ok(err instanceof integ.InvalidArgument);
      assert.equal(err.code, -1);
      assert.match(err.message, /sync_interval/);
      return true;
    });
    assert.throws(() => a.createIntegration({ ...HUBSPOT_EXAMPLE, status: 'sleeping' }),
      (err) => err instanceof integ.InvalidArgument && /status/.test(err.message));
    assert.throws(() => a.createIntegration({ ...HUBSPOT_EXAMPLE, integration_definition_id: 'nope-crm' }),
      (err) => err instanceof integ.NotFound && /integration_definition_id/.test(err.message));

    // Arguments that cannot cross the boundary.
    const cyclic = {};
    cyclic.self = cyclic;
    assert.throws(() => a.createIntegration(cyclic), integ.InvalidArgument);
    assert.throws(() => a.createIntegration({ n: 1n }), integ.InvalidArgument);
    assert.throws(() => a.integration(undefined), integ.InvalidArgument);
    assert.throws(() => ctx.session('tenant a', 'x'), (err) => err instanceof integ.InvalidArgument && /tenant_id/.test(err.message));
    assert.throws(() => ctx.session('t', 'u', 'admin'), integ.InvalidArgument);
    assert.throws(() => ctx.session('t', 'u', [1]), integ.InvalidArgument);
  } finally {
    for (const s of [a, b, reader]) s.close();
    ctx.close();
  }
});

test('registerDefinition and setAppCredentials', () => {
  const ctx = memContext();
  try {
    const hub = ctx.definition('hubspot-crm');
    assert.equal(hub.has_app_credentials, false);
    assert.equal(ctx.setAppCredentials('hubspot-crm', { client_id: 'cid', client_secret: 'shh' }), undefined);
    const after = ctx.definition('hubspot-crm');
    assert.equal(after.has_app_credentials, true);
    assert.ok(!JSON.stringify(after).includes('shh'));
    assert.throws(() => ctx.setAppCredentials('nope-crm', { client_id: 'x', client_secret: 'y' }), integ.NotFound);
    assert.throws(() => ctx.registerDefinition({ key: 'broken' }), (err) => {
      assert.ok(err instanceof integ.InvalidArgument);
      assert.ok(err.message.length > 0);
      return true;
    });
    assert.throws(() => ctx.registerDefinition('not an object'), integ.InvalidArgument);
    assert.equal(ctx.definitions().length, 15);
  } finally {
    ctx.close();
  }
});

// Accessors get no receiver check from V8 (methods do): the addon tags each
// object with its class and checks the tag. A getter of one class called on
// the other's object used to read its struct as the wrong one (a closed
// Context through Session#context: a segfault).
const wrongReceiver = (() => {
  const getter = (cls, name) => Object.getOwnPropertyDescriptor(cls.prototype, name).get;
  const ctxClosed = getter(integ.Context, 'closed');
  const sClosed = getter(integ.Session, 'closed');
  const sContext = getter(integ.Session, 'context');
  const illegal = (e) => e instanceof TypeError && /Illegal invocation/.test(e.message);
  // A Promise-returning method may throw (V8's own receiver check) or reject.
  const refused = async (f) => {
    let p;
    try {
      p = f();
    } catch (e) {
      assert.ok(illegal(e), String(e));
      return;
    }
    await assert.rejects(p, illegal);
  };
  return async (ctx, s) => {
    const plain = [{}, Object.create(integ.Context.prototype), Object.create(integ.Session.prototype),
      integ.Context.prototype, integ.Session.prototype, [], () => {}, 42, 'x', null, undefined];
    for (const other of [ctx, ...plain]) {
      assert.throws(() => sContext.call(other), illegal);
      assert.throws(() => sClosed.call(other), illegal);
      assert.throws(() => integ.Session.prototype.close.call(other), illegal);
      assert.throws(() => integ.Session.prototype.integrations.call(other), illegal);
      await refused(() => integ.Session.prototype.testIntegration.call(other, 'x'));
    }
    for (const other of [s, ...plain]) {
      assert.throws(() => ctxClosed.call(other), illegal);
      assert.throws(() => integ.Context.prototype.close.call(other), illegal);
      assert.throws(() => integ.Context.prototype.session.call(other, 't', 'u'), illegal);
      assert.throws(() => integ.Context.prototype.setEventCallback.call(other, null), illegal);
      assert.throws(() => integ.Context.prototype.setPermissionCallback.call(other, null), illegal);
      assert.throws(() => integ.Context.prototype.receiveWebhook.call(other, 'x', {}), illegal);
      assert.throws(() => integ.Context.prototype.definitions.call(other), illegal);
      await refused(() => integ.Context.prototype.processWebhooks.call(other));
    }
  };
})();

test('wrong receiver, open objects: getters and methods of one class on the other or a plain object are TypeError', async () => {
  const ctx = memContext();
  const s = ctx.session('t', 'u');
  await wrongReceiver(ctx, s);
  // Nothing was touched: both still work.
  assert.equal(ctx.closed, false);
  assert.equal(s.closed, false);
  assert.equal(s.context, ctx);
  assert.deepEqual(s.integrations(), []);
  s.close();
  ctx.close();
});

test('wrong receiver, closed objects: the same (Session.prototype.context on a closed Context crashed)', async () => {
  const ctx = memContext();
  const s = ctx.session('t', 'u');
  s.close();
  ctx.close();
  await wrongReceiver(ctx, s);
  assert.equal(ctx.closed, true);
  assert.equal(s.closed, true);
  assert.equal(s.context, ctx);
});

test('misuse: wrong receiver, direct Session construction, call without new', () => {
  const ctx = memContext();
  try {
    assert.throws(() => integ.Context.prototype.definitions.call({}), TypeError);
    assert.throws(() => integ.Session.prototype.integrations.call(ctx), TypeError);
    assert.throws(() => new integ.Session(), integ.InvalidArgument);
    assert.throws(() => integ.Context({ store: 'sqlite::memory:' }), TypeError);
    assert.ok(ctx instanceof integ.Context);
    const s = ctx.session('t', 'u');
    assert.ok(s instanceof integ.Session);
    s.close();
  } finally {
    ctx.close();
  }
});

'use strict';
// A file-backed store: data survives reopening, Context.open and
// rotateMasterKey run as async work, and a wrong key is a CryptoError.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const integ = require('..');

const REQUEST = {
  integration_definition_id: 'hubspot-crm',
  name: 'HubSpot Production',
  credentials: { api_key: '...' },
  config: { sync_interval: 3600, entities: ['contacts', 'companies', 'deals'], auto_sync: true },
};

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'integ-node-'));
test.after(() => fs.rmSync(dir, { recursive: true, force: true }));

test('a file store persists; Context.open resolves a Context', async () => {
  const store = `sqlite:${path.join(dir, 'persist.db')}`;
  const key = integ.generateMasterKey();
  const ctx = new integ.Context({ store, master_key: key });
  const s = ctx.session('t1', 'u1', ['admin']);
  const created = s.createIntegration(REQUEST);
  s.close();
  ctx.close();

  const again = await integ.Context.open({ store, master_key: key });
  assert.ok(again instanceof integ.Context);
  assert.equal(again.definitions().length, 15);
  const s2 = again.session('t1', 'u2');
  assert.deepEqual(s2.integrations().map((i) => i.id), [created.id]);
  s2.close();
  again.close();
});

test('durability "full": commits persist the same; a bad value or a bad type names the option', () => {
  const store = `sqlite:${path.join(dir, 'full.db')}`;
  const key = integ.generateMasterKey();
  const ctx = new integ.Context({ store, master_key: key, durability: 'full' });
  const s = ctx.session('t1', 'u1', ['admin']);
  const created = s.createIntegration(REQUEST);
  s.close();
  ctx.close();
  const again = new integ.Context({ store, master_key: key });
  const s2 = again.session('t1', 'u2');
  assert.deepEqual(s2.integrations().map((i) => i.id), [created.id]);
  s2.close();
  again.close();
  for (const durability of ['paranoid', 2]) {
    assert.throws(() => new integ.Context({ store: 'sqlite::memory:', master_key: key, durability }),
      (err) => err instanceof integ.InvalidArgument && /options\.durability/.test(err.message));
  }
});

test('Context.open rejects with the library error', async () => {
  await assert.rejects(integ.Context.open({ store: 'sqlite::memory:', master_key: 'short' }), (err) => {
    assert.ok(err instanceof integ.InvalidArgument);
    assert.equal(err.code, -1);
    assert.match(err.message, /master_key/);
    return true;
  });
  await assert.rejects(integ.Context.open({ store: 'postgres:x', master_key: integ.generateMasterKey() }),
    (err) => err instanceof integ.InvalidArgument && /options\.store/.test(err.message));
  // Argument conversion failures reject as well, rather than throwing.
  const cyclic = {};
  cyclic.self = cyclic;
  await assert.rejects(integ.Context.open(cyclic), integ.InvalidArgument);
});

function isCryptoError(err) {
  assert.ok(err instanceof integ.CryptoError, String(err));
  assert.ok(err instanceof integ.IntegrationsError);
  assert.equal(err.code, -14);
  assert.equal(err.name, 'CryptoError');
  assert.match(err.message, /key/);
  return true;
}

// A store opened with the wrong key: the library may refuse at open (it
// keeps a sealed key-check record) or, failing that, when rotation first
// tries to unseal a secret. Either way the caller sees a CryptoError.
async function assertWrongKey(store, key) {
  assert.throws(() => new integ.Context({ store, master_key: key }), isCryptoError);
  let ctx;
  try {
    ctx = await integ.Context.open({ store, master_key: key });
  } catch (err) {
    return isCryptoError(err);
  }
  try {
    const p = ctx.rotateMasterKey(integ.generateMasterKey());
    assert.ok(p instanceof Promise);
    await assert.rejects(p, isCryptoError);
  } finally {
    ctx.close();
  }
  return true;
}

test('rotateMasterKey re-seals; a wrong key is a CryptoError', async () => {
  const store = `sqlite:${path.join(dir, 'keys.db')}`;
  const keyA = integ.generateMasterKey();
  const keyB = integ.generateMasterKey();
  const keyC = integ.generateMasterKey();

  // Seal under A: tenant credentials and platform app credentials.
  const ctxA = new integ.Context({ store, master_key: keyA });
  const s = ctxA.session('t1', 'u1', ['admin']);
  const created = s.createIntegration(REQUEST);
  s.close();
  ctxA.setAppCredentials('hubspot-crm', { client_id: 'cid', client_secret: 'app-secret' });
  ctxA.close();

  // Under B nothing can be unsealed, and nothing changes.
  await assertWrongKey(store, keyB);

  // Under A rotation works: A -> C; the context then uses C (C -> A -> C).
  const ctxA2 = new integ.Context({ store, master_key: keyA });
  const rotated = ctxA2.rotateMasterKey(keyC);
  assert.ok(rotated instanceof Promise);
  assert.equal(await rotated, undefined);
  assert.equal(await ctxA2.rotateMasterKey(keyA), undefined);
  assert.equal(await ctxA2.rotateMasterKey(keyC), undefined);
  ctxA2.close();

  // Now A is the wrong key, and C the right one.
  await assertWrongKey(store, keyA);
  const ctxC = await integ.Context.open({ store, master_key: keyC });
  const sc = ctxC.session('t1', 'u1', ['admin']);
  sc.setCredentials(created.id, { api_key: 'rotated' });
  assert.equal(sc.integration(created.id).has_credentials, true);
  sc.close();
  assert.equal(await ctxC.rotateMasterKey(keyB), undefined);
  ctxC.close();
  await assertWrongKey(store, keyC);
});

test('rotateMasterKey: bad input and closed contexts reject', async () => {
  const ctx = new integ.Context({ store: 'sqlite::memory:', master_key: integ.generateMasterKey() });
  await assert.rejects(ctx.rotateMasterKey('not-a-key'),
    (err) => err instanceof integ.InvalidArgument && /new_key/.test(err.message));
  await assert.rejects(ctx.rotateMasterKey(42), integ.InvalidArgument);
  ctx.close();
  await assert.rejects(ctx.rotateMasterKey(integ.generateMasterKey()),
    (err) => err instanceof integ.InvalidArgument && /closed/.test(err.message));
});

test('close() while a rotation runs waits for it', async () => {
  const ctx = new integ.Context({ store: 'sqlite::memory:', master_key: integ.generateMasterKey() });
  const s = ctx.session('t1', 'u1', ['admin']);
  for (let i = 0; i < 20; i++) s.createIntegration({ ...REQUEST, name: `HubSpot ${i}` });
  s.close();
  const pending = ctx.rotateMasterKey(integ.generateMasterKey());
  ctx.close();
  assert.equal(ctx.closed, true);
  assert.throws(() => ctx.definitions(), integ.InvalidArgument);
  assert.equal(await pending, undefined);
  ctx.close(); // still idempotent
});

test('webhooks on a file store: a 202 waits in the inbox until the next transaction; duplicates stay exact', () => {
  const db = path.join(dir, 'hooks.db');
  const inbox = `${db}-inbox`;
  const key = integ.generateMasterKey();
  const opts = { store: `sqlite:${db}`, master_key: key, webhook: { base_url: 'https://hooks.example.com/wh' } };
  const a = new integ.Context(opts);
  const b = new integ.Context(opts);
  const s = a.session('t1', 'u1', ['admin']);
  const woo = s.createIntegration({ integration_definition_id: 'woocommerce-ecommerce',
    config: { site_url: 'https://shop.example.com' }, credentials: { consumer_key: 'ck_x', consumer_secret: 'cs_x' } });
  const ep = s.createWebhookEndpoint(woo.id);
  const deliver = (ctx, delivery, id) => {
    const body = Buffer.from(JSON.stringify({ id, email: `c${id}@example.com` }));
    const sig = require('node:crypto').createHmac('sha256', ep.secret).update(body).digest('base64');
    return ctx.receiveWebhook(ep.id, { url: ep.url, body, headers: {
      'Content-Type': 'application/json', 'X-WC-Webhook-Topic': 'customer.updated',
      'X-WC-Webhook-Signature': sig, 'X-WC-Webhook-Delivery-ID': delivery } }).status;
  };
  assert.equal(deliver(a, 'n-1', 1), 202);
  assert.ok(fs.statSync(inbox).size > 0);
  assert.equal(deliver(a, 'n-1', 1), 200);
  assert.equal(deliver(b, 'n-1', 1), 200);
  assert.equal(deliver(b, 'n-2', 2), 202);
  const events = s.webhookEvents();
  assert.deepEqual(events.map((e) => e.event_id).sort(), ['n-1', 'n-2']);
  assert.equal(fs.statSync(inbox).size, 0);
  s.close();
  a.close();
  b.close();
  assert.equal(fs.existsSync(inbox), false);
});

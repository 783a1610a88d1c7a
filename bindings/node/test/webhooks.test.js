'use strict';
// Webhook endpoints, receiving (synchronous, committed before the answer),
// processing (a Promise), the event list, replay, dead letters through the
// event callback, and tenant isolation — on in-memory stores.

const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const integ = require('..');

const BASE = 'https://app.example.com/hooks';
const WOO = {
  integration_definition_id: 'woocommerce-ecommerce',
  credentials: { consumer_key: 'ck_x', consumer_secret: 'cs_x' },
  config: { site_url: 'https://shop.example.com' },
};
const CUSTOMER = {
  id: 42,
  email: 'ann@example.com',
  first_name: 'Ann',
  last_name: 'Lee',
  billing: { phone: '+47 22 00 00 00', company: 'Acme AS' },
  date_modified_gmt: '2025-01-23T10:00:00',
};

function memContext(extra = {}) {
  return new integ.Context({
    store: 'sqlite::memory:',
    master_key: integ.generateMasterKey(),
    ...extra,
    webhook: { base_url: BASE, ...(extra.webhook || {}) },
  });
}

// WooCommerce: base64 HMAC-SHA256 of the raw body with the endpoint secret.
function wooDelivery(ep, body, { topic = 'customer.updated', id = 'd-1', secret = ep.secret } = {}) {
  const raw = Buffer.from(body);
  return {
    method: 'POST',
    url: ep.url,
    headers: {
      'X-WC-Webhook-Signature': crypto.createHmac('sha256', secret).update(raw).digest('base64'),
      'X-WC-Webhook-Topic': topic,
      'X-WC-Webhook-Delivery-ID': id,
      'Content-Type': 'application/json',
    },
    body: raw,
  };
}

function wooSetup(ctx) {
  const s = ctx.session('acme', 'alice', ['admin']);
  const woo = s.createIntegration(WOO);
  const ep = s.createWebhookEndpoint(woo.id);
  return { s, woo, ep };
}

// Bounded wait for a condition the JS thread will make true.
async function until(cond, what, ms = 5000) {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

test('woocommerce endpoint: the generated secret is shown once', () => {
  const ctx = memContext();
  const { s, woo, ep } = wooSetup(ctx);
  assert.match(ep.secret, /^whsec_/);
  assert.equal(ep.scheme, 'woocommerce');
  assert.equal(ep.integration_id, woo.id);
  assert.equal(ep.active, true);
  assert.equal(ep.url, `${BASE}/${ep.id}`);
  assert.match(ep.id, /^[0-9a-f]{32}$/); // 128 random bits

  const list = s.webhookEndpoints(woo.id);
  assert.equal(list.length, 1);
  assert.equal(list[0].id, ep.id);
  assert.equal('secret' in list[0], false);
  assert.ok(!JSON.stringify(list).includes(ep.secret));

  const upd = s.updateWebhookEndpoint(ep.id, { description: 'shop', events: ['customer.*'] });
  assert.equal(upd.description, 'shop');
  assert.deepEqual(upd.events, ['customer.*']);
  assert.equal('secret' in upd, false);

  const rot = s.rotateWebhookSecret(ep.id);
  assert.match(rot.secret, /^whsec_/);
  assert.notEqual(rot.secret, ep.secret);
  assert.equal(s.webhookEndpoints(woo.id)[0].has_previous_secret, true);
  assert.ok(!JSON.stringify(s.audit()).includes(rot.secret));

  assert.throws(() => s.createWebhookEndpoint(woo.id, { scheme: 'hmac' }), integ.InvalidArgument);
  assert.throws(() => s.createWebhookEndpoint(woo.id, { colour: 1 }), integ.InvalidArgument);
  assert.throws(() => s.createWebhookEndpoint(woo.id, { events: 'all' }), integ.InvalidArgument);
  assert.throws(() => s.createWebhookEndpoint(42), integ.InvalidArgument);

  assert.equal(s.deleteWebhookEndpoint(ep.id), undefined);
  assert.throws(() => s.deleteWebhookEndpoint(ep.id), integ.NotFound);
  assert.deepEqual(s.webhookEndpoints(woo.id), []);
  ctx.close();
});

test('receiveWebhook: accepted, duplicate, bad signature, unknown endpoint, ping', () => {
  const ctx = memContext();
  const { ep } = wooSetup(ctx);
  const d = wooDelivery(ep, JSON.stringify(CUSTOMER));

  const first = ctx.receiveWebhook(ep.id, d);
  assert.equal(first.status, 202);
  const answer = JSON.parse(first.body);
  assert.equal(answer.status, 'accepted');
  assert.match(answer.id, /^[0-9a-f-]{36}$/);
  assert.equal('reason' in first, false);

  const again = ctx.receiveWebhook(ep.id, d);
  assert.equal(again.status, 200);
  assert.equal(JSON.parse(again.body).status, 'duplicate');

  const forged = ctx.receiveWebhook(ep.id, {
    ...d, headers: { ...d.headers, 'X-WC-Webhook-Signature': Buffer.alloc(32).toString('base64') },
  });
  assert.equal(forged.status, 401);
  assert.match(forged.reason, /X-WC-Webhook-Signature/i); // for the host's logs

  // The same body signed with another secret, and a tampered body.
  assert.equal(ctx.receiveWebhook(ep.id, wooDelivery(ep, '{"id":1}', { secret: 'whsec_other', id: 'd-2' })).status, 401);
  assert.equal(ctx.receiveWebhook(ep.id, { ...d, body: Buffer.from(JSON.stringify({ ...CUSTOMER, email: 'x@y.z' })) }).status, 401);

  const unknown = ctx.receiveWebhook('0'.repeat(32), d);
  assert.equal(unknown.status, 404);
  assert.equal(ctx.receiveWebhook('not an id!', d).status, 404);

  // WooCommerce's creation ping is unsigned and never queued.
  const ping = ctx.receiveWebhook(ep.id, { method: 'POST', url: ep.url, body: 'webhook_id=1' });
  assert.equal(ping.status, 200);
  assert.equal(JSON.parse(ping.body).status, 'ping');

  // An inactive endpoint answers like an unknown one.
  const s = ctx.session('acme', 'alice', ['admin']);
  s.updateWebhookEndpoint(ep.id, { active: false });
  assert.equal(ctx.receiveWebhook(ep.id, wooDelivery(ep, '{"id":7}', { id: 'd-7' })).status, 404);
  assert.equal(s.webhookEvents().length, 1); // only the accepted one
  ctx.close();
});

test('receiveWebhook: header and body forms', () => {
  const ctx = memContext();
  const { s, ep } = wooSetup(ctx);
  const body = JSON.stringify(CUSTOMER);
  const d = wooDelivery(ep, body, { id: 'forms-1' });
  const pairs = Object.entries(d.headers);
  // An array of pairs with a string body (sent as UTF-8).
  assert.equal(ctx.receiveWebhook(ep.id, { method: 'POST', url: ep.url, headers: pairs, body }).status, 202);
  // A Map, fetch's Headers (lower-cased names) and a Uint8Array view into
  // a larger buffer: all the same delivery.
  const big = Buffer.concat([Buffer.from('xx'), Buffer.from(body), Buffer.from('yy')]);
  const view = new Uint8Array(big.buffer, big.byteOffset + 2, Buffer.byteLength(body));
  assert.equal(ctx.receiveWebhook(ep.id, { url: ep.url, headers: new Map(pairs), body: view }).status, 200);
  assert.equal(ctx.receiveWebhook(ep.id, { url: ep.url, headers: new Headers(pairs), body: view.slice().buffer }).status, 200);
  // Repeated headers as an array value are passed one by one.
  const rep = wooDelivery(ep, body, { id: 'forms-2' });
  rep.headers['X-Extra'] = ['a', 'b'];
  rep.headers['X-Absent'] = undefined; // IncomingHttpHeaders allows it: skipped
  assert.equal(ctx.receiveWebhook(ep.id, rep).status, 202);
  assert.equal(s.webhookEvents().length, 2);

  const bad = [
    [{ ...d, headers: 'X-A: 1' }, /request\.headers: must be an array of \[name, value\] pairs or an object/],
    [{ ...d, headers: [['X-A']] }, /request\.headers\[0\]: must be a \[name, value\] pair/],
    [{ ...d, headers: [['X-A', 1]] }, /request\.headers\[0\]: the value: must be a string/],
    [{ ...d, headers: { 'X-A': 1 } }, /request\.headers\.X-A: the value: must be a string/],
    [{ ...d, headers: { 'X-A': 'a\0b' } }, /NUL/],
    [{ ...d, body: 42 }, /request\.body: must be a Buffer, a typed array, an ArrayBuffer or a string/],
    [{ ...d, body: { a: 1 } }, /request\.body: must be a Buffer/],
    [{ ...d, url: 7 }, /request\.url: must be a string/],
    [{ ...d, header: {} }, /request\.header: unknown option \(use method, url, headers, body\)/],
  ];
  for (const [req, re] of bad) {
    assert.throws(() => ctx.receiveWebhook(ep.id, req), (e) => e instanceof integ.InvalidArgument && re.test(e.message));
  }
  assert.throws(() => ctx.receiveWebhook(ep.id), integ.InvalidArgument);
  assert.throws(() => ctx.receiveWebhook(ep.id, 'body'), integ.InvalidArgument);
  assert.throws(() => ctx.receiveWebhook(null, d), integ.InvalidArgument);
  assert.throws(() => integ.Context.prototype.receiveWebhook.call({}, ep.id, d), TypeError);
  ctx.close();
  assert.throws(() => ctx.receiveWebhook(ep.id, d), /the context is closed/);
});

test('processWebhooks: a WooCommerce customer lands in local contacts', async () => {
  const ctx = memContext();
  const { s, woo, ep } = wooSetup(ctx);
  assert.equal(ctx.receiveWebhook(ep.id, wooDelivery(ep, JSON.stringify(CUSTOMER))).status, 202);
  const queued = s.webhookEvents();
  assert.equal(queued.length, 1);
  assert.equal(queued[0].status, 'queued');
  assert.equal(queued[0].event_type, 'customer.updated');
  assert.equal(queued[0].event_id, 'd-1');

  const p = ctx.processWebhooks();
  assert.ok(p instanceof Promise);
  const r = await p;
  assert.equal(r.claimed, 1);
  assert.equal(r.processed, 1);
  assert.equal(r.failed, 0);
  assert.equal(r.dead, 0);
  assert.equal(r.events[0].status, 'processed');
  assert.equal(r.events[0].result.records_created, 1);

  // The manifest's default mapping for customers -> contacts.
  const [rec] = s.entities('contacts');
  assert.deepEqual(rec.data, {
    email: 'ann@example.com',
    first_name: 'Ann',
    last_name: 'Lee',
    phone: '+47 22 00 00 00',
    company_name: 'Acme AS',
    external_updated_at: '2025-01-23T10:00:00',
  });
  const links = s.entity('contacts', rec.id).links;
  assert.equal(links.length, 1);
  assert.equal(links[0].integration_id, woo.id);
  assert.equal(links[0].external_id, '42');

  const [ev] = s.webhookEvents({ status: 'processed' });
  assert.equal(ev.id, queued[0].id);
  assert.equal(ev.attempts, 1);
  assert.ok(ev.processed_at);
  assert.deepEqual(s.webhookEvents({ status: 'queued' }), []);
  assert.equal(s.webhookEvents({ endpoint_id: ep.id }).length, 1);
  const log = s.syncLogs(woo.id);
  assert.equal(log[0].trigger, 'webhook');

  // Nothing due: an empty round.
  assert.equal((await ctx.processWebhooks(10)).claimed, 0);
  ctx.close();
});

test('processWebhooks: argument errors reject, never throw', async () => {
  const ctx = memContext();
  for (const bad of [0, -1, 10001]) {
    await assert.rejects(ctx.processWebhooks(bad), (e) => e instanceof integ.InvalidArgument && /max_events/.test(e.message));
  }
  for (const bad of [1.5, 'ten', NaN, Infinity, 2 ** 31, {}]) {
    await assert.rejects(ctx.processWebhooks(bad), (e) => e instanceof integ.InvalidArgument && /maxEvents: must be an integer/.test(e.message));
  }
  assert.equal((await ctx.processWebhooks(null)).claimed, 0);
  assert.equal((await ctx.processWebhooks(10000)).claimed, 0);
  assert.throws(() => ctx.session('acme', 'a').webhookEvents({ status: 'lost' }), integ.InvalidArgument);
  ctx.close();
  await assert.rejects(ctx.processWebhooks(), /the context is closed/);
});

test('tenant isolation and permissions', () => {
  const ctx = memContext();
  const { s, woo, ep } = wooSetup(ctx);
  ctx.receiveWebhook(ep.id, wooDelivery(ep, JSON.stringify(CUSTOMER)));
  const [ev] = s.webhookEvents();

  const other = ctx.session('globex', 'gina', ['admin']);
  assert.throws(() => other.createWebhookEndpoint(woo.id), integ.NotFound);
  assert.throws(() => other.webhookEndpoints(woo.id), integ.NotFound);
  assert.throws(() => other.updateWebhookEndpoint(ep.id, { active: false }), integ.NotFound);
  assert.throws(() => other.rotateWebhookSecret(ep.id), integ.NotFound);
  assert.throws(() => other.deleteWebhookEndpoint(ep.id), integ.NotFound);
  assert.throws(() => other.replayWebhookEvent(ev.id), integ.NotFound);
  assert.deepEqual(other.webhookEvents(), []);

  const viewer = ctx.session('acme', 'victor');
  assert.equal(viewer.webhookEndpoints(woo.id).length, 1); // reads are open to the tenant
  assert.equal(viewer.webhookEvents().length, 1);
  assert.throws(() => viewer.createWebhookEndpoint(woo.id), integ.PermissionDenied);
  assert.throws(() => viewer.updateWebhookEndpoint(ep.id, { active: false }), integ.PermissionDenied);
  assert.throws(() => viewer.rotateWebhookSecret(ep.id), integ.PermissionDenied);
  assert.throws(() => viewer.deleteWebhookEndpoint(ep.id), integ.PermissionDenied);
  assert.throws(() => viewer.replayWebhookEvent(ev.id), integ.PermissionDenied);
  assert.equal(s.webhookEndpoints(woo.id)[0].active, true);
  ctx.close();
});

test('rotation: the previous secret keeps verifying for the grace period', () => {
  const ctx = memContext();
  const { s, ep } = wooSetup(ctx);
  const rot = s.rotateWebhookSecret(ep.id);
  assert.equal(ctx.receiveWebhook(ep.id, wooDelivery(ep, '{"id":1}', { id: 'r-1' })).status, 202);
  assert.equal(ctx.receiveWebhook(ep.id, wooDelivery(ep, '{"id":2}', { id: 'r-2', secret: rot.secret })).status, 202);
  assert.equal(ctx.receiveWebhook(ep.id, wooDelivery(ep, '{"id":3}', { id: 'r-3', secret: 'whsec_nope' })).status, 401);
  ctx.close();
});

// ---- dead letters and the event callback ----------------------------------

const HUBSPOT_APP = { client_id: 'app-client', client_secret: 'hubspot-app-secret' };

// HubSpot v3: base64 HMAC-SHA256 of method + url + body + timestamp (ms)
// with the app's client secret.
function hubspotDelivery(url, body, secret = HUBSPOT_APP.client_secret) {
  const ts = String(Date.now());
  const sig = crypto.createHmac('sha256', secret).update(`POST${url}${body}${ts}`).digest('base64');
  return {
    method: 'POST',
    url,
    headers: [
      ['X-HubSpot-Signature-v3', sig],
      ['X-HubSpot-Request-Timestamp', ts],
      ['Content-Type', 'application/json'],
    ],
    body,
  };
}

function deadLetterContext() {
  const ctx = memContext({
    base_url_overrides: { 'hubspot-crm': 'http://127.0.0.1:9' }, // the fetch can never succeed
    http: { allow_private_networks: true, max_retries: 0, connect_timeout_ms: 2000, timeout_ms: 5000 },
    webhook: { max_attempts: 1 },
  });
  ctx.setAppCredentials('hubspot-crm', HUBSPOT_APP);
  const s = ctx.session('acme', 'alice', ['admin']);
  const hub = s.createIntegration({ integration_definition_id: 'hubspot-crm', credentials: { api_key: 'tok' } });
  const ep = s.createWebhookEndpoint(hub.id); // the secret is the app's client secret
  return { ctx, s, hub, ep };
}

test('a dead event reaches the event callback before processWebhooks settles; replay', async () => {
  const { ctx, s, hub, ep } = deadLetterContext();
  assert.equal(ep.scheme, 'hubspot-v3');
  const events = [];
  ctx.setEventCallback((e) => events.push(e));
  const body = JSON.stringify([{ eventId: 1, subscriptionType: 'contact.propertyChange', objectId: 9 }]);
  const got = ctx.receiveWebhook(ep.id, hubspotDelivery(ep.url, body));
  assert.equal(got.status, 202, got.reason);
  // A stale or wrong signature never gets queued.
  assert.equal(ctx.receiveWebhook(ep.id, hubspotDelivery(ep.url, body, 'wrong')).status, 401);

  const r = await ctx.processWebhooks();
  assert.equal(r.claimed, 1);
  assert.equal(r.failed, 1);
  assert.equal(r.dead, 1);
  assert.equal(r.events[0].status, 'dead');
  // Delivered on this thread, before the Promise settled.
  assert.equal(events.length, 1);
  const [dead] = events;
  assert.equal(dead.type, 'webhook.dead');
  assert.equal(dead.tenant_id, 'acme');
  assert.equal(dead.integration_id, hub.id);
  assert.equal(dead.endpoint_id, ep.id);
  assert.equal(dead.event_id, r.events[0].id);
  assert.equal(dead.attempts, 1);
  assert.match(dead.last_error, /127\.0\.0\.1/);
  assert.match(dead.at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);

  const [ev] = s.webhookEvents({ status: 'dead' });
  assert.equal(ev.id, dead.event_id);
  assert.equal(ev.attempts, 1);
  assert.match(ev.last_error, /127\.0\.0\.1/);

  // Replay: queued again, dead again (the API is still unreachable).
  assert.throws(() => ctx.session('acme', 'victor').replayWebhookEvent(ev.id), integ.PermissionDenied);
  assert.equal(s.replayWebhookEvent(ev.id), undefined);
  assert.equal(s.webhookEvents({ status: 'queued' }).length, 1);
  assert.throws(() => s.replayWebhookEvent(ev.id), integ.ConflictError); // queued, not dead
  assert.throws(() => s.replayWebhookEvent('nope'), integ.NotFound);
  const again = await ctx.processWebhooks();
  assert.equal(again.dead, 1);
  assert.equal(events.length, 2);
  assert.equal(events[1].event_id, ev.id);

  // Cleared: the next dead event is not delivered.
  ctx.setEventCallback(null);
  s.replayWebhookEvent(ev.id);
  assert.equal((await ctx.processWebhooks()).dead, 1);
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(events.length, 2);
  ctx.close();
});

test('setEventCallback: replacing, validation, and a handler that calls the library', async () => {
  const { ctx, s, ep } = deadLetterContext();
  const body = JSON.stringify([{ eventId: 2, subscriptionType: 'contact.creation', objectId: 5 }]);
  assert.equal(ctx.receiveWebhook(ep.id, hubspotDelivery(ep.url, body)).status, 202);
  const first = [];
  const second = [];
  ctx.setEventCallback((e) => first.push(e));
  ctx.setEventCallback((e) => {
    // Runs as its own task on the JS thread: the library may be called,
    // even on the session the application is using.
    second.push({ e, list: s.webhookEvents({ status: 'dead' }).map((x) => x.id) });
  });
  await ctx.processWebhooks();
  assert.equal(first.length, 0);
  assert.equal(second.length, 1);
  assert.deepEqual(second[0].list, [second[0].e.event_id]);

  assert.throws(() => ctx.setEventCallback('no'), (e) => e instanceof integ.InvalidArgument && /fn: must be a function or null/.test(e.message));
  assert.throws(() => ctx.setEventCallback({}), integ.InvalidArgument);
  ctx.setEventCallback(undefined); // clears, like null
  ctx.setEventCallback(() => {});
  ctx.close();
  assert.throws(() => ctx.setEventCallback(() => {}), /the context is closed/);
  ctx.setEventCallback(null); // clearing still works (and releases the function)
  ctx.setEventCallback(null);
});

test('event callback: a throw is an uncaught exception; a set callback does not keep the process alive', () => {
  const { spawnSync } = require('node:child_process');
  const script = `
    const integ = require(${JSON.stringify(require.resolve('..'))});
    const crypto = require('node:crypto');
    const ctx = new integ.Context({ store: 'sqlite::memory:', master_key: integ.generateMasterKey(),
      base_url_overrides: { 'hubspot-crm': 'http://127.0.0.1:9' },
      http: { allow_private_networks: true, max_retries: 0 }, webhook: { max_attempts: 1 } });
    ctx.setAppCredentials('hubspot-crm', { client_id: 'c', client_secret: 'sec' });
    const s = ctx.session('acme', 'alice', ['admin']);
    const hub = s.createIntegration({ integration_definition_id: 'hubspot-crm', credentials: { api_key: 't' } });
    const ep = s.createWebhookEndpoint(hub.id);
    const url = 'https://h.example.com/' + ep.id, ts = String(Date.now());
    const body = '[{"eventId":3,"subscriptionType":"contact.creation","objectId":1}]';
    const sig = crypto.createHmac('sha256', 'sec').update('POST' + url + body + ts).digest('base64');
    ctx.receiveWebhook(ep.id, { url, body, headers: { 'X-HubSpot-Signature-v3': sig, 'X-HubSpot-Request-Timestamp': ts } });
    process.on('uncaughtException', (e) => { console.log('uncaught:', e.message); });
    ctx.setEventCallback((e) => { throw new Error('handler failed on ' + e.type); });
    ctx.processWebhooks().then((r) => console.log('settled dead=' + r.dead));
    // No close(): the callback must not hold the loop open.
  `;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 30000, env: process.env });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, 'uncaught: handler failed on webhook.dead\nsettled dead=1\n');
});

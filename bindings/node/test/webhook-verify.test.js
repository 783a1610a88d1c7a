'use strict';
// verifyWebhook: the stateless module function (no context). The "standard"
// scheme is cross-checked against the official standardwebhooks SDK when
// tests/oracles has it installed (npm ci in tests/oracles).

const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const path = require('node:path');
const integ = require('..');

const ORACLES = path.join(__dirname, '..', '..', '..', 'tests', 'oracles', 'node_modules');
let sdk = null;
try {
  sdk = require(path.join(ORACLES, 'standardwebhooks'));
} catch {
  sdk = null;
}

const SECRET = 'whsec_' + Buffer.from('a 24-byte test key ......').toString('base64');
const BODY = JSON.stringify({ type: 'invoice.paid', data: { id: 'in_1', amount: 4200 } });

// The Standard Webhooks rule, by hand: base64 HMAC-SHA256 of
// "id.timestamp.body" keyed with the base64-decoded secret.
function standardHeaders(id, ts, body, secret = SECRET) {
  const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
  const sig = crypto.createHmac('sha256', key).update(`${id}.${ts}.${body}`).digest('base64');
  return { 'webhook-id': id, 'webhook-timestamp': String(ts), 'webhook-signature': `v1,${sig}` };
}

const nowS = () => Math.floor(Date.now() / 1000);

test('standard: signed by the official SDK, verified by the binding', { skip: !sdk && 'standardwebhooks not installed in tests/oracles' }, () => {
  const wh = new sdk.Webhook(SECRET);
  const at = new Date();
  const id = 'msg_2mV9Yq0cQp';
  const signature = wh.sign(id, at, BODY);
  const headers = {
    'webhook-id': id,
    'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
    'webhook-signature': signature,
  };
  // The SDK agrees with itself, and with the hand-written rule.
  wh.verify(BODY, headers);
  assert.equal(signature, standardHeaders(id, headers['webhook-timestamp'], BODY)['webhook-signature']);

  assert.equal(integ.verifyWebhook({ scheme: 'standard', secret: SECRET, headers, body: BODY }), undefined);
  assert.equal(integ.verifyWebhook({ scheme: 'standard', secret: SECRET, headers, body: Buffer.from(BODY) }), undefined);
  assert.equal(integ.verifyWebhook({ scheme: 'standard', secret: SECRET, headers: Object.entries(headers), body: BODY }), undefined);

  // Tampered body -> SignatureError, and the SDK rejects it too.
  const tampered = BODY.replace('4200', '4201');
  assert.throws(() => wh.verify(tampered, headers), sdk.WebhookVerificationError);
  assert.throws(() => integ.verifyWebhook({ scheme: 'standard', secret: SECRET, headers, body: tampered }),
    (e) => e instanceof integ.SignatureError && e.code === integ.codes.ESIGNATURE);

  // The binding signs (by hand), the SDK verifies: both directions agree.
  const mine = standardHeaders('msg_x', nowS(), BODY);
  wh.verify(BODY, mine);
  integ.verifyWebhook({ scheme: 'standard', secret: SECRET, headers: mine, body: BODY });
});

test('standard: tampering, replay window, missing headers', () => {
  const ts = nowS();
  const headers = standardHeaders('msg_1', ts, BODY);
  const opts = { scheme: 'standard', secret: SECRET, method: 'POST', url: 'https://app.example.com/hooks/x', headers, body: BODY };
  integ.verifyWebhook(opts);

  assert.throws(() => integ.verifyWebhook({ ...opts, body: BODY + ' ' }), integ.SignatureError);
  assert.throws(() => integ.verifyWebhook({ ...opts, headers: { ...headers, 'webhook-id': 'msg_2' } }), integ.SignatureError);
  assert.throws(() => integ.verifyWebhook({ ...opts, secret: 'whsec_' + Buffer.from('another key').toString('base64') }), integ.SignatureError);

  // An old timestamp: ReplayError, also when signed correctly.
  const old = ts - 3600;
  const stale = { ...opts, headers: standardHeaders('msg_1', old, BODY) };
  assert.throws(() => integ.verifyWebhook(stale), (e) => e instanceof integ.ReplayError && /tolerance/.test(e.message));
  // ... accepted with a wider tolerance, or with the check skipped, or at
  // a `now` (seconds or a Date) near the delivery.
  integ.verifyWebhook({ ...stale, tolerance: 7200 });
  integ.verifyWebhook({ ...stale, tolerance: -1 });
  integ.verifyWebhook({ ...stale, now: old + 10 });
  integ.verifyWebhook({ ...stale, now: new Date((old + 10) * 1000) });
  assert.throws(() => integ.verifyWebhook({ ...opts, now: ts + 301 }), integ.ReplayError);
  integ.verifyWebhook({ ...opts, now: ts + 299 });

  // Missing header -> InvalidArgument naming it.
  for (const name of ['webhook-id', 'webhook-timestamp', 'webhook-signature']) {
    const h = { ...headers };
    delete h[name];
    assert.throws(() => integ.verifyWebhook({ ...opts, headers: h }),
      (e) => e instanceof integ.InvalidArgument && e.message.includes(name), name);
  }
  assert.throws(() => integ.verifyWebhook({ ...opts, headers: undefined }), integ.InvalidArgument);
  // Header names match case-insensitively.
  integ.verifyWebhook({ ...opts, headers: Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toUpperCase(), v])) });
});

test('secrets: several, as an array or space-separated (rotation)', () => {
  const headers = standardHeaders('msg_r', nowS(), BODY);
  const other = 'whsec_' + Buffer.from('the next key').toString('base64');
  integ.verifyWebhook({ scheme: 'standard', secret: [other, SECRET], headers, body: BODY });
  integ.verifyWebhook({ scheme: 'standard', secret: `${other} ${SECRET}`, headers, body: BODY });
  assert.throws(() => integ.verifyWebhook({ scheme: 'standard', secret: [other], headers, body: BODY }), integ.SignatureError);
  assert.throws(() => integ.verifyWebhook({ scheme: 'standard', secret: [], headers, body: BODY }),
    /options\.secret: must hold at least one secret/);
  assert.throws(() => integ.verifyWebhook({ scheme: 'standard', secret: ['a b'], headers, body: BODY }),
    /options\.secret\[0\]: must be a non-empty secret without spaces/);
});

test('other schemes through the same function', () => {
  // WooCommerce: base64 HMAC-SHA256 of the raw body.
  const secret = 'whsec_woo';
  const raw = Buffer.from('{"id":1,"email":"a@b.c"}');
  const sig = crypto.createHmac('sha256', secret).update(raw).digest('base64');
  integ.verifyWebhook({ scheme: 'woocommerce', secret, headers: [['X-WC-Webhook-Signature', sig]], body: raw });
  assert.throws(() => integ.verifyWebhook({ scheme: 'woocommerce', secret: 'whsec_other', headers: [['X-WC-Webhook-Signature', sig]], body: raw }),
    integ.SignatureError);
  // GitHub: hex HMAC in X-Hub-Signature-256 (sha256=...).
  const gh = 'sha256=' + crypto.createHmac('sha256', 'gh-secret').update(raw).digest('hex');
  integ.verifyWebhook({ scheme: 'github', secret: 'gh-secret', headers: { 'X-Hub-Signature-256': gh }, body: raw });
  // HubSpot v3 signs the method and the full URL, timestamp in ms.
  const url = 'https://app.example.com/hooks/abc?x=1';
  const ts = String(Date.now());
  const hs = crypto.createHmac('sha256', 'app-secret').update(`POST${url}${raw}${ts}`).digest('base64');
  const hh = { 'X-HubSpot-Signature-v3': hs, 'X-HubSpot-Request-Timestamp': ts };
  integ.verifyWebhook({ scheme: 'hubspot-v3', secret: 'app-secret', method: 'POST', url, headers: hh, body: raw });
  assert.throws(() => integ.verifyWebhook({ scheme: 'hubspot-v3', secret: 'app-secret', method: 'POST', url: url + '&y=2', headers: hh, body: raw }),
    integ.SignatureError);
});

test('argument errors are InvalidArgument naming the option', () => {
  const ok = { scheme: 'standard', secret: SECRET, headers: standardHeaders('m', nowS(), BODY), body: BODY };
  const bad = [
    [undefined, /options: must be an object like \{scheme, secret/],
    ['standard', /options: must be an object/],
    [{ ...ok, scheme: undefined }, /options\.scheme: must be a string/],
    [{ ...ok, scheme: 'hmac' }, /scheme: unknown "hmac"/],
    [{ ...ok, secret: undefined }, /options\.secret: must be a string/],
    [{ ...ok, secret: 5 }, /options\.secret: must be a string/],
    [{ ...ok, now: 'now' }, /options\.now: must be unix seconds/],
    [{ ...ok, now: -5 }, /options\.now: must be unix seconds/],
    [{ ...ok, tolerance: 1.5 }, /options\.tolerance: must be an integer/],
    [{ ...ok, tolerance_s: 10 }, /options\.tolerance_s: unknown option \(use scheme, secret, method, url, headers, body, now, tolerance\)/],
    [{ ...ok, body: 12 }, /options\.body: must be a Buffer/],
    [{ ...ok, headers: [['a', 'b', 'c']] }, /options\.headers\[0\]: must be a \[name, value\] pair/],
  ];
  for (const [opts, re] of bad) {
    assert.throws(() => integ.verifyWebhook(opts), (e) => e instanceof integ.InvalidArgument && re.test(e.message), String(re));
  }
});

test('standard: a generated endpoint secret works with the official SDK through receiveWebhook', { skip: !sdk && 'standardwebhooks not installed in tests/oracles' }, () => {
  const ctx = new integ.Context({ store: 'sqlite::memory:', master_key: integ.generateMasterKey(),
    webhook: { base_url: 'https://app.example.com/hooks' } });
  const s = ctx.session('acme', 'alice', ['admin']);
  const woo = s.createIntegration({
    integration_definition_id: 'woocommerce-ecommerce',
    credentials: { consumer_key: 'ck_x', consumer_secret: 'cs_x' },
    config: { site_url: 'https://shop.example.com' },
  });
  const ep = s.createWebhookEndpoint(woo.id, { scheme: 'standard' });
  assert.equal(ep.scheme, 'standard');
  const wh = new sdk.Webhook(ep.secret); // the SDK accepts the whsec_ key format
  const at = new Date();
  const headers = { 'webhook-id': 'msg_std_1', 'webhook-timestamp': String(Math.floor(at / 1000)),
    'webhook-signature': wh.sign('msg_std_1', at, BODY) };
  assert.equal(ctx.receiveWebhook(ep.id, { url: ep.url, headers, body: BODY }).status, 202);
  assert.equal(ctx.receiveWebhook(ep.id, { url: ep.url, headers, body: BODY }).status, 200); // duplicate by webhook-id
  assert.equal(ctx.receiveWebhook(ep.id, { url: ep.url, headers, body: BODY + ' ' }).status, 401);
  integ.verifyWebhook({ scheme: 'standard', secret: ep.secret, headers, body: BODY });
  const [ev] = s.webhookEvents();
  assert.equal(ev.event_id, 'msg_std_1');
  ctx.close();
});

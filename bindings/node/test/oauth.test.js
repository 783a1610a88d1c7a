'use strict';
// OAuth: beginOAuth (synchronous), completeOAuth and refreshOAuth (thread
// pool, Promises) against a token endpoint served by this process on
// 127.0.0.1 — which only works because the exchange is async.

const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const http = require('node:http');
const integ = require('..');

const APP = { client_id: 'app-client', client_secret: 'app-secret' };
const REDIRECT = 'https://app.example.com/oauth/callback';

const peer = { server: null, port: 0, requests: [], revoked: false };

test.before(async () => {
  peer.server = http.createServer(async (req, res) => {
    let text = '';
    for await (const chunk of req) text += chunk;
    const form = Object.fromEntries(new URLSearchParams(text));
    peer.requests.push({ method: req.method, path: req.url, form });
    const send = (status, obj) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(obj));
    };
    // The API (sync): a refreshed access token reads an empty list; the first one is refused.
    if (req.method === 'GET' && req.url.startsWith('/crm/v3/objects/contacts')) {
      if (req.headers.authorization === 'Bearer at-2') return send(200, { results: [] });
      return send(401, { status: 'error', message: 'expired', category: 'EXPIRED_AUTHENTICATION' });
    }
    if (req.method !== 'POST' || req.url !== '/oauth/v1/token') return send(404, { message: 'not found' });
    if (form.client_id !== APP.client_id || form.client_secret !== APP.client_secret) {
      return send(401, { error: 'invalid_client' });
    }
    if (form.grant_type === 'authorization_code') {
      if (form.code !== 'good-code') return send(400, { error: 'invalid_grant', error_description: 'code expired' });
      return send(200, { access_token: 'at-1', refresh_token: 'rt-1', expires_in: 1800, token_type: 'bearer' });
    }
    if (form.grant_type === 'refresh_token') {
      if (peer.revoked || form.refresh_token !== 'rt-1') return send(400, { error: 'invalid_grant', error_description: 'revoked' });
      return send(200, { access_token: 'at-2', expires_in: 1800, token_type: 'bearer' });
    }
    return send(400, { error: 'unsupported_grant_type' });
  });
  await new Promise((r) => peer.server.listen(0, '127.0.0.1', r));
  peer.port = peer.server.address().port;
});

test.after(() => peer.server.close());

function oauthContext({ app = true } = {}) {
  const base = `http://127.0.0.1:${peer.port}`;
  const ctx = new integ.Context({
    store: 'sqlite::memory:',
    master_key: integ.generateMasterKey(),
    http: { allow_private_networks: true, max_retries: 0, timeout_ms: 5000 },
    base_url_overrides: { 'hubspot-crm': { api: base, token_url: `${base}/oauth/v1/token` } },
  });
  if (app) ctx.setAppCredentials('hubspot-crm', APP);
  return ctx;
}

const begin = (s, extra = {}) =>
  s.beginOAuth({ integration_definition_id: 'hubspot-crm', redirect_uri: REDIRECT, ...extra });

test('beginOAuth: the authorize URL carries state and a PKCE challenge', () => {
  const ctx = oauthContext();
  const s = ctx.session('acme', 'alice', ['admin']);
  const b = begin(s);
  assert.deepEqual(Object.keys(b).sort(), ['authorize_url', 'expires_at', 'state']);
  const u = new URL(b.authorize_url);
  assert.equal(u.origin + u.pathname, 'https://app.hubspot.com/oauth/authorize');
  const q = u.searchParams;
  assert.equal(q.get('response_type'), 'code');
  assert.equal(q.get('client_id'), APP.client_id);
  assert.equal(q.get('redirect_uri'), REDIRECT);
  assert.equal(q.get('state'), b.state);
  assert.match(b.state, /^[A-Za-z0-9_-]{43}$/);
  assert.match(q.get('code_challenge'), /^[A-Za-z0-9_-]{43}$/);
  assert.equal(q.get('code_challenge_method'), 'S256');
  assert.ok(q.get('scope').split(' ').includes('crm.objects.contacts.read'));
  assert.ok(Date.parse(b.expires_at) > Date.now());
  assert.notEqual(begin(s).state, b.state);
  assert.equal(s.audit({ action: 'oauth.begin' }).length, 2);
  assert.ok(!JSON.stringify(s.audit()).includes(b.state));
  ctx.close();
});

test('beginOAuth: errors', () => {
  const ctx = oauthContext({ app: false });
  const s = ctx.session('acme', 'alice', ['admin']);
  assert.throws(() => begin(s), (e) => e instanceof integ.InvalidArgument && /app credentials/.test(e.message));
  ctx.setAppCredentials('hubspot-crm', APP);
  assert.throws(() => begin(s, { redirect_uri: undefined }), integ.InvalidArgument);
  assert.throws(() => begin(s, { integration_definition_id: 'no-such-system' }), integ.NotFound);
  assert.throws(() => s.beginOAuth(), integ.InvalidArgument);
  assert.throws(() => begin(ctx.session('acme', 'victor')), integ.PermissionDenied);
  ctx.close();
});

test('completeOAuth: code exchange with the PKCE verifier creates the integration', async () => {
  const ctx = oauthContext();
  const s = ctx.session('acme', 'alice', ['admin']);
  const b = begin(s, { name: 'HubSpot (OAuth)' });
  peer.requests.length = 0;
  const p = ctx.completeOAuth({ state: b.state, code: 'good-code' });
  assert.ok(p instanceof Promise);
  const integration = await p;
  assert.equal(integration.tenant_id, 'acme');
  assert.equal(integration.integration_definition_key, 'hubspot-crm');
  assert.equal(integration.name, 'HubSpot (OAuth)');
  assert.equal(integration.auth_type, 'oauth2');
  assert.equal(integration.status, 'active');
  assert.equal(integration.has_credentials, true);
  assert.ok(!JSON.stringify(integration).includes('at-1'));
  assert.deepEqual(s.integration(integration.id), integration);

  assert.equal(peer.requests.length, 1);
  const { form } = peer.requests[0];
  assert.equal(form.grant_type, 'authorization_code');
  assert.equal(form.code, 'good-code');
  assert.equal(form.redirect_uri, REDIRECT);
  const challenge = new URL(b.authorize_url).searchParams.get('code_challenge');
  assert.equal(crypto.createHash('sha256').update(form.code_verifier).digest('base64url'), challenge);

  // The state was consumed.
  await assert.rejects(ctx.completeOAuth({ state: b.state, code: 'good-code' }), integ.NotFound);
  ctx.close();
});

test('completeOAuth: unknown state, provider error, bad code, argument errors', async () => {
  const ctx = oauthContext();
  const s = ctx.session('acme', 'alice', ['admin']);
  // lib/oauth.c: an unknown (or used) state is INTEG_ENOTFOUND.
  await assert.rejects(ctx.completeOAuth({ state: 'no-such-state', code: 'good-code' }),
    (e) => e instanceof integ.NotFound && /unknown or used state/.test(e.message));

  const denied = begin(s);
  await assert.rejects(ctx.completeOAuth({ state: denied.state, error: 'access_denied', error_description: 'the user said no' }),
    (e) => e instanceof integ.AuthError && /access_denied: the user said no/.test(e.message));
  await assert.rejects(ctx.completeOAuth({ state: denied.state, code: 'good-code' }), integ.NotFound); // consumed

  const bad = begin(s);
  await assert.rejects(ctx.completeOAuth({ state: bad.state, code: 'stale-code' }),
    (e) => e instanceof integ.AuthError && /invalid_grant: code expired/.test(e.message));
  assert.deepEqual(s.integrations(), []);
  assert.ok(s.audit({ action: 'oauth.failed' }).length >= 2);

  // Promise-returning: argument errors reject, never throw.
  await assert.rejects(ctx.completeOAuth(), integ.InvalidArgument);
  await assert.rejects(ctx.completeOAuth({ code: 'x' }), (e) => e instanceof integ.InvalidArgument && /state/.test(e.message));
  const cyclic = {};
  cyclic.self = cyclic;
  await assert.rejects(ctx.completeOAuth(cyclic), integ.InvalidArgument);
  ctx.close();
  await assert.rejects(ctx.completeOAuth({ state: 'x', code: 'y' }), /the context is closed/);
});

test('refreshOAuth: a new token; a revoked one is AuthError and integration.needs_reauth', async () => {
  const ctx = oauthContext();
  const events = [];
  ctx.setEventCallback((e) => events.push(e));
  const s = ctx.session('acme', 'alice', ['admin']);
  const integration = await ctx.completeOAuth({ state: begin(s).state, code: 'good-code' });

  peer.requests.length = 0;
  assert.equal(await s.refreshOAuth(integration.id), undefined);
  assert.equal(peer.requests.length, 1);
  assert.equal(peer.requests[0].form.grant_type, 'refresh_token');
  assert.equal(peer.requests[0].form.refresh_token, 'rt-1');
  assert.equal(s.integration(integration.id).status, 'active');
  assert.deepEqual(events, []);

  await assert.rejects(ctx.session('acme', 'victor').refreshOAuth(integration.id), integ.PermissionDenied);
  await assert.rejects(ctx.session('globex', 'gina', ['admin']).refreshOAuth(integration.id), integ.NotFound);
  await assert.rejects(s.refreshOAuth(42), integ.InvalidArgument);

  // The user revokes the app at the provider: invalid_grant.
  peer.revoked = true;
  try {
    const p = s.refreshOAuth(integration.id);
    // While it runs, this session is busy.
    assert.throws(() => s.integrations(), integ.ConflictError);
    await assert.rejects(p, (e) => e instanceof integ.AuthError && /invalid_grant/.test(e.message));
  } finally {
    peer.revoked = false;
  }
  // Delivered before the Promise settled, on this thread.
  const reauthEvents = events.filter((e) => e.type === 'integration.needs_reauth');
  assert.equal(reauthEvents.length, 1, JSON.stringify(events));
  assert.equal(reauthEvents[0].integration_id, integration.id);
  assert.equal(reauthEvents[0].tenant_id, 'acme');
  assert.equal(typeof reauthEvents[0].reason, 'string');
  assert.equal(s.integration(integration.id).status, 'needs_reauth');

  // Re-authorising the same integration makes it active again.
  const again = await ctx.completeOAuth({ state: begin(s, { integration_id: integration.id }).state, code: 'good-code' });
  assert.equal(again.id, integration.id);
  assert.equal(again.status, 'active');
  assert.equal(s.integrations().length, 1);
  ctx.close();
});

// The built-in engine fetches a sync's pages on a helper thread of the
// library's, not the pool thread running the call: an event raised there
// (a 401, then a refresh the provider refuses) must still reach the
// callback before the Promise settles. A dry run raises no sync.* event on
// the call's own thread that the settling would otherwise queue behind.
test('sync: integration.needs_reauth raised on the page-fetch thread arrives before the Promise settles', async () => {
  const ctx = oauthContext();
  const events = [];
  ctx.setEventCallback((e) => events.push(e));
  const s = ctx.session('acme', 'alice', ['admin']);
  const integration = await ctx.completeOAuth({ state: begin(s).state, code: 'good-code' });
  peer.revoked = true;
  try {
    for (let i = 0; i < 10; i++) {
      if (i > 0) { // connect it again: a rejected refresh token is not offered twice
        await ctx.completeOAuth({ state: begin(s, { integration_id: integration.id }).state, code: 'good-code' });
      }
      events.length = 0;
      peer.requests.length = 0;
      await assert.rejects(s.sync(integration.id, { entity: 'contacts', dry_run: true }),
        (e) => e instanceof integ.AuthError && /invalid_grant/.test(e.message));
      assert.ok(peer.requests.some((r) => r.form.grant_type === 'refresh_token'), 'the refresh was tried');
      assert.deepEqual(events.map((e) => e.type), ['integration.needs_reauth'], `round ${i}`);
      assert.equal(events[0].integration_id, integration.id);
    }
  } finally {
    peer.revoked = false;
  }
  ctx.close();
});

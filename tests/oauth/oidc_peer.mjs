// A real OAuth 2.0 / OpenID Connect authorization server for the tests:
// oidc-provider (npm, OpenID certified) on 127.0.0.1, an ephemeral port.
//
//   node tests/oauth/oidc_peer.mjs
//
// Prints one JSON line on stdout when it listens:
//   {"url": "http://127.0.0.1:PORT", "private_key_pem": "...", "kid": "..."}
// (the RSA key of the clients that sign JWTs: private_key_jwt client
// authentication and the JWT bearer grant; the provider knows its public
// JWK). Stops on stdin EOF and after OIDC_PEER_MAX_LIFETIME_S (default 300).
//
// Clients (secrets are test-only):
//   code-client        authorization_code + PKCE + refresh_token (rotated),
//                      client_secret_post
//   code-basic-client  the same with client_secret_basic
//   cc-client          client_credentials, client_secret_basic
//   pkjwt-client       client_credentials, private_key_jwt (RS256)
//   jwt-bearer-client  the RFC 7523 JWT bearer grant (custom grant type; the
//                      assertion is verified here with node:crypto)
//
// Interactions are JSON so a test drives them over HTTP:
//   GET  /interaction/:uid          -> {"uid", "prompt", "client_id", "scope"}
//   POST /interaction/:uid/login    form login=<account>   -> 303 to resume
//   POST /interaction/:uid/confirm  (consent: grants what was asked)
//   POST /interaction/:uid/abort    -> access_denied to the redirect_uri
// Admin:
//   GET  /admin/counts  -> token requests per grant_type that reached the
//                          token endpoint {"authorization_code": n, ...}
//   POST /admin/reset   -> zero the counts
import { createServer } from 'node:http';
import * as crypto from 'node:crypto';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

// stdout carries the one line a test reads (then it may close the pipe):
// everything else, oidc-provider's notices included, goes to stderr.
const toStderr = (...a) => process.stderr.write(`${a.join(' ')}\n`);
console.log = toStderr;
console.info = toStderr;
process.stdout.on('error', () => {});

const here = path.dirname(fileURLToPath(import.meta.url));
const pkg = path.join(here, '..', 'oracles', 'node_modules', 'oidc-provider', 'lib', 'index.js');
let Provider, errors;
try {
  ({ default: Provider, errors } = await import(pkg));
} catch (e) {
  process.stderr.write(`oidc_peer: cannot load oidc-provider (${e.message}); run npm ci in tests/oracles\n`);
  process.exit(77);
}

const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
const maxLifetime = Number(process.env.OIDC_PEER_MAX_LIFETIME_S || 300) * 1000;

// Client key pair (the tests sign with the private key).
const { publicKey, privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const kid = crypto.randomBytes(8).toString('hex');
const publicJwk = { ...publicKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' };
const privatePem = privateKey.export({ format: 'pem', type: 'pkcs8' });
// Provider signing key (ID tokens).
const signing = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });

const counts = {};
const count = (g) => { counts[g] = (counts[g] || 0) + 1; };

const server = createServer();
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;
const redirect = 'http://127.0.0.1:9/callback';

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: 'code-client', client_secret: 'code-secret',
      redirect_uris: [redirect], grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'], token_endpoint_auth_method: 'client_secret_post',
    },
    {
      client_id: 'code-basic-client', client_secret: 'code-basic-secret',
      redirect_uris: [redirect], grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'], token_endpoint_auth_method: 'client_secret_basic',
    },
    {
      client_id: 'cc-client', client_secret: 'cc-secret', redirect_uris: [], response_types: [],
      grant_types: ['client_credentials'], token_endpoint_auth_method: 'client_secret_basic', scope: 'api:read',
    },
    {
      client_id: 'pkjwt-client', redirect_uris: [], response_types: [], grant_types: ['client_credentials'],
      token_endpoint_auth_method: 'private_key_jwt', token_endpoint_auth_signing_alg: 'RS256',
      jwks: { keys: [publicJwk] }, scope: 'api:read',
    },
    {
      client_id: 'jwt-bearer-client', redirect_uris: [], response_types: [], grant_types: [JWT_BEARER],
      token_endpoint_auth_method: 'none', scope: 'api:read',
    },
  ],
  jwks: { keys: [{ ...signing, kid: 'provider-1', alg: 'RS256', use: 'sig' }] },
  cookies: { keys: ['oidc-peer-test-cookie-key'] },
  scopes: ['openid', 'offline_access', 'api:read'],
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    revocation: { enabled: true },
    introspection: { enabled: true },
  },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  pkce: { required: () => true },
  issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
  rotateRefreshToken: () => true,
  ttl: { AccessToken: 3600, ClientCredentials: 600, RefreshToken: 86400, Grant: 86400, Session: 86400, Interaction: 600 },
  findAccount: async (ctx, id) => ({ accountId: id, claims: async () => ({ sub: id }) }),
});

// RFC 7523 section 2.1: the assertion is the grant. Verified here with
// node:crypto (independent of the library's mbedTLS signer).
provider.registerGrantType(JWT_BEARER, async (ctx) => {
  const { client } = ctx.oidc;
  const parts = String(ctx.oidc.params.assertion || '').split('.');
  const bad = (why) => { throw new errors.InvalidGrant(`assertion ${why}`); };
  if (parts.length !== 3) bad('is not a JWS');
  let header, claims;
  try {
    header = JSON.parse(Buffer.from(parts[0], 'base64url'));
    claims = JSON.parse(Buffer.from(parts[1], 'base64url'));
  } catch { bad('is not JSON'); }
  if (header.alg !== 'RS256') bad('alg must be RS256');
  const ok = crypto.verify('sha256', Buffer.from(`${parts[0]}.${parts[1]}`), publicKey, Buffer.from(parts[2], 'base64url'));
  if (!ok) bad('signature is invalid');
  const now = Math.floor(Date.now() / 1000);
  if (claims.iss !== client.clientId) bad('iss must be the client');
  if (!claims.sub) bad('needs sub');
  if (claims.aud !== `${issuer}/token` && claims.aud !== issuer) bad('aud must be the token endpoint');
  if (typeof claims.exp !== 'number' || claims.exp < now - 5) bad('expired');
  if (typeof claims.iat !== 'number' || claims.iat > now + 60) bad('iat in the future');
  if (claims.exp - claims.iat > 3600) bad('lives longer than an hour');
  const at = new provider.ClientCredentials({ client, scope: claims.scope || 'api:read' });
  const value = await at.save();
  ctx.body = { access_token: value, token_type: 'Bearer', expires_in: at.expiration, scope: at.scope, sub: claims.sub };
}, ['assertion', 'scope']);

async function readRaw(req) {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  return Buffer.concat(chunks).toString('utf8');
}

provider.use(async (ctx, next) => {
  if (ctx.path === '/admin/counts') { ctx.body = counts; return; }
  if (ctx.path === '/admin/reset' && ctx.method === 'POST') {
    for (const k of Object.keys(counts)) delete counts[k];
    ctx.body = {};
    return;
  }
  const m = ctx.path.match(/^\/interaction\/([^/]+)(?:\/(login|confirm|abort))?$/);
  if (m) {
    const details = await provider.interactionDetails(ctx.req, ctx.res);
    const action = m[2];
    if (!action && ctx.method === 'GET') {
      ctx.body = { uid: details.uid, prompt: details.prompt.name, client_id: details.params.client_id, scope: details.params.scope };
      return;
    }
    if (ctx.method !== 'POST') { ctx.status = 405; return; }
    let result;
    if (action === 'login') {
      const form = new URLSearchParams(await readRaw(ctx.req));
      result = { login: { accountId: form.get('login') || 'alice' } };
    } else if (action === 'confirm') {
      const { prompt: { details: d }, params, session } = details;
      let grant = details.grantId ? await provider.Grant.find(details.grantId)
        : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
      if (d.missingOIDCScope) grant.addOIDCScope(d.missingOIDCScope.join(' '));
      if (d.missingOIDCClaims) grant.addOIDCClaims(d.missingOIDCClaims);
      if (d.missingResourceScopes) {
        for (const [indicator, scope] of Object.entries(d.missingResourceScopes)) grant.addResourceScope(indicator, scope.join(' '));
      }
      result = { consent: { grantId: await grant.save() } };
    } else {
      result = { error: 'access_denied', error_description: 'The user denied the request' };
    }
    const to = await provider.interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission: false });
    ctx.status = 303;
    ctx.redirect(to);
    return;
  }
  if (ctx.method === 'POST' && ctx.path === '/token') {
    // Pre-read the form: count it, and let the JWT bearer grant name its
    // client from the assertion's iss (RFC 7523 needs no client auth).
    let raw = await readRaw(ctx.req);
    const form = new URLSearchParams(raw);
    const grant = form.get('grant_type') || 'none';
    count(grant);
    if (grant === JWT_BEARER && !form.get('client_id') && !ctx.get('authorization')) {
      try {
        const iss = JSON.parse(Buffer.from((form.get('assertion') || '').split('.')[1] || '', 'base64url')).iss;
        if (typeof iss === 'string') raw += `&client_id=${encodeURIComponent(iss)}`;
      } catch { /* the grant rejects it */ }
    }
    ctx.req.body = raw;
  }
  await next();
});

server.on('request', provider.callback());
process.stdout.write(`${JSON.stringify({ url: issuer, private_key_pem: privatePem, kid })}\n`);

const stop = () => { server.close(); process.exit(0); };
process.stdin.on('end', stop);
process.stdin.on('close', stop);
process.stdin.resume();
setTimeout(stop, maxLifetime).unref();

'use strict';
// Push, bidirectional sync with conflicts, conflict resolution and the
// scheduler (runDue), against a stateful HubSpot-like peer served by this
// process on 127.0.0.1. Like sync.test.js this only works because the
// network calls (sync, resolveConflict, runDue) run on the thread pool while
// this thread keeps serving HTTP.

const test = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const integ = require('..');

const BASE = '/crm/v3/objects/contacts';
const ts = (i) => `2024-01-01T00:${String(i).padStart(2, '0')}:00Z`;

// ---- the peer -------------------------------------------------------------
// A small HubSpot: contacts with properties, updatedAt and
// lastmodifieddate (the incremental search's property), list/search/get,
// PATCH and POST, and the batch create/update/read endpoints the manifest
// declares (adapters/hubspot-crm.json).

const peer = {
  server: null,
  port: 0,
  requests: [], // {method, path, query, body, auth}
  contacts: new Map(), // id -> {id, properties, createdAt, updatedAt, archived}
  nextId: 1,
  clock: 0,
};

/** A fresh remote with `n` contacts (ids "1".."n"). */
function resetPeer(n = 3) {
  peer.contacts = new Map();
  peer.requests = [];
  peer.nextId = n + 1;
  peer.clock = Date.parse('2024-06-01T00:00:00Z');
  for (let i = 1; i <= n; i++) {
    peer.contacts.set(String(i), {
      id: String(i),
      properties: { email: `c${i}@x.io`, firstname: `First${i}`, lastname: `Last${i}`, lastmodifieddate: ts(i) },
      createdAt: ts(i),
      updatedAt: ts(i),
      archived: false,
    });
  }
}

/** A strictly increasing remote clock (RFC 3339, ms). */
function tick() {
  peer.clock = Math.max(peer.clock + 1000, Date.now());
  return new Date(peer.clock).toISOString();
}

/** Change a contact on the remote side (as a HubSpot user would). */
function remoteEdit(id, properties) {
  const c = peer.contacts.get(id);
  const at = tick();
  Object.assign(c.properties, properties, { lastmodifieddate: at });
  c.updatedAt = at;
  return c;
}

function createContact(properties) {
  const at = tick();
  const c = {
    id: String(peer.nextId++),
    properties: { ...properties, lastmodifieddate: at },
    createdAt: at,
    updatedAt: at,
    archived: false,
  };
  peer.contacts.set(c.id, c);
  return c;
}

function send(res, status, obj) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(obj));
}

function notFound(res, id) {
  send(res, 404, { status: 'error', message: `Object not found. objectId are usually numeric. ${id}`,
    category: 'OBJECT_NOT_FOUND' });
}

function page(list, after, limit) {
  const n = Math.min(Number(limit) || 10, 10);
  const out = { results: list.slice(after, after + n) };
  if (after + n < list.length) out.paging = { next: { after: String(after + n) } };
  return out;
}

const live = () => [...peer.contacts.values()].filter((c) => !c.archived);

async function handle(req, res) {
  let text = '';
  for await (const chunk of req) text += chunk;
  const url = new URL(req.url, 'http://peer');
  const body = text ? JSON.parse(text) : null;
  peer.requests.push({
    method: req.method,
    path: url.pathname,
    query: Object.fromEntries(url.searchParams),
    body,
    auth: req.headers.authorization,
  });
  if (req.headers.authorization !== 'Bearer tok') {
    return send(res, 401, {
      status: 'error', message: 'Authentication credentials not found', category: 'INVALID_AUTHENTICATION',
    });
  }
  const p = url.pathname;
  if (req.method === 'GET' && p === BASE) {
    const archived = url.searchParams.get('archived') === 'true';
    const list = [...peer.contacts.values()].filter((c) => c.archived === archived);
    return send(res, 200, page(list, Number(url.searchParams.get('after') || 0), url.searchParams.get('limit')));
  }
  if (req.method === 'POST' && p === `${BASE}/search`) {
    const f = body?.filterGroups?.[0]?.filters?.[0];
    if (!f || f.operator !== 'GTE' || !f.propertyName) return send(res, 400, { message: 'bad filter' });
    const since = Date.parse(f.value);
    const match = live().filter((c) => Date.parse(c.properties[f.propertyName]) >= since)
      .sort((a, b) => Date.parse(a.properties[f.propertyName]) - Date.parse(b.properties[f.propertyName]));
    return send(res, 200, { total: match.length, ...page(match, Number(body.after || 0), body.limit) });
  }
  if (req.method === 'POST' && p === BASE) {
    if (!body || typeof body.properties !== 'object') return send(res, 400, { message: 'properties required' });
    return send(res, 201, createContact(body.properties));
  }
  if (req.method === 'POST' && p === `${BASE}/batch/create`) {
    const inputs = body?.inputs;
    if (!Array.isArray(inputs)) return send(res, 400, { message: 'inputs required' });
    return send(res, 201, { status: 'COMPLETE', results: inputs.map((i) => createContact(i.properties || {})) });
  }
  if (req.method === 'POST' && p === `${BASE}/batch/update`) {
    const inputs = body?.inputs;
    if (!Array.isArray(inputs)) return send(res, 400, { message: 'inputs required' });
    const missing = inputs.filter((i) => !peer.contacts.has(String(i.id)));
    if (missing.length) {
      return send(res, 404, { status: 'error', category: 'OBJECT_NOT_FOUND', message: 'not found',
        context: { ids: missing.map((i) => String(i.id)) } });
    }
    return send(res, 200, { status: 'COMPLETE', results: inputs.map((i) => remoteEdit(String(i.id), i.properties || {})) });
  }
  if (req.method === 'POST' && p === `${BASE}/batch/read`) {
    const prop = body?.idProperty || 'hs_object_id';
    const results = [];
    for (const input of body?.inputs || []) {
      const c = live().find((x) => (prop === 'hs_object_id' ? x.id : String(x.properties[prop] || '').toLowerCase())
        === String(input.id).toLowerCase());
      if (c) results.push(c);
    }
    return send(res, 200, { status: 'COMPLETE', results });
  }
  const m = /^\/crm\/v3\/objects\/contacts\/([^/]+)$/.exec(p);
  if (m) {
    const c = peer.contacts.get(m[1]);
    if (!c || c.archived) return notFound(res, m[1]);
    if (req.method === 'GET') return send(res, 200, c);
    if (req.method === 'PATCH') {
      if (!body || typeof body.properties !== 'object') return send(res, 400, { message: 'properties required' });
      return send(res, 200, remoteEdit(m[1], body.properties));
    }
  }
  return send(res, 404, { message: `no route ${req.method} ${p}` });
}

test.before(async () => {
  peer.server = http.createServer((req, res) => {
    handle(req, res).catch((err) => send(res, 500, { message: String(err) }));
  });
  await new Promise((resolve) => peer.server.listen(0, '127.0.0.1', resolve));
  peer.port = peer.server.address().port;
});

test.after(async () => {
  peer.server.closeAllConnections();
  await new Promise((resolve) => peer.server.close(resolve));
});

// ---- helpers --------------------------------------------------------------

function peerContext() {
  return new integ.Context({
    store: 'sqlite::memory:',
    master_key: integ.generateMasterKey(),
    http: { allow_private_networks: true, max_retries: 1 },
    base_url_overrides: { 'hubspot-crm': `http://127.0.0.1:${peer.port}` },
  });
}

function createHubspot(s, config = { entities: ['contacts'] }, name = 'HubSpot') {
  return s.createIntegration({
    integration_definition_id: 'hubspot-crm',
    name,
    credentials: { api_key: 'tok' },
    config,
  });
}

/** Rejects if `p` does not settle within `ms`. */
function within(p, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

const writes = () => peer.requests.filter((r) => r.method === 'PATCH' || (r.method === 'POST' && !r.path.endsWith('/search')));

/** The local record linked to remote contact `ext`. */
function localOf(s, itId, ext) {
  for (const rec of s.entities('contacts', { limit: 100 })) {
    const full = s.entity('contacts', rec.id);
    if (full.links.some((l) => l.integration_id === itId && l.external_id === ext)) return full;
  }
  return undefined;
}

/** Replace a local record's data with some fields changed (a host edit). */
function localEdit(s, rec, changes) {
  return s.putEntity('contacts', { id: rec.id, data: { ...rec.data, ...changes } });
}

async function pulled(s, itId, n = 3) {
  const r = await within(s.sync(itId, { entity: 'contacts' }), 20000, 'sync');
  assert.equal(r.status, 'success');
  assert.equal(s.entities('contacts', { limit: 100 }).length, n);
  return r;
}

// ---- push -------------------------------------------------------------------

test('push sends a local edit as PATCH, new records as creates, several at once through the batch endpoints', { timeout: 60000 }, async () => {
  resetPeer(3);
  const ctx = peerContext();
  const s = ctx.session('tenant-a', 'alice', ['admin']);
  try {
    const it = createHubspot(s);
    await pulled(s, it.id);

    // Nothing changed locally: a push sends nothing.
    peer.requests = [];
    const idle = await within(s.sync(it.id, { entity: 'contacts', direction: 'push' }), 20000, 'push');
    assert.equal(idle.status, 'success');
    assert.equal(idle.direction, 'push');
    assert.equal(idle.records_pushed, 0);
    assert.deepEqual(writes(), []);

    // One edit: a single PATCH of that contact, with the mapped properties.
    const one = localOf(s, it.id, '1');
    const edited = localEdit(s, one, { first_name: 'Edited' });
    assert.equal(edited.version, one.version + 1);
    peer.requests = [];
    const r = await within(s.sync(it.id, { entity: 'contacts', direction: 'push' }), 20000, 'push');
    assert.equal(r.status, 'success', JSON.stringify(r.errors));
    assert.equal(r.direction, 'push');
    assert.equal(r.records_pushed, 1);
    assert.equal(r.push.updated, 1);
    assert.equal(r.push.created, 0);
    assert.equal(r.push.failed, 0);
    assert.equal(r.records_processed, 0, 'a push does not pull');
    const patches = peer.requests.filter((q) => q.method === 'PATCH');
    assert.equal(patches.length, 1, JSON.stringify(peer.requests.map((q) => `${q.method} ${q.path}`)));
    assert.equal(patches[0].path, `${BASE}/1`);
    assert.equal(patches[0].auth, 'Bearer tok');
    assert.equal(patches[0].body.properties.firstname, 'Edited');
    assert.equal(patches[0].body.properties.email, 'c1@x.io');
    assert.equal(peer.contacts.get('1').properties.firstname, 'Edited');
    assert.equal(peer.requests.filter((q) => q.method === 'GET').length, 0, 'no pull requests');

    // Pushed once: the next push has nothing to send for it.
    peer.requests = [];
    const again = await within(s.sync(it.id, { entity: 'contacts', direction: 'push' }), 20000, 'push');
    assert.equal(again.records_pushed, 0);
    assert.deepEqual(writes(), []);

    // A record created locally: one POST, and the link gets the new id.
    const fresh = s.putEntity('contacts', { data: { email: 'new1@x.io', first_name: 'New', last_name: 'One' } });
    peer.requests = [];
    const c1 = await within(s.sync(it.id, { entity: 'contacts', direction: 'push' }), 20000, 'push');
    assert.equal(c1.status, 'success', JSON.stringify(c1.errors));
    assert.equal(c1.push.created, 1);
    const posts = peer.requests.filter((q) => q.method === 'POST' && q.path === BASE);
    assert.equal(posts.length, 1, JSON.stringify(peer.requests.map((q) => `${q.method} ${q.path}`)));
    assert.equal(posts[0].body.properties.email, 'new1@x.io');
    const freshLinks = s.entity('contacts', fresh.id).links;
    assert.equal(freshLinks.length, 1);
    assert.equal(freshLinks[0].external_id, '4');
    assert.equal(peer.contacts.get('4').properties.firstname, 'New');

    // Two creates and two edits in one run: the batch endpoints.
    const n2 = s.putEntity('contacts', { data: { email: 'new2@x.io', first_name: 'New', last_name: 'Two' } });
    const n3 = s.putEntity('contacts', { data: { email: 'new3@x.io', first_name: 'New', last_name: 'Three' } });
    localEdit(s, localOf(s, it.id, '2'), { last_name: 'Batch2' });
    localEdit(s, localOf(s, it.id, '3'), { last_name: 'Batch3' });
    peer.requests = [];
    const b = await within(s.sync(it.id, { entity: 'contacts', direction: 'push' }), 20000, 'push');
    assert.equal(b.status, 'success', JSON.stringify(b.errors));
    assert.equal(b.push.created, 2);
    assert.equal(b.push.updated, 2);
    assert.equal(b.records_pushed, 4);
    const bc = peer.requests.filter((q) => q.path === `${BASE}/batch/create`);
    const bu = peer.requests.filter((q) => q.path === `${BASE}/batch/update`);
    assert.equal(bc.length, 1);
    assert.equal(bu.length, 1);
    assert.deepEqual(bc[0].body.inputs.map((i) => i.properties.email).sort(), ['new2@x.io', 'new3@x.io']);
    assert.deepEqual(bu[0].body.inputs.map((i) => String(i.id)).sort(), ['2', '3']);
    assert.equal(peer.requests.filter((q) => q.method === 'PATCH').length, 0);
    assert.equal(peer.contacts.get('2').properties.lastname, 'Batch2');
    assert.equal(peer.contacts.get('3').properties.lastname, 'Batch3');
    const ext = (rec) => s.entity('contacts', rec.id).links[0]?.external_id;
    const byEmail = (e) => [...peer.contacts.values()].find((c) => c.properties.email === e).id;
    assert.equal(ext(n2), byEmail('new2@x.io'));
    assert.equal(ext(n3), byEmail('new3@x.io'));

    // A dry run counts without writing.
    localEdit(s, localOf(s, it.id, '1'), { first_name: 'Dry' });
    peer.requests = [];
    const dry = await within(s.sync(it.id, { entity: 'contacts', direction: 'push', dry_run: true }), 20000, 'push');
    assert.equal(dry.dry_run, true);
    assert.equal(dry.push.updated, 1);
    assert.deepEqual(writes(), []);
    assert.equal(peer.contacts.get('1').properties.firstname, 'Edited');

    // The log keeps the direction and the push counts.
    const log = s.syncLogs(it.id, { limit: 1 })[0];
    assert.equal(log.sync_log_id, b.sync_log_id);
    assert.equal(log.direction, 'push');
    assert.equal(log.records_pushed, 4);
  } finally {
    s.close();
    ctx.close();
  }
});

test('bidirectional sync pulls remote changes and pushes local ones', { timeout: 60000 }, async () => {
  resetPeer(3);
  const ctx = peerContext();
  const s = ctx.session('tenant-a', 'alice', ['admin']);
  try {
    const it = createHubspot(s);
    await pulled(s, it.id);
    localEdit(s, localOf(s, it.id, '1'), { first_name: 'FromLocal' });
    remoteEdit('2', { firstname: 'FromRemote' });
    peer.requests = [];
    const r = await within(s.sync(it.id, { entity: 'contacts', direction: 'bidirectional' }), 20000, 'sync');
    assert.equal(r.status, 'success', JSON.stringify(r.errors));
    assert.equal(r.direction, 'bidirectional');
    assert.equal(r.conflicts, 0);
    assert.equal(r.records_pushed, 1);
    assert.equal(localOf(s, it.id, '2').data.first_name, 'FromRemote');
    assert.equal(peer.contacts.get('1').properties.firstname, 'FromLocal');
    assert.deepEqual(peer.requests.filter((q) => q.method === 'PATCH').map((q) => q.path), [`${BASE}/1`]);
    await assert.rejects(s.sync(it.id, { entity: 'contacts', direction: 'sideways' }),
      (err) => err instanceof integ.InvalidArgument && /direction/.test(err.message));
    await assert.rejects(s.sync(it.id, { entity: 'contacts', direction: 'push', conflict_strategy: 'coin_flip' }),
      (err) => err instanceof integ.InvalidArgument && /conflict_strategy/.test(err.message));
  } finally {
    s.close();
    ctx.close();
  }
});

// ---- conflicts --------------------------------------------------------------

test('a manual conflict is held, listed, and resolved with remote, local or hand-merged data', { timeout: 60000 }, async () => {
  resetPeer(3);
  const ctx = peerContext();
  const s = ctx.session('tenant-a', 'alice', ['admin']);
  const reader = ctx.session('tenant-a', 'rita');
  const events = [];
  ctx.setEventCallback((e) => events.push(e));
  const manual = { entity: 'contacts', direction: 'bidirectional', conflict_strategy: 'manual' };
  try {
    const it = createHubspot(s);
    await pulled(s, it.id);
    assert.deepEqual(s.conflicts(it.id), []);

    // Round 1: both sides changed contact 1.
    const base1 = localOf(s, it.id, '1');
    localEdit(s, base1, { first_name: 'Local1' });
    remoteEdit('1', { firstname: 'Remote1' });
    events.length = 0;
    peer.requests = [];
    const r1 = await within(s.sync(it.id, manual), 20000, 'sync');
    assert.equal(r1.status, 'success', JSON.stringify(r1.errors));
    assert.equal(r1.conflicts, 1);
    assert.equal(r1.conflict_strategy, 'manual');
    assert.equal(r1.records_pushed, 0, 'a held record is not pushed');
    assert.deepEqual(writes(), []);
    // conflict.detected reached the callback before the Promise settled.
    const detected = events.filter((e) => e.type === 'conflict.detected');
    assert.equal(detected.length, 1);
    assert.equal(detected[0].outcome, 'held');
    assert.equal(detected[0].external_id, '1');

    const open = s.conflicts(it.id, { status: 'open' });
    assert.equal(open.length, 1);
    const c1 = open[0];
    assert.equal(detected[0].conflict_id, c1.id);
    assert.match(c1.id, /^[0-9a-f-]{36}$/);
    assert.equal(c1.integration_id, it.id);
    assert.equal(c1.entity, 'contacts');
    assert.equal(c1.local_entity, 'contacts');
    assert.equal(c1.local_id, base1.id);
    assert.equal(c1.external_id, '1');
    assert.equal(c1.status, 'open');
    assert.equal(c1.strategy, 'manual');
    assert.equal(c1.resolution, null);
    assert.equal(c1.resolved_by, null);
    assert.equal(c1.local.first_name, 'Local1');
    assert.equal(c1.remote.first_name, 'Remote1');
    assert.equal(c1.base.first_name, 'First1');
    assert.equal(typeof c1.created_at, 'string');
    // Neither side moved.
    assert.equal(localOf(s, it.id, '1').data.first_name, 'Local1');
    assert.equal(peer.contacts.get('1').properties.firstname, 'Remote1');
    // Filters; reading needs no role.
    assert.equal(s.conflicts(it.id, { status: 'resolved' }).length, 0);
    assert.equal(s.conflicts(it.id, { entity: 'contacts' }).length, 1);
    assert.equal(s.conflicts(it.id, { limit: 1, offset: 1 }).length, 0);
    assert.equal(reader.conflicts(it.id).length, 1);
    assert.throws(() => s.conflicts(it.id, { status: 'pending' }), integ.InvalidArgument);
    assert.throws(() => s.conflicts(it.id, { colour: 'red' }), integ.InvalidArgument);
    assert.throws(() => s.conflicts(42), integ.InvalidArgument);

    // A sync while it is open holds it again (no second conflict row).
    const again = await within(s.sync(it.id, manual), 20000, 'sync');
    assert.equal(again.status, 'success');
    assert.equal(s.conflicts(it.id).length, 1);

    // choose remote: local data becomes the remote's; the remote already has it.
    peer.requests = [];
    const p = s.resolveConflict(c1.id, { choose: 'remote' });
    assert.ok(p instanceof Promise);
    assert.equal(await within(p, 20000, 'resolveConflict'), undefined);
    assert.deepEqual(writes(), []);
    assert.deepEqual(localOf(s, it.id, '1').data, c1.remote);
    assert.equal(s.conflicts(it.id, { status: 'open' }).length, 0);
    const done1 = s.conflicts(it.id, { status: 'resolved' });
    assert.equal(done1.length, 1);
    assert.equal(done1[0].id, c1.id);
    assert.equal(done1[0].resolution, 'remote');
    assert.equal(done1[0].resolved_by, 'alice');
    assert.equal(typeof done1[0].resolved_at, 'string');
    assert.ok(s.audit({ action: 'conflict.resolve' }).some((a) => a.object_id === c1.id));
    // Resolved: it syncs normally again, with nothing to push for it.
    peer.requests = [];
    const after1 = await within(s.sync(it.id, manual), 20000, 'sync');
    assert.equal(after1.conflicts, 0);
    assert.deepEqual(writes(), []);
    // A resolved conflict cannot be resolved again.
    await assert.rejects(within(s.resolveConflict(c1.id, { choose: 'local' }), 20000, 'resolveConflict'),
      integ.ConflictError);

    // Round 2: contact 2, resolved with the local side: PATCHed to the remote.
    localEdit(s, localOf(s, it.id, '2'), { first_name: 'Local2' });
    remoteEdit('2', { firstname: 'Remote2' });
    const r2 = await within(s.sync(it.id, manual), 20000, 'sync');
    assert.equal(r2.conflicts, 1);
    const [c2] = s.conflicts(it.id, { status: 'open' });
    assert.equal(c2.external_id, '2');
    peer.requests = [];
    await within(s.resolveConflict(c2.id, { choose: 'local' }), 20000, 'resolveConflict');
    const patches = peer.requests.filter((q) => q.method === 'PATCH');
    assert.equal(patches.length, 1, JSON.stringify(peer.requests.map((q) => `${q.method} ${q.path}`)));
    assert.equal(patches[0].path, `${BASE}/2`);
    assert.equal(patches[0].body.properties.firstname, 'Local2');
    assert.equal(peer.contacts.get('2').properties.firstname, 'Local2');
    assert.equal(localOf(s, it.id, '2').data.first_name, 'Local2');
    assert.equal(s.conflicts(it.id, { status: 'resolved' }).find((c) => c.id === c2.id).resolution, 'local');

    // Round 3: contact 3, merged by hand: both sides get the given data.
    localEdit(s, localOf(s, it.id, '3'), { first_name: 'Local3' });
    remoteEdit('3', { lastname: 'Remote3' });
    await within(s.sync(it.id, manual), 20000, 'sync');
    const [c3] = s.conflicts(it.id, { status: 'open' });
    assert.equal(c3.external_id, '3');
    const merged = { ...c3.remote, first_name: 'Local3' };
    peer.requests = [];
    await within(s.resolveConflict(c3.id, { data: merged }), 20000, 'resolveConflict');
    assert.deepEqual(localOf(s, it.id, '3').data, merged);
    assert.equal(peer.contacts.get('3').properties.firstname, 'Local3');
    assert.equal(peer.contacts.get('3').properties.lastname, 'Remote3');
    assert.equal(s.conflicts(it.id, { status: 'resolved' }).find((c) => c.id === c3.id).resolution, 'data');
    assert.equal(s.conflicts(it.id).length, 3);
  } finally {
    ctx.setEventCallback(null);
    reader.close();
    s.close();
    ctx.close();
  }
});

test('resolveConflict errors: InvalidArgument, NotFound across tenants, PermissionDenied; all reject', { timeout: 60000 }, async () => {
  resetPeer(3);
  const ctx = peerContext();
  const a = ctx.session('tenant-a', 'alice', ['admin']);
  const b = ctx.session('tenant-b', 'bob', ['admin']);
  const reader = ctx.session('tenant-a', 'rita');
  try {
    const it = createHubspot(a);
    await pulled(a, it.id);
    localEdit(a, localOf(a, it.id, '1'), { first_name: 'Mine' });
    remoteEdit('1', { firstname: 'Theirs' });
    await within(a.sync(it.id, { entity: 'contacts', direction: 'bidirectional', conflict_strategy: 'manual' }), 20000, 'sync');
    const [c] = a.conflicts(it.id, { status: 'open' });
    assert.ok(c, 'one open conflict');
    peer.requests = [];

    for (const [args, re] of [
      [[c.id, { choose: 'both' }], /choose/],
      [[c.id, {}], /exactly one/],
      [[c.id, { choose: 'local', data: {} }], /exactly one/],
      [[c.id, { data: 5 }], /data: must be an object/],
      [[c.id, { choose: 'local', colour: 'red' }], /resolution_json\.colour/],
      [[c.id, 'local'], /resolution/],
      [[c.id], /resolution/],
      [[42, { choose: 'local' }], /conflictId: must be a string/],
      [['a\0b', { choose: 'local' }], /conflictId: must not contain NUL/],
    ]) {
      let p;
      assert.doesNotThrow(() => { p = a.resolveConflict(...args); });
      await assert.rejects(within(p, 20000, 'resolveConflict'),
        (err) => err instanceof integ.InvalidArgument && re.test(err.message), `${JSON.stringify(args)} ${re}`);
    }
    // Another tenant's conflict id, and an unknown one.
    await assert.rejects(within(b.resolveConflict(c.id, { choose: 'local' }), 20000, 'resolveConflict'),
      (err) => err instanceof integ.NotFound && err.message.includes(c.id));
    await assert.rejects(within(a.resolveConflict('0190a5c0-0000-7000-8000-000000000000', { choose: 'local' }), 20000,
      'resolveConflict'), integ.NotFound);
    assert.throws(() => b.conflicts(it.id), integ.NotFound);
    // Writing needs integration:admin.
    await assert.rejects(within(reader.resolveConflict(c.id, { choose: 'local' }), 20000, 'resolveConflict'),
      (err) => err instanceof integ.PermissionDenied && /rita/.test(err.message));
    assert.deepEqual(writes(), [], 'nothing reached the remote');
    assert.equal(a.conflicts(it.id, { status: 'open' }).length, 1, 'still open');

    // While it runs, the session is busy; a closed session refuses.
    const pending = a.resolveConflict(c.id, { choose: 'local' });
    assert.throws(() => a.conflicts(it.id), integ.ConflictError);
    await within(pending, 20000, 'resolveConflict');
    assert.equal(a.conflicts(it.id, { status: 'open' }).length, 0);
    reader.close();
    await assert.rejects(reader.resolveConflict(c.id, { choose: 'local' }), integ.InvalidArgument);
  } finally {
    for (const s of [a, b, reader]) s.close();
    ctx.close();
  }
});

// ---- runDue -----------------------------------------------------------------

test('runDue runs the due auto_sync integrations of every tenant', { timeout: 60000 }, async () => {
  resetPeer(3);
  const ctx = peerContext();
  const a = ctx.session('tenant-a', 'alice', ['admin']);
  const b = ctx.session('tenant-b', 'bob', ['admin']);
  const events = [];
  ctx.setEventCallback((e) => events.push(e));
  try {
    const auto = createHubspot(a, { auto_sync: true, entities: ['contacts'] }, 'Auto');
    const manualOnly = createHubspot(a, { entities: ['contacts'] }, 'Manual');
    const autoB = createHubspot(b, { auto_sync: true, entities: ['contacts'] }, 'Auto B');
    const p = ctx.runDue();
    assert.ok(p instanceof Promise);
    const out = await within(p, 30000, 'runDue');
    assert.ok(Array.isArray(out.syncs), JSON.stringify(out));
    const mine = out.syncs.filter((x) => x.integration_id === auto.id);
    assert.deepEqual(mine.map((x) => [x.entity, x.status]), [['contacts', 'success']], JSON.stringify(out.syncs));
    assert.equal(mine[0].tenant_id, 'tenant-a');
    assert.match(mine[0].sync_log_id, /^[0-9a-f-]{36}$/);
    assert.equal(out.syncs.filter((x) => x.integration_id === autoB.id)[0]?.status, 'success');
    assert.equal(out.syncs.filter((x) => x.integration_id === manualOnly.id).length, 0, 'not auto_sync');
    assert.equal(typeof out.webhooks, 'object');
    assert.equal(out.webhooks.claimed, 0);

    // The sync ran as the tenant's "scheduler", with trigger "schedule".
    const log = a.syncLogs(auto.id)[0];
    assert.equal(log.sync_log_id, mine[0].sync_log_id);
    assert.equal(log.trigger, 'schedule');
    assert.equal(log.user_id, 'scheduler');
    assert.equal(log.status, 'success');
    assert.equal(a.entities('contacts', { limit: 100 }).length, 3);
    assert.equal(b.entities('contacts', { limit: 100 }).length, 3);
    assert.deepEqual(a.syncLogs(manualOnly.id), []);
    // sync.completed reached the callback before runDue settled.
    const completed = events.filter((e) => e.type === 'sync.completed');
    assert.deepEqual(completed.map((e) => e.integration_id).sort(), [auto.id, autoB.id].sort());
    assert.ok(completed.every((e) => e.trigger === 'schedule'));

    // Claimed: the next run is an interval away.
    const second = await within(ctx.runDue(10), 30000, 'runDue');
    assert.deepEqual(second.syncs, []);

    // Argument errors reject (never throw).
    for (const bad of [0, 10001, 1.5, 'ten', NaN]) {
      let q;
      assert.doesNotThrow(() => { q = ctx.runDue(bad); });
      await assert.rejects(within(q, 20000, 'runDue'), integ.InvalidArgument, String(bad));
    }
    const closed = peerContext();
    closed.close();
    await assert.rejects(closed.runDue(), integ.InvalidArgument);
  } finally {
    ctx.setEventCallback(null);
    a.close();
    b.close();
    ctx.close();
  }
});

test('runDue asks the permission callback (on the JS thread) for the scheduler\'s syncs', { timeout: 60000 }, async () => {
  resetPeer(3);
  const ctx = peerContext();
  const s = ctx.session('tenant-a', 'alice', ['admin']);
  try {
    const allowed = createHubspot(s, { auto_sync: true, entities: ['contacts'] }, 'Allowed');
    const calls = [];
    ctx.setPermissionCallback((tenant, user, resource, action) => {
      calls.push([tenant, user, resource, action]);
      return user === 'scheduler';
    });
    const out = await within(ctx.runDue(), 30000, 'runDue');
    assert.deepEqual(out.syncs.map((x) => [x.integration_id, x.status]), [[allowed.id, 'success']]);
    assert.ok(calls.some(([t, u]) => t === 'tenant-a' && u === 'scheduler'), JSON.stringify(calls));

    // Denied: the sync fails with PermissionDenied's code, runDue itself resolves.
    ctx.setPermissionCallback(() => true);
    const denied = createHubspot(s, { auto_sync: true, entities: ['contacts'] }, 'Denied');
    ctx.setPermissionCallback(() => false);
    const out2 = await within(ctx.runDue(), 30000, 'runDue');
    assert.deepEqual(out2.syncs.map((x) => [x.integration_id, x.status, x.code]),
      [[denied.id, 'error', integ.codes.EPERM]]);
    assert.match(out2.syncs[0].error, /permission denied/);
  } finally {
    ctx.setPermissionCallback(null);
    s.close();
    ctx.close();
  }
});

'use strict';
// Sync, progress, cancel, the connection test and sync logs, against a
// HubSpot-like peer served by this process on 127.0.0.1. The sync runs on
// the thread pool while this (JS) thread keeps serving HTTP: a synchronous
// sync would deadlock here, which is the point of making it async.

const test = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const integ = require('..');

const TOTAL = 25;
const PAGE = 10;
const ts = (i) => `2024-01-01T00:${String(i).padStart(2, '0')}:00Z`;
const RECORDS = Array.from({ length: TOTAL }, (_, k) => ({
  id: String(k + 1),
  properties: {
    email: ` A${k + 1}@X.IO `,
    firstname: 'A',
    lastname: String(k + 1),
    lastmodifieddate: ts(k + 1),
  },
  updatedAt: ts(k + 1),
}));

// ---- the peer -------------------------------------------------------------

const peer = {
  server: null,
  port: 0,
  requests: [], // {method, path, query, body, auth}
  hold: null, // {arrived(), released: Promise}: hold the next list request
};

function send(res, status, obj) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(obj));
}

function page(list, after, limit) {
  const n = Math.min(Number(limit) || PAGE, PAGE);
  const out = { results: list.slice(after, after + n) };
  if (after + n < list.length) out.paging = { next: { after: String(after + n) } };
  return out;
}

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
  if (req.method === 'GET' && url.pathname === '/crm/v3/objects/contacts') {
    // The manifest's deleted-records request: nothing is archived here.
    if (url.searchParams.get('archived') === 'true') return send(res, 200, { results: [] });
    if (peer.hold && url.searchParams.get('limit') !== '1') {
      const h = peer.hold;
      peer.hold = null;
      h.arrived();
      // Bounded: a test that forgets to release does not hang the suite.
      await Promise.race([h.released, new Promise((r) => setTimeout(r, 5000).unref())]);
    }
    return send(res, 200, page(RECORDS, Number(url.searchParams.get('after') || 0), url.searchParams.get('limit')));
  }
  if (req.method === 'POST' && url.pathname === '/crm/v3/objects/contacts/search') {
    const f = body?.filterGroups?.[0]?.filters?.[0];
    if (!f || f.operator !== 'GTE' || !f.propertyName) return send(res, 400, { message: 'bad filter' });
    const since = Date.parse(f.value);
    const match = RECORDS.filter((r) => Date.parse(r.properties[f.propertyName]) >= since);
    return send(res, 200, { total: match.length, ...page(match, Number(body.after || 0), body.limit) });
  }
  return send(res, 404, { message: `no route ${req.method} ${url.pathname}` });
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

function createHubspot(s, apiKey = 'tok', name = 'HubSpot') {
  return s.createIntegration({
    integration_definition_id: 'hubspot-crm',
    name,
    credentials: { api_key: apiKey },
    config: { entities: ['contacts'] },
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

const listRequests = () => peer.requests.filter((r) => r.method === 'GET' && r.query.limit !== '1' &&
  r.query.archived !== 'true');

// ---- tests ----------------------------------------------------------------

test('sync pulls every page into local contacts; the next run is incremental', { timeout: 30000 }, async () => {
  const ctx = peerContext();
  const s = ctx.session('tenant-a', 'alice', ['admin']);
  const reader = ctx.session('tenant-a', 'rita');
  try {
    const it = createHubspot(s);
    peer.requests = [];
    const progress = [];
    const visible = [];
    let sameSession;
    const pending = s.sync(it.id, { entity: 'contacts' }, {
      onProgress(p) {
        progress.push(p);
        // Runs on the JS thread while the sync waits: other sessions may
        // read (the page is committed), this one is busy.
        visible.push(reader.entities('contacts', { limit: 100 }).length);
        try {
          s.integrations();
        } catch (err) {
          sameSession = err;
        }
      },
    });
    assert.ok(pending instanceof Promise);
    const result = await within(pending, 20000, 'sync');
    assert.equal(result.status, 'success');
    assert.equal(result.integration_id, it.id);
    assert.equal(result.entity, 'contacts');
    assert.equal(result.records_created, TOTAL);
    assert.equal(result.records_processed, TOTAL);
    assert.equal(result.records_failed, 0);
    assert.equal(result.user_id, 'alice');
    assert.deepEqual(result.errors, []);
    assert.match(result.sync_log_id, /^[0-9a-f-]{36}$/);

    // One progress call per committed page.
    assert.deepEqual(progress.map((p) => p.pages), [1, 2, 3]);
    assert.deepEqual(progress.map((p) => p.records_processed), [10, 20, 25]);
    assert.deepEqual(progress.map((p) => p.records_created), [10, 20, 25]);
    for (const p of progress) {
      assert.equal(p.integration_id, it.id);
      assert.equal(p.entity, 'contacts');
      assert.equal(typeof p.elapsed_ms, 'number');
      assert.equal(typeof p.records_per_second, 'number');
    }
    assert.deepEqual(visible, [10, 20, 25]);
    assert.ok(sameSession instanceof integ.ConflictError, String(sameSession));

    // The peer saw a cursor-paginated, authenticated list.
    const lists = listRequests();
    assert.deepEqual(lists.map((r) => r.query.after), [undefined, '10', '20']);
    for (const r of lists) assert.equal(r.auth, 'Bearer tok');

    // The manifest's default mapping shaped the local records.
    const local = s.entities('contacts', { limit: 100 });
    assert.equal(local.length, TOTAL);
    const one = local.find((r) => r.data.last_name === '1');
    assert.deepEqual(one.data, {
      email: ' A1@X.IO ', first_name: 'A', last_name: '1', external_updated_at: ts(1),
    });
    assert.equal(one.entity, 'contacts');
    assert.equal(one.version, 1);
    assert.equal(one.deleted, false);
    const got = s.entity('contacts', one.id);
    assert.deepEqual(got.links.map((l) => [l.integration_id, l.external_id]), [[it.id, '1']]);
    assert.notEqual(s.integration(it.id).last_sync_at, null);

    // Second run: incremental from the high-water mark, through the search.
    peer.requests = [];
    const second = await within(s.sync(it.id, { entity: 'contacts' }), 20000, 'sync');
    assert.equal(second.status, 'success');
    assert.equal(second.records_created, 0);
    assert.equal(second.sync_type, 'incremental');
    const searches = peer.requests.filter((r) => r.path === '/crm/v3/objects/contacts/search');
    assert.equal(searches.length, 1);
    assert.equal(searches[0].method, 'POST');
    assert.deepEqual(searches[0].body.filterGroups[0].filters[0],
      { propertyName: 'lastmodifieddate', operator: 'GTE', value: ts(TOTAL) });
    assert.equal(listRequests().length, 0);

    // An explicit modified_since pages the search through "after" in the body.
    peer.requests = [];
    const third = await within(s.sync(it.id, { entity: 'contacts', filter: { modified_since: ts(5) } }), 20000, 'sync');
    assert.equal(third.records_created, 0);
    assert.equal(third.records_processed, TOTAL - 4);
    assert.equal(third.records_skipped, TOTAL - 4); // unchanged payloads
    assert.deepEqual(peer.requests.filter((r) => r.path === '/crm/v3/objects/contacts/search')
      .map((r) => r.body && r.body.after && String(r.body.after)), [undefined, '10', '20']);

    // Logs, newest first.
    const logs = s.syncLogs(it.id);
    assert.deepEqual(logs.map((l) => l.sync_log_id), [third.sync_log_id, second.sync_log_id, result.sync_log_id]);
    assert.deepEqual(logs.map((l) => l.records_created), [0, 0, TOTAL]);
    assert.deepEqual(logs.map((l) => l.status), ['success', 'success', 'success']);
    assert.equal(s.syncLogs(it.id, { limit: 1 })[0].sync_log_id, third.sync_log_id);
    assert.equal(s.syncLogs(it.id, { status: 'error' }).length, 0);
    assert.equal(reader.syncLogs(it.id).length, 3); // reading needs no role
    assert.throws(() => s.syncLogs(it.id, { colour: 'red' }), integ.InvalidArgument);
    assert.ok(s.audit({ action: 'sync.run' }).length >= 3);
  } finally {
    reader.close();
    s.close();
    ctx.close();
  }
});

test('only `true` from onProgress cancels; Canceled carries the partial result', { timeout: 30000 }, async () => {
  const ctx = peerContext();
  const s = ctx.session('tenant-a', 'alice', ['admin']);
  try {
    const it = createHubspot(s);
    const answers = [1, Promise.resolve(true), true]; // truthy is not enough
    let calls = 0;
    await assert.rejects(within(s.sync(it.id, { entity: 'contacts' }, { onProgress: () => answers[calls++] }), 20000, 'sync'),
      (err) => {
        assert.ok(err instanceof integ.Canceled, String(err));
        assert.equal(err.code, integ.codes.ECANCELED);
        assert.match(err.message, /progress callback/);
        assert.equal(err.result.status, 'canceled');
        assert.equal(err.result.records_created, TOTAL);
        assert.equal(err.result.integration_id, it.id);
        return true;
      });
    assert.equal(calls, 3);

    // Canceled after the first page: that page stays, the next run resumes.
    const s2 = ctx.session('tenant-a', 'alice', ['admin']);
    const it2 = createHubspot(s2, 'tok', 'HubSpot 2');
    calls = 0;
    let canceled;
    await assert.rejects(within(s2.sync(it2.id, { entity: 'contacts' }, { onProgress: () => { calls++; return true; } }), 20000, 'sync'),
      (err) => { canceled = err; return err instanceof integ.Canceled; });
    assert.equal(calls, 1);
    assert.equal(canceled.result.status, 'canceled');
    assert.equal(canceled.result.records_created, PAGE);
    assert.equal(s2.syncLogs(it2.id)[0].status, 'canceled');
    assert.equal(s2.syncLogs(it2.id)[0].sync_log_id, canceled.result.sync_log_id);

    const resumed = await within(s2.sync(it2.id, { entity: 'contacts' }), 20000, 'sync');
    assert.equal(resumed.status, 'success');
    assert.equal(resumed.records_created, TOTAL - PAGE);
    s2.close();
  } finally {
    s.close();
    ctx.close();
  }
});

test('a throwing onProgress cancels and the Promise rejects with the thrown value', { timeout: 30000 }, async () => {
  const ctx = peerContext();
  const s = ctx.session('tenant-a', 'alice', ['admin']);
  try {
    const it = createHubspot(s);
    class HostError extends Error {}
    const thrown = new HostError('progress sink down');
    let calls = 0;
    await assert.rejects(within(s.sync(it.id, { entity: 'contacts' }, {
      onProgress: () => { if (++calls === 2) throw thrown; },
    }), 20000, 'sync'), (err) => {
      assert.equal(err, thrown);
      return true;
    });
    assert.equal(calls, 2);
    assert.equal(s.syncLogs(it.id)[0].status, 'canceled');
    assert.equal(s.entities('contacts', { limit: 100 }).length, 2 * PAGE);

    // A thrown primitive survives too; the session is usable afterwards.
    await assert.rejects(within(s.sync(it.id, { entity: 'contacts', full: true }, {
      onProgress: () => { throw 'plain string'; }, // eslint-disable-line no-throw-literal
    }), 20000, 'sync'), (err) => err === 'plain string');
    const done = await within(s.sync(it.id, { entity: 'contacts' }), 20000, 'sync');
    assert.equal(done.status, 'success');
    assert.equal(s.entities('contacts', { limit: 100 }).length, TOTAL);
  } finally {
    s.close();
    ctx.close();
  }
});

test('sync argument errors reject (never throw)', async () => {
  const ctx = peerContext();
  const s = ctx.session('tenant-a', 'alice', ['admin']);
  try {
    const it = createHubspot(s);
    for (const [args, re] of [
      [[it.id, { entity: 'contacts' }, 'fast'], /options: must be an object/],
      [[it.id, { entity: 'contacts' }, { onProgress: 'yes' }], /options\.onProgress: must be a function/],
      [[it.id, { entity: 'contacts' }, { onprogress() {} }], /options\.onprogress: unknown option/],
      [[it.id, { entity: 'widgets' }], /entity/],
      [[it.id, { entity: 'contacts', colour: 1 }], /request_json\.colour/],
      [[it.id], /request/],
      [[42, { entity: 'contacts' }], /integrationId: must be a string/],
    ]) {
      let p;
      assert.doesNotThrow(() => { p = s.sync(...args); });
      await assert.rejects(p, (err) => err instanceof integ.InvalidArgument && re.test(err.message), String(re));
    }
    await assert.rejects(s.sync(it.id, { entity: 'contacts', direction: 'sideways' }),
      (err) => err instanceof integ.InvalidArgument && /request_json\.direction/.test(err.message));
    await assert.rejects(s.testIntegration(7), integ.InvalidArgument);
  } finally {
    s.close();
    ctx.close();
  }
});

test('testIntegration: success, and the real reason for a wrong key', { timeout: 30000 }, async () => {
  const ctx = peerContext();
  const s = ctx.session('tenant-a', 'alice', ['admin']);
  const reader = ctx.session('tenant-a', 'rita');
  try {
    const good = createHubspot(s);
    const bad = createHubspot(s, 'wrong', 'HubSpot (bad key)');
    const p = s.testIntegration(good.id);
    assert.ok(p instanceof Promise);
    const ok = await within(p, 20000, 'testIntegration');
    assert.equal(ok.success, true);
    assert.equal(ok.code, 0);
    assert.equal(ok.http_status, 200);
    assert.equal(typeof ok.message, 'string');
    const no = await within(reader.testIntegration(bad.id), 20000, 'testIntegration');
    assert.equal(no.success, false);
    assert.match(no.message, /401/);
    assert.match(no.message, /Authentication credentials not found/);
    assert.equal(no.http_status, 401);
    assert.equal(no.code, integ.codes.EAUTH);
    assert.ok(!JSON.stringify(no).includes('wrong'), 'no secret in the answer');
  } finally {
    reader.close();
    s.close();
    ctx.close();
  }
});

test('sync with a wrong key rejects AuthError and marks the integration', { timeout: 30000 }, async () => {
  const ctx = peerContext();
  const s = ctx.session('tenant-a', 'alice', ['admin']);
  try {
    const bad = createHubspot(s, 'wrong');
    await assert.rejects(within(s.sync(bad.id, { entity: 'contacts' }), 20000, 'sync'), (err) => {
      assert.ok(err instanceof integ.AuthError, String(err));
      assert.equal(err.code, -5);
      assert.match(err.message, /401/);
      assert.equal(err.result, undefined);
      return true;
    });
    const logs = s.syncLogs(bad.id);
    assert.equal(logs.length, 1);
    assert.equal(logs[0].status, 'error');
    assert.equal(s.integration(bad.id).status, 'needs_reauth');
    assert.equal(s.entities('contacts').length, 0);
  } finally {
    s.close();
    ctx.close();
  }
});

test("another tenant's ids are NotFound; a non-admin sync is PermissionDenied", { timeout: 30000 }, async () => {
  const ctx = peerContext();
  const a = ctx.session('tenant-a', 'alice', ['admin']);
  const b = ctx.session('tenant-b', 'bob', ['admin']);
  const reader = ctx.session('tenant-a', 'rita');
  try {
    const it = createHubspot(a);
    await within(a.sync(it.id, { entity: 'contacts' }), 20000, 'sync');
    const local = a.entities('contacts')[0];
    peer.requests = [];

    await assert.rejects(b.sync(it.id, { entity: 'contacts' }), integ.NotFound);
    await assert.rejects(b.testIntegration(it.id), integ.NotFound);
    assert.throws(() => b.syncLogs(it.id), integ.NotFound);
    assert.throws(() => b.entity('contacts', local.id), integ.NotFound);
    assert.throws(() => b.putEntity('contacts', { id: local.id, data: { email: 'x' } }), integ.NotFound);
    assert.throws(() => b.deleteEntity('contacts', local.id), integ.NotFound);
    assert.deepEqual(b.entities('contacts'), []);
    assert.throws(() => b.mappings(it.id), integ.NotFound);

    await assert.rejects(reader.sync(it.id, { entity: 'contacts' }), (err) => {
      assert.ok(err instanceof integ.PermissionDenied, String(err));
      assert.match(err.message, /rita/);
      return true;
    });
    assert.equal(peer.requests.length, 0, 'nothing reached the remote');
    assert.equal(a.entity('contacts', local.id).version, 1);
  } finally {
    for (const s of [a, b, reader]) s.close();
    ctx.close();
  }
});

test('the permission callback decides sync, asked from the worker thread', { timeout: 30000 }, async () => {
  const ctx = peerContext();
  const admin = ctx.session('tenant-a', 'alice', ['admin']);
  const boss = ctx.session('tenant-a', 'boss'); // no roles at all
  try {
    const it = createHubspot(admin);
    const calls = [];
    ctx.setPermissionCallback((tenantId, userId, resource, action) => {
      calls.push([tenantId, userId, resource, action]);
      return userId === 'boss';
    });
    // integ_sync checks on the worker: the callback is run on this thread
    // through a threadsafe function and the worker waits for the verdict.
    const r = await within(boss.sync(it.id, { entity: 'contacts' }), 20000, 'sync');
    assert.equal(r.records_created, TOTAL);
    assert.equal(r.user_id, 'boss');
    assert.deepEqual(calls, [['tenant-a', 'boss', 'integration', 'admin']]);
    await assert.rejects(admin.sync(it.id, { entity: 'contacts' }), integ.PermissionDenied);
    assert.deepEqual(calls.at(-1), ['tenant-a', 'alice', 'integration', 'admin']);

    // Only `true` allows, on this path too.
    ctx.setPermissionCallback(() => 1);
    await assert.rejects(boss.sync(it.id, { entity: 'contacts' }), integ.PermissionDenied);

    // A throwing callback denies; the Promise rejects with its exception.
    class DirectoryDown extends Error {}
    ctx.setPermissionCallback(() => { throw new DirectoryDown('directory unavailable'); });
    await assert.rejects(boss.sync(it.id, { entity: 'contacts' }), (err) => {
      assert.ok(err instanceof DirectoryDown);
      assert.equal(err.message, 'directory unavailable');
      return true;
    });

    // It may not call the library, on this path either.
    let inner;
    ctx.setPermissionCallback(() => {
      try {
        admin.integrations();
      } catch (err) {
        inner = err;
      }
      return true;
    });
    const again = await within(boss.sync(it.id, { entity: 'contacts' }), 20000, 'sync');
    assert.equal(again.status, 'success');
    assert.ok(inner instanceof integ.InvalidArgument);
    assert.match(inner.message, /permission callback/);

    // Cleared: the roles decide again.
    ctx.setPermissionCallback(null);
    await assert.rejects(boss.sync(it.id, { entity: 'contacts' }), integ.PermissionDenied);
    assert.equal((await within(admin.sync(it.id, { entity: 'contacts' }), 20000, 'sync')).status, 'success');
  } finally {
    admin.close();
    boss.close();
    ctx.close();
  }
});

test('two syncs of one integration at once: the second is ConflictError', { timeout: 30000 }, async () => {
  const ctx = peerContext();
  const s1 = ctx.session('tenant-a', 'alice', ['admin']);
  const s2 = ctx.session('tenant-a', 'alan', ['admin']);
  let release;
  try {
    const it = createHubspot(s1);
    const arrived = new Promise((resolve) => {
      peer.hold = { arrived: resolve, released: new Promise((r) => { release = r; }) };
    });
    const first = s1.sync(it.id, { entity: 'contacts' });
    await within(arrived, 10000, 'the first sync reaching the peer');

    // The first holds the integration's lease while the peer stalls.
    await assert.rejects(s2.sync(it.id, { entity: 'contacts' }), (err) => {
      assert.ok(err instanceof integ.ConflictError, String(err));
      assert.match(err.message, /already running/);
      return true;
    });
    // And its session is busy: the binding refuses before the library.
    await assert.rejects(s1.sync(it.id, { entity: 'contacts' }), integ.ConflictError);
    assert.throws(() => s1.integrations(), integ.ConflictError);
    assert.equal(s2.integrations().length, 1);

    release();
    const r = await within(first, 20000, 'the first sync');
    assert.equal(r.status, 'success');
    assert.equal(r.records_created, TOTAL);
    // Lease released: the other session may sync now.
    assert.equal((await within(s2.sync(it.id, { entity: 'contacts' }), 20000, 'sync')).status, 'success');
  } finally {
    peer.hold = null;
    if (release) release();
    s1.close();
    s2.close();
    ctx.close();
  }
});

test('a stored mapping drives the next sync', { timeout: 30000 }, async () => {
  const ctx = peerContext();
  const s = ctx.session('tenant-a', 'alice', ['admin']);
  try {
    const it = createHubspot(s);
    s.putMapping(it.id, {
      source_entity: 'contacts',
      target_entity: 'people',
      field_map: { email: 'properties.email', name: 'properties.lastname' },
      transform_rules: [{ target: 'email', op: 'trim' }, { target: 'email', op: 'lowercase' }],
      required: ['email'],
    });
    const r = await within(s.sync(it.id, { entity: 'contacts' }), 20000, 'sync');
    assert.equal(r.records_created, TOTAL);
    assert.equal(s.entities('contacts').length, 0);
    const people = s.entities('people', { limit: 100 });
    assert.equal(people.length, TOTAL);
    assert.deepEqual(people.find((p) => p.data.name === '7').data, { email: 'a7@x.io', name: '7' });
  } finally {
    s.close();
    ctx.close();
  }
});

test('closing a session while its sync runs defers the close', { timeout: 30000 }, async () => {
  const ctx = peerContext();
  const s = ctx.session('tenant-a', 'alice', ['admin']);
  try {
    const it = createHubspot(s);
    const p = s.sync(it.id, { entity: 'contacts' }, { onProgress: () => false });
    s.close();
    ctx.close();
    assert.equal(s.closed, true);
    const r = await within(p, 20000, 'sync');
    assert.equal(r.records_created, TOTAL);
    assert.throws(() => s.entities('contacts'), integ.InvalidArgument);
  } finally {
    s.close();
    ctx.close();
  }
});

test('sync in worker threads: progress and permission per environment; terminate mid-sync', { timeout: 30000 }, async () => {
  const { Worker } = require('node:worker_threads');
  const index = require('node:path').resolve(__dirname, '..', 'index.js');
  const source = `
    const { parentPort, workerData } = require('node:worker_threads');
    const integ = require(${JSON.stringify(index)});
    const ctx = new integ.Context({
      store: 'sqlite::memory:', master_key: integ.generateMasterKey(),
      http: { allow_private_networks: true, max_retries: 1 },
      base_url_overrides: { 'hubspot-crm': 'http://127.0.0.1:' + workerData.port },
    });
    const admin = ctx.session('tenant-w', 'alice', ['admin']);
    const it = admin.createIntegration({ integration_definition_id: 'hubspot-crm', name: 'W',
      credentials: { api_key: 'tok' } });
    ctx.setPermissionCallback((t, u) => u === 'boss');
    const boss = ctx.session('tenant-w', 'boss');
    let pages = 0;
    parentPort.postMessage({ started: true });
    boss.sync(it.id, { entity: 'contacts' }, { onProgress: () => { pages++; } })
      .then((r) => parentPort.postMessage({ created: r.records_created, pages }),
            (err) => parentPort.postMessage({ error: String(err) }));
  `;
  const run = (w) => new Promise((resolve, reject) => {
    w.on('message', (m) => { if (!m.started) resolve(m); });
    w.on('error', reject);
  });

  // Two workers at once, each with its own context and callbacks.
  const workers = [0, 1].map(() => new Worker(source, { eval: true, workerData: { port: peer.port } }));
  const results = await within(Promise.all(workers.map(run)), 20000, 'workers');
  for (const r of results) assert.deepEqual(r, { created: TOTAL, pages: 3 });
  await Promise.all(workers.map((w) => w.terminate()));

  // Terminated while its sync waits on the peer: no hang, no crash.
  let release;
  const arrived = new Promise((resolve) => {
    peer.hold = { arrived: resolve, released: new Promise((r) => { release = r; }) };
  });
  const w = new Worker(source, { eval: true, workerData: { port: peer.port } });
  try {
    await within(arrived, 10000, 'the worker sync reaching the peer');
    const exited = w.terminate();
    release();
    await within(exited, 10000, 'worker termination');
  } finally {
    peer.hold = null;
    if (release) release();
  }
  // This thread is unaffected.
  const ctx = peerContext();
  const s = ctx.session('tenant-a', 'alice', ['admin']);
  const it = createHubspot(s);
  assert.equal((await within(s.sync(it.id, { entity: 'contacts' }), 20000, 'sync')).records_created, TOTAL);
  s.close();
  ctx.close();
});

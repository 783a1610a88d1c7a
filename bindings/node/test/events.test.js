'use strict';
// The event callback's lifetime: finalisers with a callback set (child
// process, --expose-gc), per-environment delivery in worker threads, and a
// worker terminated while processWebhooks waits on the network.

const test = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { Worker } = require('node:worker_threads');

const INDEX = path.resolve(__dirname, '..', 'index.js');

// A HubSpot-like API for the webhook fetch (GET /crm/v3/objects/contacts/ID):
// answers 200, or holds the request (bounded) when told to.
const peer = { server: null, port: 0, hold: false, held: 0 };

test.before(async () => {
  peer.server = http.createServer((req, res) => {
    const m = /^\/crm\/v3\/objects\/contacts\/(\w+)/.exec(req.url);
    if (peer.hold) {
      peer.held++;
      setTimeout(() => { res.writeHead(503); res.end(); }, 3000).unref();
      return;
    }
    res.writeHead(m ? 200 : 404, { 'content-type': 'application/json' });
    res.end(JSON.stringify(m ? {
      id: m[1], properties: { email: `c${m[1]}@example.com`, firstname: 'C', lastname: m[1] },
      updatedAt: '2025-01-23T10:00:00Z',
    } : { message: 'not found' }));
  });
  await new Promise((r) => peer.server.listen(0, '127.0.0.1', r));
  peer.port = peer.server.address().port;
});

test.after(() => peer.server.close());

// Runs in a worker (or a child): a HubSpot delivery, processed with the
// event callback set; base decides whether the fetch succeeds.
const FLOW = `
  const integ = require(${JSON.stringify(INDEX)});
  const crypto = require('node:crypto');
  function flow(base, maxAttempts) {
    const ctx = new integ.Context({ store: 'sqlite::memory:', master_key: integ.generateMasterKey(),
      base_url_overrides: { 'hubspot-crm': base },
      http: { allow_private_networks: true, max_retries: 0, timeout_ms: 10000 },
      webhook: { max_attempts: maxAttempts, base_url: 'https://app.example.com/hooks' } });
    ctx.setAppCredentials('hubspot-crm', { client_id: 'c', client_secret: 'sec' });
    const s = ctx.session('acme', 'alice', ['admin']);
    const hub = s.createIntegration({ integration_definition_id: 'hubspot-crm', credentials: { api_key: 't' } });
    const ep = s.createWebhookEndpoint(hub.id);
    const ts = String(Date.now());
    const body = '[{"eventId":1,"subscriptionType":"contact.propertyChange","objectId":9}]';
    const sig = crypto.createHmac('sha256', 'sec').update('POST' + ep.url + body + ts).digest('base64');
    const got = ctx.receiveWebhook(ep.id, { url: ep.url, body,
      headers: { 'X-HubSpot-Signature-v3': sig, 'X-HubSpot-Request-Timestamp': ts } });
    if (got.status !== 202) throw new Error('receive: ' + JSON.stringify(got));
    return { ctx, s };
  }
`;

test('finalisers with an event callback set, cleared or not, after close or not', () => {
  const script = `${FLOW}
    (async () => {
      for (let i = 0; i < 20; i++) {
        let { ctx, s } = flow('http://127.0.0.1:9', 1);
        const seen = [];
        ctx.setEventCallback((e) => seen.push(e.type, ctx.closed));
        const r = await ctx.processWebhooks();
        if (r.dead !== 1 || seen.join() !== 'webhook.dead,false') throw new Error('round ' + i + ': ' + seen.join());
        if (i % 2) ctx.setEventCallback(null);
        if (i % 3 === 0) { s.close(); ctx.close(); }
        ctx = s = null;
        global.gc();
        await new Promise((r) => setImmediate(r));
      }
      global.gc();
      console.log('ok');
    })().catch((e) => { console.error(e); process.exit(1); });
  `;
  const r = spawnSync(process.execPath, ['--expose-gc', '-e', script], { encoding: 'utf8', timeout: 60000 });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, 'ok\n');
});

test('a callback that refers to its context holds it until cleared; then the finaliser closes the store', () => {
  const script = `
    const integ = require(${JSON.stringify(INDEX)});
    const fs = require('node:fs');
    const os = require('node:os');
    const path = require('node:path');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'integ-node-ev-'));
    const db = path.join(dir, 'ev.db');
    const openFds = () => fs.readdirSync('/proc/self/fd').filter((fd) => {
      try { return fs.readlinkSync('/proc/self/fd/' + fd).startsWith(db); } catch { return false; }
    }).length;
    const settle = () => new Promise((r) => setImmediate(r));
    (async () => {
      const key = integ.generateMasterKey();
      const gc = async () => { for (let i = 0; i < 10; i++) { global.gc(); await settle(); } };
      const make = () => {
        const c = new integ.Context({ store: 'sqlite:' + db, master_key: key });
        c.setEventCallback(() => c.closed); // a cycle through a strong reference
        return new WeakRef(c);
      };
      const held = make();
      await gc();
      console.log('held: ' + (held.deref() !== undefined) + ', fds ' + openFds());
      held.deref().setEventCallback(null); // no close(): only the finaliser closes the store
      await gc();
      console.log('collected: ' + (held.deref() === undefined) + ', fds ' + openFds());
      fs.rmSync(dir, { recursive: true, force: true });
    })().catch((e) => { console.error(e); process.exit(1); });
  `;
  const r = spawnSync(process.execPath, ['--expose-gc', '-e', script], { encoding: 'utf8', timeout: 60000 });
  assert.equal(r.status, 0, r.stderr);
  // Held: the store is open (the file, plus -wal and -shm); collected: none.
  assert.match(r.stdout, /^held: true, fds [1-9]\ncollected: true, fds 0\n$/);
});

test('event callbacks in worker threads; a worker terminated mid-processWebhooks', { timeout: 30000 }, async () => {
  const source = `${FLOW}
    const { parentPort, workerData } = require('node:worker_threads');
    const { ctx } = flow(workerData.base, workerData.maxAttempts);
    const seen = [];
    ctx.setEventCallback((e) => seen.push(e.type));
    parentPort.postMessage({ started: true });
    ctx.processWebhooks().then((r) => parentPort.postMessage({ r, seen }),
      (e) => parentPort.postMessage({ error: String(e) }));
  `;
  const run = (workerData) => new Promise((resolve, reject) => {
    const w = new Worker(source, { eval: true, workerData });
    w.on('message', (m) => { if (!m.started) resolve(m); });
    w.on('error', reject);
  }).then((m) => m);

  // Two environments at once: each gets its own events, before its Promise.
  const [dead, fine] = await Promise.all([
    run({ base: 'http://127.0.0.1:9', maxAttempts: 1 }),
    run({ base: `http://127.0.0.1:${peer.port}`, maxAttempts: 1 }),
  ]);
  assert.equal(dead.error, undefined);
  assert.equal(dead.r.dead, 1);
  assert.deepEqual(dead.seen, ['webhook.dead']);
  assert.equal(fine.r.processed, 1, JSON.stringify(fine.r));
  // Applying the delivery writes a sync log (trigger "webhook"): sync.completed.
  assert.deepEqual(fine.seen, ['sync.completed']);

  // Terminated while its processWebhooks waits on a held fetch: the
  // environment goes away with the call in flight and the event
  // callback set; this process must carry on.
  peer.hold = true;
  peer.held = 0;
  try {
    const w = new Worker(source, { eval: true, workerData: { base: `http://127.0.0.1:${peer.port}`, maxAttempts: 1 } });
    await new Promise((resolve, reject) => {
      w.on('error', reject);
      const t = setInterval(() => { if (peer.held > 0) { clearInterval(t); resolve(); } }, 5);
    });
    const code = await w.terminate();
    assert.equal(typeof code, 'number');
  } finally {
    peer.hold = false;
  }
  // Still healthy here.
  const again = await run({ base: 'http://127.0.0.1:9', maxAttempts: 1 });
  assert.deepEqual(again.seen, ['webhook.dead']);
});

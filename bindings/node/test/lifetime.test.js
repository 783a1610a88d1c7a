'use strict';
// Lifetimes: explicit close in any order, idempotence, garbage collection
// (finalisers run in a child process with --expose-gc), and the addon
// loaded by several worker threads at once.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { Worker } = require('node:worker_threads');
const integ = require('..');

const INDEX = path.resolve(__dirname, '..', 'index.js');
const REQUEST = {
  integration_definition_id: 'hubspot-crm',
  name: 'HubSpot Production',
  credentials: { api_key: '...' },
  config: { sync_interval: 3600, entities: ['contacts', 'companies', 'deals'], auto_sync: true },
};

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'integ-node-'));
test.after(() => fs.rmSync(dir, { recursive: true, force: true }));

function memContext() {
  return new integ.Context({ store: 'sqlite::memory:', master_key: integ.generateMasterKey() });
}

test('Context closed before its Session: the session keeps working', () => {
  const ctx = memContext();
  const s = ctx.session('t1', 'u1', ['admin']);
  ctx.close();
  assert.equal(ctx.closed, true);
  assert.throws(() => ctx.session('t1', 'u2'), (err) => err instanceof integ.InvalidArgument && /closed/.test(err.message));
  assert.throws(() => ctx.definitions(), integ.InvalidArgument);
  const created = s.createIntegration(REQUEST);
  assert.equal(s.integration(created.id).name, 'HubSpot Production');
  assert.equal(s.context, ctx);
  s.close();
  assert.equal(s.closed, true);
  assert.throws(() => s.integrations(), (err) => err instanceof integ.InvalidArgument && /closed/.test(err.message));
});

test('explicit close is idempotent, in either order', () => {
  const ctx = memContext();
  const s1 = ctx.session('t1', 'u1');
  const s2 = ctx.session('t1', 'u2');
  assert.equal(ctx.closed, false);
  assert.equal(s1.closed, false);
  s1.close();
  s1.close();
  ctx.close();
  ctx.close();
  s2.close();
  s2.close();
  ctx.close();
  assert.equal(ctx.closed, true);
  assert.equal(s1.closed, true);
  assert.equal(s2.closed, true);
});

test('garbage collection runs the finalisers (child process, --expose-gc)', () => {
  const db = path.join(dir, 'gc.db');
  const script = `
    'use strict';
    const fs = require('node:fs');
    const integ = require(${JSON.stringify(INDEX)});
    const db = ${JSON.stringify(db)};
    const key = integ.generateMasterKey();
    const openFds = () => fs.readdirSync('/proc/self/fd').filter((fd) => {
      try { return fs.readlinkSync('/proc/self/fd/' + fd).startsWith(db); } catch { return false; }
    }).length;
    const settle = () => new Promise((resolve) => setImmediate(resolve));
    async function collect() {
      for (let i = 0; i < 10; i++) { global.gc(); await settle(); }
    }
    (async () => {
      (() => {
        // Dropped without close: contexts, sessions, both orders of death.
        for (let i = 0; i < 20; i++) {
          const ctx = new integ.Context({ store: 'sqlite:' + db, master_key: key });
          const s = ctx.session('t' + i, 'u', ['admin']);
          ctx.setPermissionCallback(i % 2 ? () => true : null);
          if (i === 0) s.createIntegration(${JSON.stringify(REQUEST)});
          if (i % 3 === 0) ctx.close();       // closed ctx, live session
          if (i % 3 === 1) s.close();         // closed session, live ctx
        }
        // Sessions whose Context is only reachable through them.
        globalThis.keep = Array.from({ length: 5 }, (_, i) =>
          new integ.Context({ store: 'sqlite:' + db, master_key: key }).session('k' + i, 'u'));
      })();
      if (openFds() === 0) throw new Error('expected open store files before gc');
      // The Contexts behind live sessions must not be finalised.
      await collect();
      // (In a plain function: a suspended async frame could keep the
      // loop's iterator, and so the sessions, alive.)
      (() => {
        for (const s of globalThis.keep) {
          if (s.integrations().length !== 0) throw new Error('session lost its context');
          if (s.context.closed) throw new Error('context closed under a live session');
        }
      })();
      globalThis.keep = null;
      await collect();
      const left = openFds();
      if (left !== 0) throw new Error(left + ' store files still open after gc');
      // A pending async call keeps its Context alive through gc.
      const p = (() => new integ.Context({ store: 'sqlite:' + db, master_key: key })
        .rotateMasterKey(integ.generateMasterKey()))();
      await collect();
      await p;
      await collect();
      if (openFds() !== 0) throw new Error('store files open after the async call');
      console.log('gc ok');
    })().catch((err) => { console.error(err); process.exit(1); });
  `;
  const r = spawnSync(process.execPath, ['--expose-gc', '-e', script], {
    encoding: 'utf8', timeout: 60000,
  });
  assert.equal(r.status, 0, `child failed (signal ${r.signal}):\n${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /gc ok/);
});

test('two worker threads, each with its own Context on one file', async () => {
  const db = path.join(dir, 'workers.db');
  const key = integ.generateMasterKey();
  const PER_WORKER = 25;
  // Create the schema once so the workers race only on data.
  new integ.Context({ store: `sqlite:${db}`, master_key: key }).close();

  const code = `
    'use strict';
    const { parentPort, workerData } = require('node:worker_threads');
    const integ = require(workerData.index);
    (async () => {
      const ctx = workerData.async
        ? await integ.Context.open({ store: 'sqlite:' + workerData.db, master_key: workerData.key })
        : new integ.Context({ store: 'sqlite:' + workerData.db, master_key: workerData.key });
      const s = ctx.session(workerData.tenant, 'worker', ['admin']);
      const ids = [];
      for (let i = 0; i < workerData.n; i++) {
        ids.push(s.createIntegration({ ...workerData.request, name: 'HubSpot ' + i }).id);
        s.integrations({ limit: 5 });
      }
      for (const id of ids.slice(0, 5)) s.updateIntegration(id, { status: 'paused' });
      const count = s.integrations().length;
      const paused = s.integrations({ status: 'paused' }).length;
      s.close();
      ctx.close();
      parentPort.postMessage({ count, paused, version: integ.version() });
    })().catch((err) => parentPort.postMessage({ error: String(err && err.stack || err), code: err && err.code }));
  `;
  const run = (tenant, asyncOpen) => new Promise((resolve, reject) => {
    const w = new Worker(code, {
      eval: true,
      workerData: { index: INDEX, db, key, tenant, n: PER_WORKER, request: REQUEST, async: asyncOpen },
    });
    let msg;
    w.on('message', (m) => { msg = m; });
    w.on('error', reject);
    w.on('exit', (exitCode) => (exitCode === 0 ? resolve(msg) : reject(new Error(`worker exit ${exitCode}`))));
  });

  const results = await Promise.all([run('tenant-w1', false), run('tenant-w2', true)]);
  for (const r of results) {
    assert.equal(r.error, undefined, r.error);
    assert.deepEqual(r, { count: PER_WORKER, paused: 5, version: integ.version() });
  }

  const ctx = new integ.Context({ store: `sqlite:${db}`, master_key: key });
  for (const tenant of ['tenant-w1', 'tenant-w2']) {
    const s = ctx.session(tenant, 'checker');
    assert.equal(s.integrations().length, PER_WORKER);
    assert.equal(s.audit({ action: 'integration.create' }).length, PER_WORKER);
    assert.equal(s.audit({ action: 'integration.update' }).length, 5);
    s.close();
  }
  ctx.close();
});

test('a worker that exits without closing anything tears down cleanly', async () => {
  const code = `
    const integ = require(${JSON.stringify(INDEX)});
    const ctx = new integ.Context({ store: 'sqlite::memory:', master_key: integ.generateMasterKey() });
    const s = ctx.session('t', 'u', ['admin']);
    ctx.setPermissionCallback(() => true);
    s.createIntegration(${JSON.stringify(REQUEST)});
    ctx.rotateMasterKey(integ.generateMasterKey()); // left in flight
  `;
  const exitCode = await new Promise((resolve, reject) => {
    const w = new Worker(code, { eval: true });
    w.on('error', reject);
    w.on('exit', resolve);
  });
  assert.equal(exitCode, 0);
});

// Pull sync, baseline (b): what a user would write in Node instead of the
// library — fetch (Node's built-in, keep-alive) + better-sqlite3 12, the
// same pages (HubSpot contacts, 100 per page, the ten properties), the same
// 10-field mapping, one transaction per page, WAL + synchronous=NORMAL.
//
//   node bench/pull_node.mjs SANDBOX_URL N MAPPING10_JSON DIR
// Output: pull_node records=N seconds=.. records_per_s=.. peak_rss_kib=..
import { createRequire } from 'node:module';
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, 'node', 'package.json'));
const Database = require('better-sqlite3');

const [base, nArg, mappingFile, dir] = process.argv.slice(2);
const n = Number(nArg);
const m10 = JSON.parse(readFileSync(mappingFile, 'utf8'));
const fields = Object.entries(m10.field_map).map(([to, from]) => [to, from.split('.')]);
const dbPath = path.join(dir, `bench-node-${process.pid}.db`);

const db = new Database(dbPath);
db.pragma('journal_mode = WAL');
db.pragma('synchronous = NORMAL');
db.exec('CREATE TABLE contacts (external_id TEXT PRIMARY KEY NOT NULL, data TEXT NOT NULL, remote_updated_at TEXT)');
const upsert = db.prepare(
  'INSERT INTO contacts VALUES (?,?,?) ON CONFLICT(external_id) DO UPDATE SET data=excluded.data, remote_updated_at=excluded.remote_updated_at');
const writePage = db.transaction((rows) => {
  for (const r of rows) upsert.run(r.id, JSON.stringify(r.data), r.updatedAt);
});

function map(rec) {
  const out = {};
  for (const [to, from] of fields) {
    let v = rec;
    for (const k of from) v = v?.[k];
    if (v !== undefined) out[to] = v;
  }
  return { id: rec.id, updatedAt: rec.updatedAt, data: out };
}

const headers = { authorization: 'Bearer bench-token', accept: 'application/json' };
let after = null;
let got = 0;
const t0 = process.hrtime.bigint();
for (;;) {
  const url = `${base}/hubspot/crm/v3/objects/contacts?limit=100&properties=${m10.properties}&archived=false` +
    (after ? `&after=${after}` : '');
  const res = await fetch(url, { headers });
  if (res.status !== 200) throw new Error(`GET ${url}: ${res.status}`);
  const page = await res.json();
  writePage(page.results.map(map));
  got += page.results.length;
  after = page.paging?.next?.after;
  if (!after) break;
}
const secs = Number(process.hrtime.bigint() - t0) / 1e9;
db.close();
for (const s of ['', '-wal', '-shm']) rmSync(dbPath + s, { force: true });
console.log(`pull_node records=${got} seconds=${secs.toFixed(3)} records_per_s=${(got / secs).toFixed(0)} ` +
  `peak_rss_kib=${process.resourceUsage().maxRSS}`);
process.exit(got === n ? 0 : 1);

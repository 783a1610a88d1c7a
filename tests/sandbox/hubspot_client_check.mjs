// Fidelity check: HubSpot's official Node client (@hubspot/api-client) pages
// through the sandbox's HubSpot emulation and must get every record, so the
// sandbox's shapes, cursors and error bodies are what real clients expect.
//
//   node hubspot_client_check.mjs PATH/TO/sandbox
//
// The client is looked up in tests/oracles/node_modules (or in the
// node_modules under $HUBSPOT_CLIENT_DIR). Exit 0 on success, 1 on failure,
// 77 (skip) when the package is not installed.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import assert from "node:assert/strict";

const here = dirname(fileURLToPath(import.meta.url));
const roots = [process.env.HUBSPOT_CLIENT_DIR, join(here, "..", "oracles")].filter(Boolean);
let hubspot, clientVersion;
for (const root of roots) {
  if (!existsSync(join(root, "node_modules", "@hubspot", "api-client"))) continue;
  const require = createRequire(join(root, "package.json"));
  hubspot = require("@hubspot/api-client");
  clientVersion = require("@hubspot/api-client/package.json").version;
  break;
}
if (!hubspot) {
  console.log("SKIP: run `npm ci` in tests/oracles to install @hubspot/api-client");
  process.exit(77);
}

const exe = process.argv[2];
if (!exe) {
  console.error("usage: node hubspot_client_check.mjs SANDBOX_EXECUTABLE");
  process.exit(2);
}
const TOKEN = "client-check-token";
const CONTACTS = 537, COMPANIES = 120, DEALS = 75;
setTimeout(() => {
  console.error("FAIL: watchdog expired");
  process.exit(1);
}, 100_000).unref();

const proc = spawn(exe, ["--port", "0", "--token", TOKEN, "--stdin-lifetime", "--max-seconds", "110",
  "--records", `hubspot:contacts=${CONTACTS},hubspot:companies=${COMPANIES},hubspot:deals=${DEALS}`],
  { stdio: ["pipe", "pipe", "inherit"] });
const base = await new Promise((resolve, reject) => {
  let buf = "";
  proc.stdout.on("data", (d) => {
    buf += d;
    const m = /^listening on (http:\/\/127\.0\.0\.1:\d+)\n/.exec(buf);
    if (m) resolve(m[1]);
  });
  proc.on("exit", (code) => reject(new Error(`sandbox exited with ${code}`)));
});

const control = (what, body) =>
  fetch(`${base}/_sandbox/${what}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });

function client(retries = 0) {
  return new hubspot.Client({ accessToken: TOKEN, basePath: `${base}/hubspot`, numberOfApiCallRetries: retries });
}

function checkAll(records, n, firstId, what) {
  const ids = records.map((r) => Number(r.id));
  assert.equal(ids.length, n, `${what}: count`);
  assert.equal(new Set(ids).size, n, `${what}: unique`);
  for (let i = 0; i < n; i++) assert.equal(ids[i], firstId + i, `${what}: id ${i}`);
  for (const r of records) {
    // The client deserialises dates: a bad format would give Invalid Date.
    assert.ok(r.updatedAt instanceof Date && !Number.isNaN(r.updatedAt.getTime()), `${what}: updatedAt`);
    assert.ok(r.createdAt <= r.updatedAt, `${what}: createdAt <= updatedAt`);
  }
}

async function main() {
  const hs = client();

  // 1. basicApi.getPage with after cursors, by hand.
  const pages = [];
  let after;
  for (let p = 0; p < 100; p++) {
    const page = await hs.crm.contacts.basicApi.getPage(100, after, ["email", "firstname", "lastmodifieddate"]);
    pages.push(...page.results);
    after = page.paging?.next?.after;
    if (!after) break;
  }
  checkAll(pages, CONTACTS, 1001, "contacts.getPage");
  assert.ok(pages.every((c) => c.properties.email && c.properties.lastmodifieddate), "requested properties");

  // 2. getAll (the client's own paging loop) for every object type.
  checkAll(await hs.crm.contacts.getAll(100), CONTACTS, 1001, "contacts.getAll");
  checkAll(await hs.crm.companies.getAll(100, undefined, ["name", "domain"]), COMPANIES, 20000001, "companies.getAll");
  checkAll(await hs.crm.deals.getAll(50, undefined, ["dealname", "amount"]), DEALS, 30000001, "deals.getAll");

  // 3. getById.
  const one = await hs.crm.contacts.basicApi.getById("1010", ["email"]);
  assert.equal(one.id, "1010");
  assert.equal(one.properties.email, pages[9].properties.email);

  // 4. searchApi.doSearch: GTE on lastmodifieddate, ascending, to the end.
  const since = pages[200].updatedAt.toISOString();
  const found = [];
  let total, cursor;
  for (let p = 0; p < 50; p++) {
    const res = await hs.crm.contacts.searchApi.doSearch({
      filterGroups: [{ filters: [{ propertyName: "lastmodifieddate", operator: "GTE", value: since }] }],
      sorts: ["lastmodifieddate"],
      properties: ["email", "lastmodifieddate"],
      limit: 200,
      after: cursor,
    });
    total = res.total;
    found.push(...res.results);
    cursor = res.paging?.next?.after;
    if (!cursor) break;
  }
  assert.equal(total, CONTACTS - 200, "search total");
  checkAll(found, CONTACTS - 200, 1201, "contacts.search");

  // 5. Errors reach the client as the real API's would.
  try {
    await new hubspot.Client({ accessToken: "wrong", basePath: `${base}/hubspot` }).crm.contacts.basicApi.getPage(10);
    assert.fail("a wrong token must fail");
  } catch (e) {
    assert.equal(e.code, 401, String(e));
    assert.equal(e.body.category, "INVALID_AUTHENTICATION");
  }
  try {
    await hs.crm.contacts.basicApi.getById("99999999");
    assert.fail("a missing id must fail");
  } catch (e) {
    assert.equal(e.code, 404, String(e));
  }

  // 6. The client's retries ride over injected 5xx and search 429s.
  assert.equal((await control("config", { faults: { error_every: 3 } })).status, 200);
  checkAll(await client(3).crm.contacts.getAll(100), CONTACTS, 1001, "getAll with 5xx retries");
  assert.equal((await control("config", { faults: { rate_limit_every: 2 } })).status, 200);
  const res = await client(3).crm.deals.searchApi.doSearch({ limit: 100 });
  assert.equal(res.total, DEALS, "search after a 429 retry");
  await control("config", { faults: {} });
}

try {
  await main();
  console.log(`ok: @hubspot/api-client ${clientVersion} read every record`);
  proc.stdin.end();
  process.exitCode = 0;
} catch (e) {
  console.error("FAIL:", e && e.stack ? e.stack : e);
  proc.kill("SIGKILL");
  process.exitCode = 1;
}

// End-to-end test of tools/sandbox: pages every entity of the four systems
// to the end, checks counts, uniqueness and ordering, incremental filters,
// the control API, every fault mode, auth failures and the lifetime rules.
//
//   node sandbox_test.mjs PATH/TO/sandbox
//
// Uses only Node's built-in fetch. Every loop is bounded; the whole run is
// killed after four minutes. Exit 0 on success, 1 on the first failure.
import { spawn } from "node:child_process";
import assert from "node:assert/strict";

const exe = process.argv[2];
if (!exe) {
  console.error("usage: node sandbox_test.mjs SANDBOX_EXECUTABLE");
  process.exit(2);
}
const TOKEN = "test-token-123";
const watchdog = setTimeout(() => {
  console.error("FAIL: watchdog expired");
  process.exit(1);
}, 240_000);
watchdog.unref();

const running = new Set();

function start(args = [], { stdinLifetime = true } = {}) {
  const argv = ["--port", "0", "--token", TOKEN, "--max-seconds", "200", ...args];
  if (stdinLifetime) argv.push("--stdin-lifetime");
  const proc = spawn(exe, argv, { stdio: ["pipe", "pipe", "inherit"] });
  running.add(proc);
  proc.on("exit", () => running.delete(proc));
  return new Promise((resolve, reject) => {
    let buf = "";
    const timer = setTimeout(() => reject(new Error("no port line within 10 s")), 10_000);
    proc.stdout.on("data", (d) => {
      buf += d;
      const nl = buf.indexOf("\n");
      if (nl >= 0) {
        clearTimeout(timer);
        const line = buf.slice(0, nl);
        const m = /^listening on (http:\/\/127\.0\.0\.1:(\d+))$/.exec(line);
        if (!m) return reject(new Error(`bad first line: ${line}`));
        resolve({ proc, base: m[1], port: Number(m[2]) });
      }
    });
    proc.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`sandbox exited early with ${code}`));
    });
  });
}

function waitExit(proc, ms = 5000) {
  if (proc.exitCode !== null || proc.signalCode !== null)
    return Promise.resolve({ code: proc.exitCode, signal: proc.signalCode });
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error("sandbox did not exit")), ms);
    proc.on("exit", (code, signal) => {
      clearTimeout(t);
      resolve({ code, signal });
    });
  });
}

async function stop(sb) {
  sb.proc.kill("SIGTERM");
  const { code } = await waitExit(sb.proc);
  assert.equal(code, 0, "sandbox exits 0 on SIGTERM");
}

async function req(url, { method = "GET", headers = {}, body } = {}) {
  const res = await fetch(url, {
    method,
    headers: body !== undefined ? { "content-type": "application/json", ...headers } : headers,
    body: body !== undefined ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  let json;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

const HS = { authorization: `Bearer ${TOKEN}` };
const SH = { "x-shopify-access-token": TOKEN };
const PD = { "x-api-token": TOKEN };
const DY = { authorization: `Bearer ${TOKEN}`, "odata-version": "4.0", accept: "application/json" };

let checks = 0;
function ok(cond, msg) {
  assert.ok(cond, msg);
  checks++;
}

function uniqueAscending(ids, msg) {
  ok(new Set(ids).size === ids.length, `${msg}: ids unique`);
  for (let i = 1; i < ids.length; i++)
    if (!(ids[i - 1] < ids[i])) assert.fail(`${msg}: ids not ascending at ${i}: ${ids[i - 1]} ${ids[i]}`);
}

function nonDecreasing(times, msg) {
  for (let i = 1; i < times.length; i++)
    if (times[i - 1] > times[i]) assert.fail(`${msg}: not ordered at ${i}: ${times[i - 1]} > ${times[i]}`);
  checks++;
}

// ---- pagers: each follows the provider's own "next" signal ----------------

async function hubspotList(base, type, { limit = 100, properties, archived } = {}, maxPages = 1000) {
  const out = [];
  let after;
  for (let p = 0; p < maxPages; p++) {
    const q = new URLSearchParams({ limit: String(limit) });
    if (properties) q.set("properties", properties);
    if (archived) q.set("archived", "true");
    if (after) q.set("after", after);
    const r = await req(`${base}/hubspot/crm/v3/objects/${type}?${q}`, { headers: HS });
    assert.equal(r.status, 200, r.text);
    out.push(...r.json.results);
    if (!r.json.paging) return out;
    after = r.json.paging.next.after;
    ok(r.json.paging.next.link.startsWith(`${base}/hubspot/crm/v3/objects/${type}?`), "paging link absolute");
  }
  assert.fail("hubspot list: too many pages");
}

async function hubspotSearch(base, type, body, maxPages = 200) {
  const out = [];
  let after, total;
  for (let p = 0; p < maxPages; p++) {
    const r = await req(`${base}/hubspot/crm/v3/objects/${type}/search`, {
      method: "POST",
      headers: HS,
      body: after === undefined ? body : { ...body, after },
    });
    if (r.status !== 200) return { out, total, error: r };
    total = r.json.total;
    out.push(...r.json.results);
    if (!r.json.paging) return { out, total };
    after = r.json.paging.next.after;
  }
  assert.fail("hubspot search: too many pages");
}

function nextLink(link) {
  if (!link) return null;
  for (const part of link.split(",")) {
    const m = /<([^>]+)>;\s*rel="next"/.exec(part);
    if (m) return m[1];
  }
  return null;
}

function prevLink(link) {
  if (!link) return null;
  const m = /<([^>]+)>;\s*rel="previous"/.exec(link);
  return m ? m[1] : null;
}

async function shopifyList(base, res, query, maxPages = 1000) {
  const out = [];
  let url = `${base}/shopify/admin/api/2025-01/${res}.json?${new URLSearchParams(query)}`;
  for (let p = 0; p < maxPages; p++) {
    const r = await req(url, { headers: SH });
    assert.equal(r.status, 200, r.text);
    ok(/^\d+\/40$/.test(r.headers.get("x-shopify-shop-api-call-limit")), "call limit header");
    out.push(...r.json[res]);
    url = nextLink(r.headers.get("link"));
    if (!url) return out;
    ok(url.startsWith(`${base}/shopify/admin/api/2025-01/${res}.json?`), "Link absolute");
  }
  assert.fail("shopify: too many pages");
}

async function pipedriveList(base, ent, query, maxPages = 1000) {
  const out = [];
  let cursor;
  for (let p = 0; p < maxPages; p++) {
    const q = new URLSearchParams(query);
    if (cursor) q.set("cursor", cursor);
    const r = await req(`${base}/pipedrive/api/v2/${ent}?${q}`, { headers: PD });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.success, true);
    out.push(...r.json.data);
    cursor = r.json.additional_data.next_cursor;
    if (cursor === null) return out;
    ok(typeof cursor === "string" && cursor.length > 0, "next_cursor string");
  }
  assert.fail("pipedrive: too many pages");
}

async function dynamicsList(base, set, query, pageSize, maxPages = 1000) {
  const out = [];
  let url = `${base}/dynamics/api/data/v9.2/${set}` + (query ? `?${query}` : "");
  const headers = { ...DY };
  if (pageSize) headers.prefer = `odata.maxpagesize=${pageSize}`;
  for (let p = 0; p < maxPages; p++) {
    const r = await req(url, { headers });
    assert.equal(r.status, 200, r.text);
    if (pageSize) assert.equal(r.headers.get("preference-applied"), `odata.maxpagesize=${pageSize}`);
    ok(r.json["@odata.context"].startsWith(`${base}/dynamics/api/data/v9.2/$metadata#${set}`), "odata.context");
    out.push(...r.json.value);
    url = r.json["@odata.nextLink"];
    if (!url) return out;
    ok(url.startsWith(`${base}/dynamics/api/data/v9.2/${set}?`) && url.includes("$skiptoken="), "nextLink");
  }
  assert.fail("dynamics: too many pages");
}

const ctl = (base, what, body) =>
  req(`${base}/_sandbox/${what}`, body === undefined ? {} : { method: "POST", body });

// ---- the tests --------------------------------------------------------------

const N = 237; // not a multiple of any page size

async function testPaging(base) {
  for (const type of ["contacts", "companies", "deals"]) {
    const all = await hubspotList(base, type);
    ok(all.length === N, `hubspot ${type}: ${all.length} records`);
    uniqueAscending(all.map((r) => BigInt(r.id)), `hubspot ${type}`);
    for (const r of all) {
      ok(typeof r.id === "string" && r.archived === false && r.createdAt <= r.updatedAt, "hubspot shape");
      assert.match(r.updatedAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      assert.equal(r.properties.hs_object_id, r.id);
    }
    const big = await req(`${base}/hubspot/crm/v3/objects/${type}?limit=1000`, { headers: HS });
    ok(big.json.results.length === 100, "hubspot list limit capped at 100");
  }
  const c = await hubspotList(base, "contacts", { limit: 50, properties: "email,phone,company" });
  ok(c.length === N, "hubspot with properties");
  const keys = Object.keys(c[0].properties).sort().join(",");
  ok(keys === "company,createdate,email,hs_object_id,lastmodifieddate,phone", `requested properties: ${keys}`);
  const one = await req(`${base}/hubspot/crm/v3/objects/contacts/${c[7].id}?properties=email`, { headers: HS });
  ok(one.status === 200 && one.json.properties.email === c[7].properties.email, "hubspot get by id");
  const missing = await req(`${base}/hubspot/crm/v3/objects/contacts/99999999`, { headers: HS });
  ok(missing.status === 404 && missing.json.category === "OBJECT_NOT_FOUND", "hubspot 404");
  const badType = await req(`${base}/hubspot/crm/v3/objects/widgets`, { headers: HS });
  ok(badType.status === 400, "hubspot unknown object type");

  for (const res of ["customers", "products"]) {
    const all = await shopifyList(base, res, { limit: "50" });
    ok(all.length === N, `shopify ${res}: ${all.length}`);
    uniqueAscending(all.map((r) => r.id), `shopify ${res}`);
    for (const r of all) assert.match(r.updated_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d-04:00$/);
  }
  const orders = await shopifyList(base, "orders", { limit: "250", status: "any" });
  ok(orders.length === N, "shopify orders status=any");
  uniqueAscending(orders.map((r) => r.id), "shopify orders");
  const open = await shopifyList(base, "orders", { limit: "40" });
  const openCount = await req(`${base}/shopify/admin/api/2025-01/orders/count.json`, { headers: SH });
  ok(open.length < N && open.length > N / 2 && open.length === openCount.json.count, "default status=open");
  ok(open.every((o) => o.closed_at === null && o.cancelled_at === null), "open orders only");
  const anyCount = await req(`${base}/shopify/admin/api/2025-01/orders/count.json?status=any`, { headers: SH });
  ok(anyCount.json.count === N, "count.json status=any");

  // previous links walk back to the same pages
  const p1 = await req(`${base}/shopify/admin/api/2024-10/customers.json?limit=30`, { headers: SH });
  ok(prevLink(p1.headers.get("link")) === null, "no previous on the first page");
  const p2 = await req(nextLink(p1.headers.get("link")), { headers: SH });
  const back = await req(prevLink(p2.headers.get("link")), { headers: SH });
  assert.deepEqual(back.json.customers.map((c) => c.id), p1.json.customers.map((c) => c.id));
  checks++;
  const fields = await req(`${base}/shopify/admin/api/2025-01/customers.json?limit=3&fields=id,email`, { headers: SH });
  ok(Object.keys(fields.json.customers[0]).join(",") === "id,email", "shopify fields=");
  const withFilter = nextLink(p1.headers.get("link")) + "&updated_at_min=2024-01-01T00:00:00Z";
  const bad = await req(withFilter, { headers: SH });
  ok(bad.status === 400 && /updated_at_min cannot be passed when page_info is present/.test(bad.json.errors),
     "page_info plus a filter is a 400");
  const single = await req(`${base}/shopify/admin/api/2025-01/orders/${orders[3].id}.json`, { headers: SH });
  ok(single.json.order.id === orders[3].id, "shopify get by id");
  const shop = await req(`${base}/shopify/admin/api/2025-01/shop.json`, { headers: SH });
  ok(shop.status === 200 && shop.json.shop.myshopify_domain, "shop.json");
  const badVer = await req(`${base}/shopify/admin/api/latest/customers.json`, { headers: SH });
  ok(badVer.status === 404, "api version must be YYYY-MM");

  for (const ent of ["persons", "organizations", "deals"]) {
    const byId = await pipedriveList(base, ent, { limit: "100" });
    ok(byId.length === N, `pipedrive ${ent}: ${byId.length}`);
    uniqueAscending(byId.map((r) => r.id), `pipedrive ${ent}`);
    const byTime = await pipedriveList(base, ent, { limit: "64", sort_by: "update_time", sort_direction: "asc" });
    ok(byTime.length === N, `pipedrive ${ent} by update_time`);
    nonDecreasing(byTime.map((r) => r.update_time), `pipedrive ${ent}`);
    const desc = await pipedriveList(base, ent, { limit: "100", sort_by: "update_time", sort_direction: "desc" });
    assert.deepEqual(desc.map((r) => r.id), byTime.map((r) => r.id).reverse());
    checks++;
  }
  const person = await req(`${base}/pipedrive/api/v2/persons/5`, { headers: PD });
  ok(person.json.data.id === 5 && person.json.data.emails[0].primary === true, "pipedrive get by id");

  for (const set of ["accounts", "contacts", "salesorders"]) {
    const all = await dynamicsList(base, set, "", 100);
    ok(all.length === N, `dynamics ${set}: ${all.length}`);
    const pk = set.slice(0, -1) + "id";
    ok(new Set(all.map((r) => r[pk])).size === N, `dynamics ${set} unique ids`);
    for (const r of all) assert.match(r[pk], /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    const ordered = await dynamicsList(base, set, "$orderby=modifiedon%20asc&$select=modifiedon", 33);
    ok(ordered.length === N, `dynamics ${set} ordered`);
    nonDecreasing(ordered.map((r) => r.modifiedon), `dynamics ${set}`);
    ok(Object.keys(ordered[0]).sort().join(",") === ["@odata.etag", "modifiedon", pk].sort().join(","),
       "$select keeps etag and primary key");
    const defaultPage = await dynamicsList(base, set, "", 0);
    ok(defaultPage.length === N, "dynamics default page size");
  }
  const acc = await dynamicsList(base, "accounts", "$top=1", 0);
  const oneAcc = await req(`${base}/dynamics/api/data/v9.2/accounts(${acc[0].accountid})?$select=name`, { headers: DY });
  ok(oneAcc.status === 200 && oneAcc.json.accountid === acc[0].accountid && oneAcc.json.name, "dynamics get by key");
  const skip = await req(`${base}/dynamics/api/data/v9.2/accounts?$skip=10`, { headers: DY });
  ok(skip.status === 400 && skip.json.error.message, "$skip is not supported");
  const badSel = await req(`${base}/dynamics/api/data/v9.2/accounts?$select=nosuchcolumn`, { headers: DY });
  ok(badSel.status === 400 && /Could not find a property named 'nosuchcolumn'/.test(badSel.json.error.message),
     "unknown $select column");
  const cnt = await req(`${base}/dynamics/api/data/v9.2/contacts?$count=true&$top=2`, { headers: DY });
  ok(cnt.json["@odata.count"] === N && cnt.json.value.length === 2 && !cnt.json["@odata.nextLink"], "$count/$top");
  const who = await req(`${base}/dynamics/api/data/v9.2/WhoAmI`, { headers: DY });
  ok(who.status === 200 && who.json.UserId, "WhoAmI");
}

async function testIncremental(base) {
  // HubSpot search with GTE on the date property.
  const all = await hubspotList(base, "contacts");
  const sorted = all.map((r) => r.updatedAt).sort();
  const since = sorted[100];
  const expect = all.filter((r) => r.updatedAt >= since).length;
  const body = {
    filterGroups: [{ filters: [{ propertyName: "lastmodifieddate", operator: "GTE", value: since }] }],
    sorts: [{ propertyName: "lastmodifieddate", direction: "ASCENDING" }],
    properties: ["email", "lastmodifieddate"],
    limit: 40,
  };
  const s = await hubspotSearch(base, "contacts", body);
  ok(!s.error && s.out.length === expect && s.total === expect, `search GTE: ${s.out.length}/${expect}`);
  nonDecreasing(s.out.map((r) => r.updatedAt), "search order");
  ok(s.out.every((r) => r.updatedAt >= since), "search filter");
  const gt = await hubspotSearch(base, "contacts", {
    ...body, filterGroups: [{ filters: [{ propertyName: "lastmodifieddate", operator: "GT", value: since }] }],
  });
  ok(gt.out.length === expect - 1, "search GT");
  const ms = String(Date.parse(since));
  const lt = await hubspotSearch(base, "contacts", {
    ...body, filterGroups: [{ filters: [{ propertyName: "lastmodifieddate", operator: "LT", value: ms }] }],
  });
  ok(lt.out.length === N - expect, "search LT with epoch milliseconds");
  const eq = await hubspotSearch(base, "contacts", {
    ...body, filterGroups: [{ filters: [{ propertyName: "lastmodifieddate", operator: "EQ", value: since }] }],
  });
  ok(eq.out.length === 1, "search EQ");
  const desc = await hubspotSearch(base, "companies", { sorts: [{ propertyName: "hs_lastmodifieddate", direction: "DESCENDING" }], limit: 200 });
  ok(desc.out.length === N, "search without filter returns all");
  nonDecreasing(desc.out.map((r) => r.updatedAt).reverse(), "search descending");
  const unsupported = await hubspotSearch(base, "contacts", {
    filterGroups: [{ filters: [{ propertyName: "email", operator: "EQ", value: "x" }] }],
  });
  ok(unsupported.error && unsupported.error.status === 400, "unsupported filter property is a 400");

  // Shopify updated_at_min (offset timestamps in the data).
  const cust = await shopifyList(base, "customers", { limit: "250" });
  const times = cust.map((c) => Date.parse(c.updated_at)).sort((a, b) => a - b);
  const min = new Date(times[60]).toISOString();
  const inc = await shopifyList(base, "customers", { limit: "25", updated_at_min: min });
  ok(inc.length === cust.filter((c) => Date.parse(c.updated_at) >= times[60]).length, "shopify updated_at_min");
  uniqueAscending(inc.map((c) => c.id), "shopify incremental");
  const max = await shopifyList(base, "customers", { limit: "25", updated_at_min: min, updated_at_max: new Date(times[100]).toISOString() });
  ok(max.length === 41, `shopify updated_at_min..max: ${max.length}`);

  // Pipedrive updated_since / updated_until.
  const persons = await pipedriveList(base, "persons", { limit: "500", sort_by: "update_time" });
  const pt = persons.map((p) => p.update_time);
  const ps = await pipedriveList(base, "persons", { limit: "30", sort_by: "update_time", updated_since: pt[150] });
  ok(ps.length === N - 150 && ps[0].update_time === pt[150], "pipedrive updated_since (inclusive)");
  const pu = await pipedriveList(base, "persons", { limit: "30", updated_until: pt[150] });
  ok(pu.length === 150, "pipedrive updated_until (exclusive)");
  const badSince = await req(`${base}/pipedrive/api/v2/persons?updated_since=yesterday`, { headers: PD });
  ok(badSince.status === 400 && badSince.json.success === false, "pipedrive bad updated_since");

  // Dataverse $filter modifiedon gt.
  const accts = await dynamicsList(base, "accounts", "$select=modifiedon&$orderby=modifiedon%20asc", 500);
  const at = accts.map((a) => a.modifiedon);
  const q = `$select=name,modifiedon&$filter=${encodeURIComponent(`modifiedon gt ${at[200]}`)}&$orderby=modifiedon asc`;
  const inc2 = await dynamicsList(base, "accounts", q, 10);
  ok(inc2.length === N - 201 && inc2[0].modifiedon === at[201], "dataverse modifiedon gt");
  const both = `$filter=${encodeURIComponent(`modifiedon ge ${at[10]} and modifiedon lt ${at[20]}`)}`;
  ok((await dynamicsList(base, "accounts", both, 3)).length === 10, "dataverse ge and lt");
  const badF = await req(`${base}/dynamics/api/data/v9.2/accounts?$filter=name%20eq%20'x'`, { headers: DY });
  ok(badF.status === 400, "dataverse unsupported filter");
}

async function testTouch(base) {
  // HubSpot: a touched record moves to "now" and carries the new fields.
  const t = await ctl(base, "touch", { system: "hubspot", entity: "contacts", index: 5, fields: { email: "new@example.com" } });
  ok(t.status === 200 && t.json.id === "1006", "touch by index");
  const since = new Date(Date.now() - 60_000).toISOString();
  const s = await hubspotSearch(base, "contacts", {
    filterGroups: [{ filters: [{ propertyName: "lastmodifieddate", operator: "GTE", value: since }] }],
    sorts: [{ propertyName: "lastmodifieddate", direction: "ASCENDING" }], limit: 10,
  });
  ok(s.out.length === 1 && s.out[0].id === "1006" && s.out[0].properties.email === "new@example.com", "touched record found by search");
  const list = await hubspotList(base, "contacts");
  ok(list.length === N && list[5].properties.email === "new@example.com", "list keeps position, shows override");

  // Archive: out of the live list, into archived=true.
  await ctl(base, "touch", { system: "hubspot", entity: "contacts", id: "1010", archived: true });
  ok((await hubspotList(base, "contacts")).length === N - 1, "archived record leaves the list");
  const arch = await hubspotList(base, "contacts", { archived: true });
  ok(arch.length === 1 && arch[0].id === "1010" && arch[0].archived === true, "archived=true lists it");

  // Dataverse: ordering by modifiedon puts the touched record last.
  const accts = await dynamicsList(base, "accounts", "$select=name", 100);
  await ctl(base, "touch", { system: "dynamics", entity: "accounts", id: accts[3].accountid, fields: { name: "Renamed AS" } });
  const ordered = await dynamicsList(base, "accounts", "$select=name,modifiedon&$orderby=modifiedon%20asc", 50);
  ok(ordered.length === N && ordered[N - 1].accountid === accts[3].accountid && ordered[N - 1].name === "Renamed AS",
     "touched account sorts last");
  // Explicit time in the middle of the range: keyset paging still sees every row once.
  await ctl(base, "touch", { system: "pipedrive", entity: "persons", index: 200, updated_at: "2024-01-01T00:30:30Z" });
  const pd = await pipedriveList(base, "persons", { limit: "7", sort_by: "update_time" });
  ok(pd.length === N && new Set(pd.map((p) => p.id)).size === N, "pipedrive keyset with a moved record");
  nonDecreasing(pd.map((p) => p.update_time), "pipedrive moved record order");
  const sh = await ctl(base, "touch", { system: "shopify", entity: "orders", index: 0, updated_at: "2030-01-01T00:00:00Z" });
  ok(sh.status === 200, "touch shopify");
  const late = await shopifyList(base, "orders", { status: "any", updated_at_min: "2029-01-01T00:00:00Z" });
  ok(late.length === 1 && late[0].updated_at === "2029-12-31T20:00:00-04:00", "shopify sees the touched order");

  const badTouch = await ctl(base, "touch", { system: "hubspot", entity: "contacts", index: N + 5 });
  ok(badTouch.status === 404, "touch out of range");
  const cfg = await ctl(base, "config");
  ok(cfg.json.overrides === 5, `overrides counted: ${cfg.json.overrides}`);
  ok((await ctl(base, "reset", {})).status === 200, "reset");
  ok((await hubspotList(base, "contacts")).length === N, "reset clears touches");
}

async function testWrites(base) {
  const since = new Date(Date.now() - 60_000).toISOString();
  // HubSpot single writes.
  const c = await req(`${base}/hubspot/crm/v3/objects/contacts`, {
    method: "POST", headers: HS, body: { properties: { email: "ann@new.example", firstname: "Ann" } },
  });
  ok(c.status === 201 && Number(c.json.id) >= 100001001 && c.json.properties.email === "ann@new.example", "hubspot create");
  ok(c.json.createdAt === c.json.updatedAt && c.json.properties.lastname === null, "created record: no made-up fields");
  const u = await req(`${base}/hubspot/crm/v3/objects/contacts/1003`, {
    method: "PATCH", headers: HS, body: { properties: { lastname: "Patched" } },
  });
  ok(u.status === 200 && u.json.properties.lastname === "Patched" && u.json.updatedAt > since, "hubspot update");
  const nf = await req(`${base}/hubspot/crm/v3/objects/contacts/99999`, { method: "PATCH", headers: HS, body: { properties: {} } });
  ok(nf.status === 404, "hubspot update of a missing id");
  let list = await hubspotList(base, "contacts");
  ok(list.length === N + 1 && list[N].id === c.json.id, "created contact listed last");
  const s = await hubspotSearch(base, "contacts", {
    filterGroups: [{ filters: [{ propertyName: "lastmodifieddate", operator: "GTE", value: since }] }],
    sorts: [{ propertyName: "lastmodifieddate", direction: "ASCENDING" }], limit: 100,
  });
  ok(s.out.map((r) => r.id).sort().join() === ["1003", c.json.id].sort().join(), "writes found incrementally");

  // HubSpot batches.
  const bc = await req(`${base}/hubspot/crm/v3/objects/companies/batch/create`, {
    method: "POST", headers: HS, body: { inputs: [1, 2, 3].map((k) => ({ properties: { name: `Batch ${k}` } })) },
  });
  ok(bc.status === 201 && bc.json.status === "COMPLETE" && bc.json.results.length === 3, "batch create");
  const bu = await req(`${base}/hubspot/crm/v3/objects/companies/batch/update`, {
    method: "POST", headers: HS,
    body: { inputs: [{ id: bc.json.results[0].id, properties: { name: "Renamed" } }, { id: "123", properties: {} }] },
  });
  ok(bu.status === 207 && bu.json.results.length === 1 && bu.json.errors[0].context.ids[0] === "123", "batch update with a missing id");
  const email = list[20].properties.email;
  const up = await req(`${base}/hubspot/crm/v3/objects/contacts/batch/upsert`, {
    method: "POST", headers: HS,
    body: { inputs: [{ idProperty: "email", id: email, properties: { phone: "1" } },
                     { idProperty: "email", id: "brand@new.example", properties: { firstname: "Brand" } }] },
  });
  ok(up.status === 200 && up.json.results[0].id === list[20].id && up.json.results[0].new === false, "upsert finds a generated e-mail");
  ok(up.json.results[1].new === true && up.json.results[1].properties.email === "brand@new.example", "upsert creates");
  const br = await req(`${base}/hubspot/crm/v3/objects/contacts/batch/read`, {
    method: "POST", headers: HS, body: { inputs: [{ id: "1001" }, { id: "1002" }], properties: ["email"] },
  });
  ok(br.status === 200 && br.json.results.length === 2 && br.json.results[1].properties.email, "batch read");
  const tooMany = await req(`${base}/hubspot/crm/v3/objects/contacts/batch/create`, {
    method: "POST", headers: HS, body: { inputs: Array.from({ length: 101 }, () => ({ properties: {} })) },
  });
  ok(tooMany.status === 400, "batch over 100 inputs");
  const del = await req(`${base}/hubspot/crm/v3/objects/contacts/1004`, { method: "DELETE", headers: HS });
  ok(del.status === 204, "hubspot archive");
  list = await hubspotList(base, "contacts");
  ok(list.length === N + 1 && !list.some((r) => r.id === "1004"), "archived contact leaves the list");
  ok((await hubspotList(base, "contacts", { archived: true })).some((r) => r.id === "1004"), "archived=true has it");

  // Shopify.
  const before = (await req(`${base}/shopify/admin/api/2025-01/customers/count.json`, { headers: SH })).json.count;
  const sc = await req(`${base}/shopify/admin/api/2025-01/customers.json`, {
    method: "POST", headers: SH, body: { customer: { email: "steve@new.example", first_name: "Steve" } },
  });
  ok(sc.status === 201 && sc.json.customer.email === "steve@new.example" && sc.json.customer.id > 7001000000000, "shopify create");
  const sp = await req(`${base}/shopify/admin/api/2025-01/customers/${sc.json.customer.id}.json`, {
    method: "PUT", headers: SH, body: { customer: { id: sc.json.customer.id, note: "VIP" } },
  });
  ok(sp.status === 200 && sp.json.customer.note === "VIP" && sp.json.customer.email === "steve@new.example", "shopify update");
  const bad = await req(`${base}/shopify/admin/api/2025-01/customers.json`, { method: "POST", headers: SH, body: { nope: {} } });
  ok(bad.status === 400 && bad.json.errors.customer, "shopify missing root key");
  const after = (await req(`${base}/shopify/admin/api/2025-01/customers/count.json`, { headers: SH })).json.count;
  ok(after === before + 1, "count.json sees the new customer");
  const so = await req(`${base}/shopify/admin/api/2025-01/orders.json`, { method: "POST", headers: SH, body: { order: { email: "o@new.example" } } });
  const open = await shopifyList(base, "orders", { limit: "250" });
  ok(open.some((o) => o.id === so.json.order.id), "a created order is open");
  const sd = await req(`${base}/shopify/admin/api/2025-01/customers/${sc.json.customer.id}.json`, { method: "DELETE", headers: SH });
  ok(sd.status === 200 && sd.text === "{}", "shopify delete");

  // Pipedrive.
  const pc = await req(`${base}/pipedrive/api/v2/persons`, {
    method: "POST", headers: PD, body: { name: "Ann Lee", emails: [{ value: "ann@example.com", primary: true, label: "work" }] },
  });
  ok(pc.status === 200 && pc.json.success && pc.json.data.name === "Ann Lee" && pc.json.data.emails[0].value === "ann@example.com", "pipedrive create");
  const pm = await req(`${base}/pipedrive/api/v2/deals`, { method: "POST", headers: PD, body: { value: 5 } });
  ok(pm.status === 400 && /title/.test(pm.json.error), "pipedrive deal needs a title");
  const pp = await req(`${base}/pipedrive/api/v2/persons/7`, { method: "PATCH", headers: PD, body: { name: "Renamed" } });
  ok(pp.status === 200 && pp.json.data.name === "Renamed" && pp.json.data.update_time > since, "pipedrive update");
  const inc = await pipedriveList(base, "persons", { updated_since: since.replace(/\.\d+Z$/, "Z"), sort_by: "update_time" });
  ok(inc.map((p) => p.id).sort().join() === [7, pc.json.data.id].sort().join(), "pipedrive writes found by updated_since");
  const pdel = await req(`${base}/pipedrive/api/v2/persons/7`, { method: "DELETE", headers: PD });
  ok(pdel.status === 200 && pdel.json.data.id === 7, "pipedrive delete");
  ok((await req(`${base}/pipedrive/api/v2/persons/7`, { headers: PD })).status === 404, "deleted person is gone");

  // Dataverse.
  const dc = await fetch(`${base}/dynamics/api/data/v9.2/accounts`, {
    method: "POST", headers: { ...DY, "content-type": "application/json" }, body: JSON.stringify({ name: "Contoso" }),
  });
  const entityId = dc.headers.get("odata-entityid");
  ok(dc.status === 204 && /\/accounts\([0-9a-f-]{36}\)$/.test(entityId), "dataverse create: 204 + OData-EntityId");
  const got = await req(entityId, { headers: DY });
  ok(got.status === 200 && got.json.name === "Contoso" && got.json.createdon === got.json.modifiedon, "GET the new row");
  const rep = await req(`${base}/dynamics/api/data/v9.2/contacts`, {
    method: "POST", headers: { ...DY, prefer: "return=representation" }, body: { firstname: "Ann", lastname: "Lee" },
  });
  ok(rep.status === 201 && rep.json.firstname === "Ann" && rep.json.contactid, "return=representation");
  const dp = await fetch(entityId, {
    method: "PATCH", headers: { ...DY, "content-type": "application/json", "if-match": "*" }, body: JSON.stringify({ telephone1: "123" }),
  });
  ok(dp.status === 204, "dataverse update");
  const after2 = await req(entityId, { headers: DY });
  ok(after2.json.telephone1 === "123" && after2.json["@odata.etag"] !== got.json["@odata.etag"], "etag changes on update");
  const dn = await req(`${base}/dynamics/api/data/v9.2/accounts(00000000-0000-4000-8000-000000000000)`, {
    method: "PATCH", headers: DY, body: { name: "x" },
  });
  ok(dn.status === 404, "dataverse PATCH of an unknown key");
  const dbad = await req(`${base}/dynamics/api/data/v9.2/accounts`, { method: "POST", headers: DY, body: { nosuch: 1 } });
  ok(dbad.status === 400, "dataverse unknown column");
  ok((await fetch(entityId, { method: "DELETE", headers: DY })).status === 204, "dataverse delete");
  ok((await req(entityId, { headers: DY })).status === 404, "deleted row is gone");

  ok((await ctl(base, "reset", {})).status === 200, "reset after writes");
  ok((await hubspotList(base, "contacts")).length === N, "reset drops created records");
}

async function testSearchCap(base) {
  await ctl(base, "config", { records: { "hubspot:contacts": 12345 } });
  const body = { sorts: [{ propertyName: "lastmodifieddate", direction: "ASCENDING" }], limit: 200, properties: ["lastmodifieddate"] };
  const s = await hubspotSearch(base, "contacts", body, 100);
  ok(s.out.length === 10000 && s.total === 12345, `search stops at 10,000 (${s.out.length})`);
  ok(s.error && s.error.status === 400 && s.error.json.category === "VALIDATION_ERROR", "after=10000 is a 400");
  // Re-anchor on the last timestamp, as the manifest says, to reach the rest.
  const seen = new Set(s.out.map((r) => r.id));
  let anchor = s.out[s.out.length - 1].updatedAt;
  for (let round = 0; round < 5; round++) {
    const more = await hubspotSearch(base, "contacts", {
      ...body, filterGroups: [{ filters: [{ propertyName: "lastmodifieddate", operator: "GTE", value: anchor }] }],
    });
    for (const r of more.out) seen.add(r.id);
    if (!more.error) break;
    anchor = more.out[more.out.length - 1].updatedAt;
  }
  ok(seen.size === 12345, `re-anchoring reaches every record (${seen.size})`);
  await ctl(base, "config", { records: { "hubspot:contacts": N } });
}

async function testAuth(base) {
  const cases = [
    [`${base}/hubspot/crm/v3/objects/contacts`, {}, (r) => r.json.category === "INVALID_AUTHENTICATION" && r.json.status === "error"],
    [`${base}/hubspot/crm/v3/objects/contacts`, { authorization: "Bearer wrong" }, (r) => r.json.category === "INVALID_AUTHENTICATION"],
    [`${base}/hubspot/crm/v3/objects/contacts`, { "x-shopify-access-token": TOKEN }, () => true],
    [`${base}/shopify/admin/api/2025-01/customers.json`, {}, (r) => /Invalid API key or access token/.test(r.json.errors)],
    [`${base}/shopify/admin/api/2025-01/customers.json`, HS, () => true],
    [`${base}/pipedrive/api/v2/persons`, {}, (r) => r.json.success === false && r.json.errorCode === 401],
    [`${base}/pipedrive/api/v2/persons?api_token=nope`, {}, (r) => r.json.success === false],
    [`${base}/dynamics/api/data/v9.2/accounts`, {}, (r) => r.text === "" && /^Bearer authorization_uri=/.test(r.headers.get("www-authenticate"))],
    [`${base}/dynamics/api/data/v9.2/accounts`, { authorization: "Basic abc" }, () => true],
  ];
  for (const [url, headers, check] of cases) {
    const r = await req(url, { headers });
    ok(r.status === 401 && check(r), `401 for ${url} ${JSON.stringify(headers)}: ${r.status} ${r.text}`);
  }
  // Pipedrive accepts the three documented forms.
  for (const [url, headers] of [
    [`${base}/pipedrive/api/v2/persons?limit=1`, PD],
    [`${base}/pipedrive/api/v2/persons?limit=1&api_token=${TOKEN}`, {}],
    [`${base}/pipedrive/api/v2/persons?limit=1`, { authorization: `Bearer ${TOKEN}` }],
  ]) {
    const r = await req(url, { headers });
    ok(r.status === 200, `pipedrive auth form ${url}`);
  }
  const oauth = await req(`${base}/pipedrive/api/v2/persons?limit=1`, { headers: { authorization: `Bearer ${TOKEN}` } });
  ok(oauth.headers.get("x-ratelimit-limit") === "80", "OAuth burst limit header");
}

const probes = (base) => [
  ["hubspot", `${base}/hubspot/crm/v3/objects/contacts?limit=2`, HS],
  ["shopify", `${base}/shopify/admin/api/2025-01/customers.json?limit=2`, SH],
  ["pipedrive", `${base}/pipedrive/api/v2/persons?limit=2`, PD],
  ["dynamics", `${base}/dynamics/api/data/v9.2/accounts?$top=2`, DY],
];

async function testFaults(base) {
  const setFaults = async (faults) => {
    const r = await ctl(base, "config", { faults });
    assert.equal(r.status, 200, r.text);
  };

  // rate_limit_every: every Nth request, with each provider's 429.
  await setFaults({ rate_limit_every: 3, retry_after: 2 });
  for (const [sys, url, headers] of probes(base)) {
    const codes = [];
    let limited;
    for (let i = 0; i < 3; i++) {
      const r = await req(url, { headers });
      codes.push(r.status);
      if (r.status === 429) limited = r;
    }
    ok(codes.join() === "200,200,429", `${sys} rate_limit_every: ${codes}`);
    const ra = limited.headers.get("retry-after");
    ok(ra === (sys === "shopify" ? "2.0" : "2"), `${sys} Retry-After ${ra}`);
    if (sys === "hubspot") ok(limited.json.errorType === "RATE_LIMIT" && limited.json.policyName === "TEN_SECONDLY_ROLLING", "hubspot 429 body");
    if (sys === "shopify") ok(/Exceeded 2 calls per second/.test(limited.json.errors), "shopify 429 body");
    if (sys === "pipedrive") ok(limited.json.success === false && limited.json.errorCode === 429, "pipedrive 429 body");
    if (sys === "dynamics") ok(limited.json.error.code === "0x80072322", "dataverse 429 body");
  }

  // error_every: alternating 500 / 503.
  await setFaults({ error_every: 2 });
  const codes = [];
  for (let i = 0; i < 8; i++) codes.push((await req(probes(base)[i % 4][1], { headers: probes(base)[i % 4][2] })).status);
  ok(codes.join() === "200,500,200,503,200,500,200,503", `error_every: ${codes}`);

  // unauthorized: everything 401, whatever the credentials.
  await setFaults({ unauthorized: 1 });
  for (const [sys, url, headers] of probes(base))
    ok((await req(url, { headers })).status === 401, `${sys} unauthorized=1`);

  // slow_ms: each response is delayed.
  await setFaults({ slow_ms: 150 });
  const t0 = Date.now();
  await req(probes(base)[0][1], { headers: HS });
  ok(Date.now() - t0 >= 140, "slow_ms delays the response");

  // truncate_every: a 200 whose body is cut (valid Content-Length, bad JSON).
  await setFaults({ truncate_every: 2 });
  for (const [sys, url, headers] of probes(base)) {
    const a = await req(url, { headers });
    const b = await req(url, { headers });
    ok(a.json !== undefined, `${sys} first body parses`);
    ok(b.status === 200 && b.json === undefined && Number(b.headers.get("content-length")) === Buffer.byteLength(b.text),
       `${sys} truncated body`);
    ok(b.text.length > 0 && a.text.startsWith(b.text.slice(0, 20)), `${sys} truncation is a prefix`);
  }

  // fail_after: N good pages, then 503 for everything until reconfigured.
  await setFaults({ fail_after: 3 });
  const seq = [];
  for (let i = 0; i < 6; i++) seq.push((await req(probes(base)[i % 4][1], { headers: probes(base)[i % 4][2] })).status);
  ok(seq.join() === "200,200,200,503,503,503", `fail_after: ${seq}`);
  const st = await ctl(base, "stats");
  ok(st.json.faults_injected.fail_after === 3, "fail_after counted in stats");

  // system= scopes faults to one provider.
  await setFaults({ unauthorized: 1, system: "shopify" });
  ok((await req(probes(base)[1][1], { headers: SH })).status === 401, "scoped fault hits shopify");
  ok((await req(probes(base)[0][1], { headers: HS })).status === 200, "scoped fault spares hubspot");

  // enforce_limits: the simulated counters become real (HubSpot: 10/s).
  await setFaults({ enforce_limits: 1 });
  const burst = [];
  for (let i = 0; i < 15; i++) burst.push((await req(probes(base)[0][1], { headers: HS })).status);
  ok(burst.includes(429), `enforce_limits produces 429s: ${burst}`);

  // The same faults from the command line, as a spec string.
  await setFaults("rate_limit_every=2,retry_after=5");
  await req(probes(base)[2][1], { headers: PD });
  const r2 = await req(probes(base)[2][1], { headers: PD });
  ok(r2.status === 429 && r2.headers.get("retry-after") === "5", "faults as a spec string");
  const badFault = await ctl(base, "config", { faults: { nonsense: 1 } });
  ok(badFault.status === 400 && /unknown fault/.test(badFault.json.error), "unknown fault rejected");
  await setFaults({});
}

async function testStats(base) {
  await ctl(base, "reset", {});
  for (let i = 0; i < 20; i++) await req(probes(base)[i % 4][1], { headers: probes(base)[i % 4][2] });
  await req(`${base}/hubspot/crm/v3/objects/contacts/1001`, { headers: HS });
  await req(`${base}/hubspot/crm/v3/objects/contacts/1002`, { headers: HS });
  const s = await ctl(base, "stats");
  ok(s.json.requests === 22, `stats requests ${s.json.requests}`);
  ok(s.json.by_path["GET /hubspot/crm/v3/objects/contacts"] === 5, "by_path list");
  ok(s.json.by_path["GET /hubspot/crm/v3/objects/contacts/{id}"] === 2, "by_path ids folded");
  ok(s.json.by_path["GET /dynamics/api/data/v9.2/accounts"] === 5, "by_path dynamics");
  ok(s.json.by_status["200"] === 22, "by_status");
  // keep-alive: fetch reuses connections, so far fewer than one per request.
  ok(s.json.connections >= 1 && s.json.connections < 60, `connections ${s.json.connections}`);
}

async function testDeterminism() {
  const a = await start(["--seed", "7", "--records", "all=20"]);
  const b = await start(["--seed", "7", "--records", "all=20"]);
  const c = await start(["--seed", "8", "--records", "all=20"]);
  try {
    const pa = await req(`${a.base}/pipedrive/api/v2/persons`, { headers: PD });
    const pb = await req(`${b.base}/pipedrive/api/v2/persons`, { headers: PD });
    const pc = await req(`${c.base}/pipedrive/api/v2/persons`, { headers: PD });
    ok(pa.text === pb.text, "same seed, same data");
    ok(pa.text !== pc.text, "other seed, other data");
    assert.deepEqual(pa.json.data.map((p) => p.id), pc.json.data.map((p) => p.id));
    checks++;
  } finally {
    await Promise.all([stop(a), stop(b), stop(c)]);
  }
}

async function testScale() {
  // A million records cost nothing up front; a page near the end is fast.
  const sb = await start(["--records", "hubspot:contacts=1000000,pipedrive:persons=1000000,dynamics:accounts=1000000"]);
  try {
    const t0 = Date.now();
    const last = await req(`${sb.base}/hubspot/crm/v3/objects/contacts?limit=100&after=${1001 + 999950}`, { headers: HS });
    ok(last.json.results.length === 50 && !last.json.paging, "hubspot tail page of 1M");
    let cursor, n = 0;
    for (let p = 0; p < 50; p++) {
      const q = new URLSearchParams({ limit: "500", sort_by: "update_time", updated_since: "2025-11-20T00:00:00Z" });
      if (cursor) q.set("cursor", cursor);
      const r = await req(`${sb.base}/pipedrive/api/v2/persons?${q}`, { headers: PD });
      n += r.json.data.length;
      cursor = r.json.additional_data.next_cursor;
      if (!cursor) break;
    }
    ok(n > 1000 && n < 12000 && !cursor, `pipedrive incremental tail of 1M: ${n}`);
    const dy = await req(`${sb.base}/dynamics/api/data/v9.2/accounts?$count=true&$top=1`, { headers: DY });
    ok(dy.json["@odata.count"] === 5000, "Dataverse caps $count at 5000");
    // 20,000 records at 100 per page over one keep-alive connection.
    let after, got = 0;
    for (let p = 0; p < 200; p++) {
      const r = await req(`${sb.base}/hubspot/crm/v3/objects/contacts?limit=100${after ? `&after=${after}` : ""}`, { headers: HS });
      got += r.json.results.length;
      after = r.json.paging.next.after;
    }
    ok(got === 20000, "20,000 records paged");
    console.log(`  scale: 200 pages of 100 + probes in ${Date.now() - t0} ms`);
  } finally {
    await stop(sb);
  }
}

async function testLifetime() {
  // --max-seconds: exits by itself.
  const a = await start(["--max-seconds", "1"], { stdinLifetime: false });
  ok((await waitExit(a.proc, 5000)).code === 0, "max-seconds exit");
  // --stdin-lifetime: exits when stdin closes.
  const b = await start([]);
  b.proc.stdin.end();
  ok((await waitExit(b.proc, 5000)).code === 0, "stdin EOF exit");
  // SIGINT too.
  const c = await start([]);
  c.proc.kill("SIGINT");
  ok((await waitExit(c.proc, 5000)).code === 0, "SIGINT exit");
  // Bad arguments: exit 2 before listening.
  for (const args of [["--records", "hubspot:widgets=5"], ["--faults", "explode=1"], ["--port", "x"]]) {
    const p = spawn(exe, args, { stdio: ["ignore", "pipe", "ignore"] });
    const { code } = await waitExit(p);
    ok(code === 2, `bad args ${args.join(" ")} exit 2`);
  }
}

async function main() {
  const sb = await start(["--records", `all=${N}`]);
  try {
    const steps = [
      ["paging", testPaging], ["incremental", testIncremental], ["touch", testTouch],
      ["writes", testWrites], ["search cap", testSearchCap], ["auth", testAuth], ["faults", testFaults], ["stats", testStats],
    ];
    for (const [name, fn] of steps) {
      const t0 = Date.now();
      await fn(sb.base);
      console.log(`ok ${name} (${Date.now() - t0} ms)`);
    }
  } finally {
    await stop(sb);
  }
  for (const [name, fn] of [["determinism", testDeterminism], ["scale", testScale], ["lifetime", testLifetime]]) {
    const t0 = Date.now();
    await fn();
    console.log(`ok ${name} (${Date.now() - t0} ms)`);
  }
  console.log(`all ${checks} checks passed`);
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error("FAIL:", e && e.stack ? e.stack : e);
    for (const p of running) p.kill("SIGKILL");
    process.exit(1);
  },
);

// Contract check between adapters/*.json and the sandbox: for the four
// emulated systems, every entity is listed exactly as its manifest says
// (base URL with the host swapped for the sandbox, auth "apply", headers,
// list query, pagination type, records_path, id/updated fields, field_map
// paths), then pulled incrementally the manifest's way, and test_request is
// sent. A manifest change the sandbox cannot serve fails here.
//
//   node manifest_check.mjs PATH/TO/sandbox [PATH/TO/adapters]
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import assert from "node:assert/strict";

const exe = process.argv[2];
const adapters = process.argv[3] || join(dirname(fileURLToPath(import.meta.url)), "..", "..", "adapters");
if (!exe) {
  console.error("usage: node manifest_check.mjs SANDBOX_EXECUTABLE [ADAPTERS_DIR]");
  process.exit(2);
}
const TOKEN = "manifest-check-token";
const N = 613; // more than one page of every manifest's page size
setTimeout(() => {
  console.error("FAIL: watchdog expired");
  process.exit(1);
}, 100_000).unref();

const SYSTEMS = {
  "hubspot-crm": "hubspot",
  "shopify-ecommerce": "shopify",
  "pipedrive-crm": "pipedrive",
  "dynamics-erp": "dynamics",
};

const proc = spawn(exe, ["--port", "0", "--token", TOKEN, "--stdin-lifetime", "--max-seconds", "110",
  "--records", `all=${N}`], { stdio: ["pipe", "pipe", "inherit"] });
const base = await new Promise((resolve, reject) => {
  let buf = "";
  proc.stdout.on("data", (d) => {
    buf += d;
    const m = /^listening on (http:\/\/127\.0\.0\.1:\d+)\n/.exec(buf);
    if (m) resolve(m[1]);
  });
  proc.on("exit", (code) => reject(new Error(`sandbox exited with ${code}`)));
});

// "$.results", "$['@odata.nextLink']", "$.additional_data.next_cursor"
function jsonPath(obj, path) {
  const parts = [];
  const re = /\.([A-Za-z0-9_@.-]+?)(?=\.|\[|$)|\['([^']+)'\]|\[(\d+)\]/g;
  let m;
  const rest = path.replace(/^\$/, "");
  while ((m = re.exec(rest))) parts.push(m[1] ?? m[2] ?? Number(m[3]));
  return parts.reduce((o, k) => (o == null ? undefined : o[k]), obj);
}

// field_map paths: "properties.email", "emails[0].value"
function fieldPath(obj, path) {
  return path.split(/\.|\[(\d+)\]/).filter((p) => p !== undefined && p !== "")
    .reduce((o, k) => (o == null ? undefined : o[/^\d+$/.test(k) ? Number(k) : k]), obj);
}

function sandboxBase(manifest, system) {
  const cfg = manifest.config_schema?.properties ?? {};
  let url = manifest.base_url.replace(/\{config\.([a-z_]+)\}/g, (all, k) =>
    k === "shop" || k === "org_url" ? all : String(cfg[k]?.default ?? all));
  // Keep the path, swap the origin (literal or {config.*}) for ours.
  url = url.replace(/^https?:\/\/[^/]+/, "").replace(/^\{config\.[a-z_]+\}/, "");
  return `${base}/${system}${url}`;
}

function authHeaders(manifest, url) {
  const methods = manifest.auth.methods;
  const m = methods.api_key ?? methods[manifest.auth.default] ?? Object.values(methods)[0];
  const apply = m.apply;
  if (apply.in === "header") return [{ [apply.name]: (apply.prefix ?? "") + TOKEN }, url];
  if (apply.in === "query") return [{}, `${url}${url.includes("?") ? "&" : "?"}${apply.name}=${TOKEN}`];
  throw new Error(`auth apply.in ${apply.in}`);
}

async function call(method, url, headers, body) {
  const res = await fetch(url, {
    method,
    headers: body ? { "content-type": "application/json", ...headers } : headers,
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  assert.equal(res.status, 200, `${method} ${url}: ${res.status} ${text.slice(0, 300)}`);
  return { json: JSON.parse(text), headers: res.headers };
}

function substitute(v, since) {
  if (typeof v === "string") return v.replaceAll("{since}", since);
  if (Array.isArray(v)) return v.map((x) => substitute(x, since));
  if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, substitute(x, since)]));
  return v;
}

// Follows one manifest "pagination" block to the end; returns the records.
async function pull({ method, url, query, headers, body, recordsPath, pagination }) {
  const out = [];
  let next = `${url}${Object.keys(query).length ? "?" + new URLSearchParams(query) : ""}`;
  let reqBody = body;
  for (let page = 0; page < 200; page++) {
    const { json, headers: h } = await call(method, next, headers, reqBody);
    const recs = jsonPath(json, recordsPath);
    assert.ok(Array.isArray(recs), `records_path ${recordsPath} is not an array`);
    out.push(...recs);
    if (pagination.type === "cursor") {
      const c = jsonPath(json, pagination.cursor_path);
      if (c === undefined || c === null || c === "") return out;
      if (pagination.in === "body") reqBody = { ...reqBody, [pagination.param]: c };
      else next = `${url}?${new URLSearchParams({ ...query, [pagination.param]: c })}`;
    } else if (pagination.type === "link_header") {
      const link = h.get("link") ?? "";
      const m = new RegExp(`<([^>]+)>;\\s*rel="${pagination.rel}"`).exec(link);
      if (!m) return out;
      next = m[1];
    } else if (pagination.type === "next_url") {
      const n = jsonPath(json, pagination.next_path);
      if (!n) return out;
      next = n;
    } else {
      throw new Error(`pagination type ${pagination.type}`);
    }
  }
  throw new Error("too many pages");
}

const problems = [];
let checked = 0;

for (const [file, system] of Object.entries(SYSTEMS)) {
  const manifest = JSON.parse(readFileSync(join(adapters, `${file}.json`), "utf8"));
  const root = sandboxBase(manifest, system);
  const common = { ...(manifest.headers ?? {}) };
  for (const [name, e] of Object.entries(manifest.entities)) {
    const what = `${file} ${name}`;
    try {
      let [auth, url] = authHeaders(manifest, `${root}${e.path}`);
      const headers = { ...common, ...(e.headers ?? {}), ...auth };
      const all = await pull({
        method: e.list?.method ?? "GET", url, query: e.list?.query ?? {}, headers,
        recordsPath: e.records_path, pagination: e.pagination,
      });
      assert.equal(all.length, N, `${what}: got ${all.length} of ${N} records`);
      const ids = all.map((r) => fieldPath(r, e.id_field));
      assert.ok(ids.every((x) => x !== undefined && x !== null), `${what}: id_field ${e.id_field} missing`);
      assert.equal(new Set(ids.map(String)).size, N, `${what}: ids not unique`);
      const upd = all.map((r) => fieldPath(r, e.updated_field));
      assert.ok(upd.every((x) => typeof x === "string" && !Number.isNaN(Date.parse(x))),
        `${what}: updated_field ${e.updated_field} missing or not a date`);
      for (const [local, path] of Object.entries(e.default_mapping?.field_map ?? {})) {
        const v = fieldPath(all[0], path);
        assert.ok(v !== undefined, `${what}: field_map ${local} <- ${path} not in the record`);
      }
      checked++;

      // Incremental, the manifest's way: since = the 400th oldest change.
      const times = upd.map(Date.parse).sort((a, b) => a - b);
      const sinceMs = times[400];
      const since = new Date(sinceMs).toISOString().replace(".000Z", "Z");
      const inc = e.incremental;
      let got;
      if (inc.in === "request") {
        const r = inc.request;
        got = await pull({
          method: r.method, url: `${root}${r.path}`, query: {}, headers, body: substitute(r.body, since),
          recordsPath: r.records_path ?? e.records_path, pagination: r.pagination ?? e.pagination,
        });
      } else if (inc.in === "query") {
        got = await pull({
          method: "GET", url, query: { ...(e.list?.query ?? {}), [inc.param]: since }, headers,
          recordsPath: e.records_path, pagination: e.pagination,
        });
      } else if (inc.in === "filter") {
        got = await pull({
          method: "GET", url, query: { ...(e.list?.query ?? {}), [inc.param]: inc.template.replace("{since}", since) },
          headers, recordsPath: e.records_path, pagination: e.pagination,
        });
      } else {
        throw new Error(`incremental.in ${inc.in}`);
      }
      const strict = inc.in === "filter" && / gt /.test(inc.template);
      const expect = times.filter((t) => (strict ? t > sinceMs : t >= sinceMs)).length;
      assert.equal(got.length, expect, `${what}: incremental got ${got.length}, expected ${expect}`);
      checked++;
    } catch (err) {
      problems.push(`${what}: ${err.message}`);
    }
  }
  if (manifest.test_request) {
    const t = manifest.test_request;
    try {
      const [auth, url] = authHeaders(manifest, `${root}${t.path}${t.query ? "?" + new URLSearchParams(t.query) : ""}`);
      await call(t.method ?? "GET", url, { ...common, ...auth });
      checked++;
    } catch (err) {
      problems.push(`${file} test_request: ${err.message}`);
    }
  }
}

proc.stdin.end();
if (problems.length) {
  console.error(`FAIL: ${problems.length} problem(s):\n  ${problems.join("\n  ")}`);
  process.exit(1);
}
console.log(`ok: ${checked} manifest checks against the sandbox`);

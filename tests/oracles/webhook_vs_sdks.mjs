// Agreement test: lib/webhook_verify.c against the providers' own SDKs.
//
//   node webhook_vs_sdks.mjs PATH/TO/webhook_cli [--seed N] [--per-scheme N] [--keep FILE]
//
// Runs webhook_oracle.mjs (deliveries signed and judged by the SDKs, plus the
// fixed vectors from their test suites), feeds the cases to webhook_cli
// (tests/unit/webhook_cli.c: integ_webhook_verify per case) and compares each
// verdict with the case's "expect". Prints "N agree, M disagree"; exit 0 when
// all agree, 1 on any disagreement or failure, 77 (skipped) when `npm ci` has
// not been run here. The seed defaults to 1 (or $WEBHOOK_ORACLE_SEED).
import { spawnSync } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const needed = ["standardwebhooks", "svix", "stripe", "@octokit/webhooks-methods", "@shopify/shopify-api",
  "twilio", "@sendgrid/eventwebhook", "@hubspot/api-client"];
const missing = needed.filter((p) => !existsSync(join(here, "node_modules", p, "package.json")));
if (missing.length) {
  console.log(`SKIP: run \`npm ci\` in tests/oracles (missing ${missing.join(", ")})`);
  process.exit(77);
}

const args = process.argv.slice(2);
const cli = args[0];
if (!cli || cli.startsWith("--")) {
  console.error("usage: node webhook_vs_sdks.mjs WEBHOOK_CLI [--seed N] [--per-scheme N] [--keep FILE]");
  process.exit(2);
}
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const seed = opt("--seed", process.env.WEBHOOK_ORACLE_SEED || "1");
const perScheme = opt("--per-scheme", "40");
const keep = opt("--keep", null);

const gen = spawnSync(process.execPath, [join(here, "webhook_oracle.mjs"), "--seed", seed, "--per-scheme", perScheme],
  { encoding: "utf8", maxBuffer: 1 << 30 });
if (gen.error || gen.status !== 0) {
  console.error(`webhook_oracle.mjs failed: ${gen.error ?? `exit ${gen.status}`}\n${gen.stderr}`);
  process.exit(1);
}
if (keep) writeFileSync(keep, gen.stdout);
const cases = gen.stdout.split("\n").filter((l) => l.length).map((l) => JSON.parse(l));

const run = spawnSync(cli, [], { input: gen.stdout, encoding: "utf8", maxBuffer: 1 << 30 });
if (run.error || run.status !== 0) {
  console.error(`webhook_cli failed: ${run.error ?? `exit ${run.status}`}\n${run.stderr}`);
  process.exit(1);
}
const results = run.stdout.split("\n").filter((l) => l.length).map((l) => {
  const tab = l.indexOf("\t");
  return { verdict: tab < 0 ? l : l.slice(0, tab), message: tab < 0 ? "" : l.slice(tab + 1) };
});
if (results.length !== cases.length) {
  console.error(`webhook_cli printed ${results.length} results for ${cases.length} cases`);
  process.exit(1);
}

let agree = 0;
const disagreements = [];
const perSchemeStats = new Map();
const deviations = new Map();
cases.forEach((c, i) => {
  const r = results[i];
  const st = perSchemeStats.get(c.scheme) ?? { cases: 0, agree: 0, vectors: 0, oracle: c.oracle };
  st.cases++;
  if (c.kind.startsWith("vector:")) st.vectors++;
  if (r.verdict === c.expect) {
    agree++;
    st.agree++;
    if (c.deviation) deviations.set(c.deviation, (deviations.get(c.deviation) ?? 0) + 1);
  } else {
    disagreements.push({ i, c, r });
  }
  perSchemeStats.set(c.scheme, st);
});

console.log(`seed ${seed}, ${perScheme} random deliveries per scheme, each with its tamperings, plus the published vectors`);
for (const [scheme, st] of perSchemeStats)
  console.log(`  ${scheme.padEnd(17)} ${String(st.agree).padStart(5)}/${String(st.cases).padEnd(5)} (${st.vectors} fixed vectors)  judge: ${st.oracle}`);
for (const [why, n] of deviations)
  console.log(`  ${n} agreeing cases follow the documented deviation: ${why}`);
for (const { i, c, r } of disagreements.slice(0, 25)) {
  console.log(`DISAGREE #${i} ${c.scheme} ${c.kind}: expect ${c.expect} (sdk ${c.sdk}), library ${r.verdict}: ${r.message}`);
  console.log(`  url ${c.url} headers ${JSON.stringify(c.headers).slice(0, 400)} body ${c.body_b64.slice(0, 120)}`);
}
console.log(`${agree} agree, ${disagreements.length} disagree`);
process.exit(disagreements.length ? 1 : 0);

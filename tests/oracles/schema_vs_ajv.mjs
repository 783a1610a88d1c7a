// Agreement test: lib/schema.c against ajv on tests/data/schema_corpus.json.
//
//   node schema_vs_ajv.mjs PATH/TO/schema_cli PATH/TO/schema_corpus.json
//
// For every case ajv (draft 2020-12, useDefaults, first error only,
// ajv-formats "full") and the C checker must give the same verdict:
// "valid", "invalid" or "schema_error" (the schema itself is rejected);
// for cases both find valid, the instance after defaults must be equal.
// Exit 0 when all agree, 1 on any disagreement or C failure, 77 (skip)
// when `npm install` has not been run here.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { isDeepStrictEqual } from "node:util";

const here = dirname(fileURLToPath(import.meta.url));
if (!existsSync(join(here, "node_modules", "ajv")) ||
    !existsSync(join(here, "node_modules", "ajv-formats"))) {
  console.log("SKIP: run `npm ci` in tests/oracles to install ajv");
  process.exit(77);
}

const [cliPath, corpusPath] = process.argv.slice(2);
if (!cliPath || !corpusPath) {
  console.error("usage: node schema_vs_ajv.mjs SCHEMA_CLI CORPUS.json");
  process.exit(2);
}

const { default: Ajv2020 } = await import("ajv/dist/2020.js");
const { default: addFormats } = await import("ajv-formats");

const corpus = JSON.parse(readFileSync(corpusPath, "utf8"));

function ajvVerdict(c) {
  // A fresh instance per case: compiled schemas are cached by identity and
  // defaults mutate the data, so nothing may leak between cases.
  const ajv = new Ajv2020({ useDefaults: true, strict: false, allErrors: false });
  addFormats(ajv);
  let validate;
  try {
    validate = ajv.compile(c.schema);
  } catch (e) {
    return { verdict: "schema_error", error: String(e.message) };
  }
  const data = structuredClone(c.instance);
  const ok = validate(data);
  const err = ok ? "" : `${validate.errors[0].instancePath || "/"} ${validate.errors[0].message}`;
  return { verdict: ok ? "valid" : "invalid", instance: data, error: err };
}

const run = spawnSync(cliPath, [corpusPath], { encoding: "utf8", maxBuffer: 64 << 20 });
if (run.error || run.status !== 0) {
  console.error(`schema_cli failed: ${run.error ?? `exit ${run.status}`}\n${run.stderr}`);
  process.exit(1);
}
const lines = run.stdout.split("\n").filter((l) => l.length);
if (lines.length !== corpus.length) {
  console.error(`schema_cli printed ${lines.length} results for ${corpus.length} cases`);
  process.exit(1);
}

let agree = 0;
const disagreements = [];
const tally = { valid: 0, invalid: 0, schema_error: 0 };
corpus.forEach((c, i) => {
  const cres = JSON.parse(lines[i]);
  const cVerdict = cres.schema_error ? "schema_error" : cres.valid ? "valid" : "invalid";
  const a = ajvVerdict(c);
  let problem = null;
  if (cres.index !== i) problem = `result index ${cres.index} out of order`;
  else if (a.verdict !== cVerdict) problem = `ajv says ${a.verdict}, C says ${cVerdict}`;
  else if (a.verdict === "valid" && !isDeepStrictEqual(a.instance, cres.instance))
    problem = `instances after defaults differ: ajv ${JSON.stringify(a.instance)}, ` +
      `C ${JSON.stringify(cres.instance)}`;
  if (problem) {
    disagreements.push({ i, note: c.note, problem, ajvError: a.error, cError: cres.error });
  } else {
    agree++;
    tally[a.verdict]++;
  }
});

for (const d of disagreements) {
  console.log(`case ${d.i} (${d.note}): ${d.problem}`);
  console.log(`    schema:   ${JSON.stringify(corpus[d.i].schema)}`);
  console.log(`    instance: ${JSON.stringify(corpus[d.i].instance)}`);
  if (d.ajvError) console.log(`    ajv:      ${d.ajvError}`);
  if (d.cError) console.log(`    C:        ${d.cError}`);
}
console.log(`(agreed: ${tally.valid} valid, ${tally.invalid} invalid, ` +
  `${tally.schema_error} schema errors)`);
console.log(`${agree} agree, ${disagreements.length} disagree`);
process.exit(disagreements.length ? 1 : 0);

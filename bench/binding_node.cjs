'use strict';
// Binding overhead, the Node side (the N-API addon, found through
// INTEG_NODE_ADDON): the same calls as bench/binding.c, on the inputs
// bench_verify --fixtures wrote.
//
//   INTEG_NODE_ADDON=build-release/bindings/integrations.node node bench/binding_node.cjs FIXTURE_DIR REPS
// Output: binding lang=node call=... rep=R calls_per_s=X
const fs = require('node:fs');
const path = require('node:path');
const integ = require('../bindings/node');

const [dir, repsArg] = process.argv.slice(2);
const reps = Number(repsArg || 5);
const fx = JSON.parse(fs.readFileSync(path.join(dir, 'standard-1024.json'), 'utf8'));
const body = fs.readFileSync(path.join(dir, 'standard-1024.body'));
const ctx = new integ.Context({ store: 'sqlite::memory:', master_key: integ.generateMasterKey() });
const calls = {
  definition_get: () => ctx.definition('hubspot-crm'),
  webhook_verify: () => integ.verifyWebhook({ scheme: 'standard', secret: fx.secret, method: 'POST', url: '', headers: fx.headers, body }),
};
for (const [name, fn] of Object.entries(calls)) {
  let iters = 0;
  for (let rep = -1; rep < reps; rep++) {
    const n = rep < 0 ? 300 : iters;
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) fn();
    const r = n / (Number(process.hrtime.bigint() - t0) / 1e9);
    if (rep < 0) iters = Math.ceil(r * 0.25);
    else console.log(`binding lang=node call=${name} rep=${rep} calls_per_s=${r.toFixed(0)}`);
  }
}
ctx.close();

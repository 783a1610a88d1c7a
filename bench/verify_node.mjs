// Node baselines of the verification benchmark, on the inputs bench_verify
// --fixtures wrote: the standardwebhooks SDK (scheme "standard"), and for
// Shopify the check a user writes with node:crypto (createHmac +
// timingSafeEqual), since Shopify's own SDK needs a whole app object.
//
//   node bench/verify_node.mjs FIXTURE_DIR REPS
// Output: verify_node scheme=S size=N rep=R ops=X impl=...
import { createRequire } from 'node:module';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const oracles = path.join(here, '..', 'tests', 'oracles', 'package.json');
const require = createRequire(existsSync(path.join(here, '..', 'tests', 'oracles', 'node_modules', 'standardwebhooks'))
  ? oracles : path.join(here, 'node', 'package.json'));
const { Webhook } = require('standardwebhooks');

const [dir, repsArg] = process.argv.slice(2);
const reps = Number(repsArg || 7);

function rate(fn, iters) {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < iters; i++) fn();
  return iters / (Number(process.hrtime.bigint() - t0) / 1e9);
}

for (const scheme of ['standard', 'shopify']) {
  for (const size of [1024, 16384]) {
    const fx = JSON.parse(readFileSync(path.join(dir, `${scheme}-${size}.json`), 'utf8'));
    const body = readFileSync(path.join(dir, `${scheme}-${size}.body`));
    let fn, impl;
    if (scheme === 'standard') {
      const wh = new Webhook(fx.secret);
      const text = body.toString('utf8');
      fn = () => wh.verify(text, fx.headers);
      impl = 'standardwebhooks@1.1.1';
    } else {
      const want = Buffer.from(fx.headers['X-Shopify-Hmac-Sha256'], 'base64');
      fn = () => {
        const mac = createHmac('sha256', fx.secret).update(body).digest();
        if (!timingSafeEqual(mac, want)) throw new Error('bad signature');
      };
      impl = 'node:crypto';
    }
    fn(); // throws if the inputs do not verify
    let iters = 200;
    iters = Math.ceil(rate(fn, iters) * 0.25);
    rate(fn, iters); // warm-up (JIT)
    for (let rep = 0; rep < reps; rep++) {
      console.log(`verify_node scheme=${scheme} size=${size} rep=${rep} ops=${rate(fn, iters).toFixed(0)} impl=${impl}`);
    }
  }
}

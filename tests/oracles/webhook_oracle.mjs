// Oracle for lib/webhook_verify.c: webhook deliveries signed and judged by the
// providers' own SDKs, written as JSON lines for tests/unit/webhook_cli.c.
//
//   node webhook_oracle.mjs [--seed N] [--per-scheme N] > cases.jsonl
//
// Each line: {scheme, secret, method, url, headers: [[name, value], ...],
//   body_b64, now, tolerance, expect, sdk, oracle, kind, deviation?}
//   expect     the verdict integ_webhook_verify must give: "ok", "invalid",
//              "signature" or "replay" (INTEG_OK/EINVAL/ESIGNATURE/EREPLAY)
//   sdk        the judge's own verdict (the SDK's, or the spec's where no SDK
//              exists: oracle says which); it differs from expect only where
//              doc/webhooks.md documents a deliberate difference, named in
//              deviation (the symmetric timestamp window)
//   kind       valid, tamper-body, tamper-signature, tamper-timestamp,
//              stale-old, stale-new, wrong-secret, rotation, missing-signature,
//              handshake, or vector:<where the fixed vector is published>
//
// Signing: with the SDK's own signer where it has one (standardwebhooks/svix
// sign, stripe generateTestHeaderString, @octokit/webhooks-methods sign,
// @hubspot/api-client Signature.getSignature, twilio
// getExpectedTwilioSignature); otherwise with node:crypto as the provider
// documents it (Shopify, WooCommerce, Slack, GitHub sha1, ed25519 v1a,
// SendGrid's ECDSA, Basic, Graph clientState). Judging: with the SDK's
// verifier (standardwebhooks/svix Webhook.verify, stripe
// webhooks.signature.verifyHeader, octokit verify/verifyWithFallback,
// shopify.webhooks.validate, HubSpot Signature.isValid, twilio
// validateRequest/validateRequestWithBody, @sendgrid/eventwebhook
// verifySignature); the schemes without a Node SDK (standard-ed25519,
// github-sha1, slack, woocommerce, basic, msgraph) are judged by a direct
// reading of the provider's rule (oracle: "spec").
//
// Conventions mapping an SDK's answer to a verdict: a thrown "missing
// header/payload" or an absent required header is "invalid"; false or a
// signature error is "signature"; a timestamp error is "replay". Several
// secrets (rotation): ok if any is ok, else replay if any is, else the first.
//
// Random keys (ed25519, P-256) come from node:crypto and are not seeded; the
// payloads, secrets, URLs and tamperings are, by --seed.
import crypto from "node:crypto";
import querystring from "node:querystring";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const require = createRequire(import.meta.url);
const { Webhook: StdWebhook } = require("standardwebhooks");
const { Webhook: SvixWebhook } = require("svix");
const Stripe = require("stripe");
const octokit = await import("@octokit/webhooks-methods");
await import("@shopify/shopify-api/adapters/node");
const { shopifyApi, ApiVersion, LogSeverity } = await import("@shopify/shopify-api");
const twilio = require("twilio");
const { EventWebhook } = require("@sendgrid/eventwebhook");
const { Signature: HubSpotSignature } = require("@hubspot/api-client/lib/src/utils/signature.js");

const here = dirname(fileURLToPath(import.meta.url));
const VERSIONS = Object.fromEntries(
  ["standardwebhooks", "svix", "stripe", "@octokit/webhooks-methods", "@shopify/shopify-api",
    "twilio", "@sendgrid/eventwebhook", "@hubspot/api-client"].map((p) =>
    [p, JSON.parse(readFileSync(join(here, "node_modules", p, "package.json"), "utf8")).version]));
const sdkName = (p) => `${p}@${VERSIONS[p]}`;

// ---------------------------------------------------------------------------
// Seeded randomness

const args = process.argv.slice(2);
const argOf = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const SEED = argOf("--seed", 1);
const PER_SCHEME = argOf("--per-scheme", 40);

function mulberry32(a) {
  return () => {
    a |= 0; a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const rand = mulberry32(SEED);
const int = (n) => Math.floor(rand() * n);
const pick = (a) => a[int(a.length)];
const chance = (p) => rand() < p;
const bytes = (n) => Buffer.from(Array.from({ length: n }, () => int(256)));

const ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const B64 = ALNUM + "+/";
const HEX = "0123456789abcdef";
const PRINTABLE = Array.from({ length: 94 }, (_, i) => String.fromCharCode(33 + i)).join("");
const str = (alphabet, n) => Array.from({ length: n }, () => pick(alphabet)).join("");

// Code point ranges: ASCII, Latin-1, Greek, Arabic, CJK, combining marks,
// line/paragraph separators, emoji (astral: surrogate pairs in JS).
const RANGES = [[0x20, 0x7e], [0x20, 0x7e], [0xa0, 0xff], [0x370, 0x3ff], [0x600, 0x6ff],
  [0x4e00, 0x4fff], [0x300, 0x36f], [0x2028, 0x2029], [0x1f300, 0x1f64f]];
function unicode(n) {
  let s = "";
  for (let i = 0; i < n; i++) {
    const [lo, hi] = pick(RANGES);
    s += String.fromCodePoint(lo + int(hi - lo + 1));
  }
  return s;
}

function payloadText() {
  switch (int(8)) {
    case 0: return "";
    case 1: return JSON.stringify({ id: `evt_${str(ALNUM, 12)}`, n: int(1e9), ok: chance(0.5) });
    case 2: return JSON.stringify({ name: unicode(1 + int(40)), note: unicode(int(20)), tags: [unicode(3), "é", "😀"] });
    case 3: { // 16 KiB exactly
      const head = JSON.stringify({ blob: "" }).slice(0, -2);
      const fill = str(ALNUM, 16384 - head.length - 2);
      return `${head}${fill}"}`;
    }
    case 4: return str(PRINTABLE + " \n\r\t", 1 + int(300));
    case 5: return unicode(1 + int(200));
    case 6: return JSON.stringify([{ event: "processed", email: `${str(ALNUM, 6)}@example.com`, ts: int(1e9) }]) + "\r\n";
    default: return unicode(1000 + int(3000));
  }
}

const NOW0 = 1700000000;
const randomNow = () => NOW0 + int(100000000);

// ---------------------------------------------------------------------------
// Judging helpers

function withNow(seconds, fn) {
  const orig = Date.now;
  Date.now = () => seconds * 1000;
  try {
    return fn();
  } finally {
    Date.now = orig;
  }
}

function lower(headers) {
  const o = {};
  for (const [k, v] of headers) {
    const key = k.toLowerCase();
    if (!(key in o)) o[key] = v.trim(); // as node's http parser hands them over
  }
  return o;
}

function combine(verdicts) {
  if (verdicts.includes("ok")) return "ok";
  if (verdicts.includes("replay")) return "replay";
  return verdicts[0];
}
// The library's rotation rule: the space-separated secrets, and for schemes
// whose secret is raw text, the whole string too (a secret may contain spaces).
const STRUCTURED = new Set(["standard", "standard-ed25519", "sendgrid"]);
let currentScheme = "";
const secretsOf = (c) => {
  const parts = c.secret.split(/\s+/).filter(Boolean);
  if (parts.length > 1 && !STRUCTURED.has(currentScheme)) parts.push(c.secret.trim());
  return parts;
};

const hmac = (alg, key, data, enc) => crypto.createHmac(alg, key).update(data).digest(enc);
const sha256hex = (data) => crypto.createHash("sha256").update(data).digest("hex");

// ---------------------------------------------------------------------------
// Schemes: secret(), build(secret, body, ts) → request, judge(request),
// where to tamper, and how the C library orders its timestamp check.

const shopifyByKey = new Map();
function shopifyFor(secret) {
  if (!shopifyByKey.has(secret)) {
    shopifyByKey.set(secret, shopifyApi({
      apiSecretKey: secret, apiKey: "oracle", hostName: "oracle.example",
      apiVersion: ApiVersion.January25, isEmbeddedApp: false,
      logger: { level: LogSeverity.Error, log: async () => {} },
    }));
  }
  return shopifyByKey.get(secret);
}

const ed25519Keys = new Map(); // "whpk_..." → private KeyObject
const ED25519_SPKI = Buffer.from("302a300506032b6570032100", "hex");
function ed25519Secret() {
  const { publicKey, privateKey } = crypto.generateKeyPairSync("ed25519");
  const raw = publicKey.export({ format: "der", type: "spki" }).subarray(12);
  const secret = `whpk_${raw.toString("base64")}`;
  ed25519Keys.set(secret, privateKey);
  return secret;
}

const sendgridKeys = new Map(); // base64 DER SPKI → private KeyObject
const sendgrid = new EventWebhook();
function sendgridSecret() {
  const { publicKey, privateKey } = crypto.generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  const secret = publicKey.export({ format: "der", type: "spki" }).toString("base64");
  sendgridKeys.set(secret, privateKey);
  return secret;
}

function randomUrl({ query = true } = {}) {
  const scheme = pick(["https", "https", "http"]);
  const host = pick(["example.com", "hooks.acme.io", "api.test-shop.dev", "127.0.0.1", "[::1]"]);
  const port = pick(["", "", "", scheme === "https" ? ":443" : ":80", ":8443"]);
  const path = "/" + Array.from({ length: 1 + int(3) }, () => str(ALNUM + "-_.", 1 + int(10))).join("/");
  let q = "";
  if (query && chance(0.7)) {
    q = "?" + Array.from({ length: 1 + int(3) }, () =>
      `${str(ALNUM, 1 + int(6))}=${encodeURIComponent(chance(0.5) ? unicode(1 + int(6)) : str(ALNUM, int(8)))}`).join("&");
  }
  return `${scheme}://${host}${port}${path}${q}`;
}

// twilio-node's own port rules, to sign with a URL form Twilio may have used.
function twilioSplit(url) {
  const m = /^([a-z][a-z0-9+.-]*:\/\/)([^/?#]*)/i.exec(url);
  const authority = m[2];
  const at = authority.lastIndexOf("@");
  const hp = authority.slice(at + 1);
  const ps = hp.indexOf(":", hp.lastIndexOf("]") + 1);
  return { scheme: m[1], user: authority.slice(0, at + 1), host: ps < 0 ? hp : hp.slice(0, ps),
    port: ps < 0 ? "" : hp.slice(ps), rest: url.slice(m[0].length) };
}
function twilioVariant(url) {
  const p = twilioSplit(url);
  return pick([
    url,
    p.scheme + p.user + p.host + p.rest,
    p.port ? url : p.scheme + p.user + p.host + (p.scheme.toLowerCase() === "https://" ? ":443" : ":80") + p.rest,
  ]);
}

function randomParams() {
  const params = {};
  const n = 1 + int(6);
  for (let i = 0; i < n; i++) {
    const name = pick(["CallSid", "From", "To", "Body", "Digits", "AccountSid", str(ALNUM, 1 + int(8))]);
    const value = chance(0.5) ? unicode(int(12)) : str(ALNUM + "+ ", int(16));
    if (name in params && chance(0.5)) params[name] = [].concat(params[name], value);
    else params[name] = value;
  }
  return params;
}

// The SDK-judge result of `fn` for each secret, combined.
async function eachSecret(c, fn) {
  const out = [];
  for (const s of secretsOf(c)) out.push(await fn(s));
  return combine(out);
}

const SCHEMES = {
  standard: {
    oracle: `${sdkName("standardwebhooks")} + ${sdkName("svix")}`,
    tsFirst: true,
    secret: () => (chance(0.9) ? "whsec_" : "") + bytes(24 + int(41)).toString("base64"),
    build(secret, body, ts) {
      const svix = chance(0.5);
      const pre = svix ? "svix-" : "webhook-";
      const id = `msg_${str(ALNUM, 20)}`;
      const wh = svix ? new SvixWebhook(secret) : new StdWebhook(secret);
      let sig = wh.sign(id, new Date(ts * 1000), body.toString());
      if (chance(0.3)) {
        const other = new StdWebhook(bytes(32).toString("base64")).sign(id, new Date(ts * 1000), body.toString());
        sig = [other, "v2," + bytes(32).toString("base64"), sig].sort(() => rand() - 0.5).join(" ");
      }
      return { method: "POST", url: randomUrl(), body,
        headers: [[pre + "id", id], [pre + "timestamp", String(ts)], [pre + "signature", sig],
          ["Content-Type", "application/json"]] };
    },
    sigHeader: /-signature$/i, sigChars: B64, sigAfter: ",",
    tsHeader: /-timestamp$/i,
    judge: (c) => eachSecret(c, (secret) => withNow(c.now, () => {
      const h = lower(c.headers);
      const wh = "svix-signature" in h || "svix-id" in h ? new SvixWebhook(secret) : new StdWebhook(secret);
      try {
        wh.verify(c.body.toString(), h, { jsonParse: false });
        return "ok";
      } catch (e) {
        if (e instanceof SyntaxError) return "ok"; // svix parses the payload as JSON after verifying it
        const m = String(e.message);
        if (/too old|too new/.test(m)) return "replay";
        if (/Missing required headers|Invalid Signature Headers/.test(m)) return "invalid";
        if (/No matching signature/.test(m)) return "signature";
        throw e;
      }
    })),
  },

  "standard-ed25519": {
    oracle: "spec (node:crypto ed25519; the JS SDK has no v1a)",
    tsFirst: true,
    secret: ed25519Secret,
    build(secret, body, ts) {
      const id = `msg_${str(ALNUM, 20)}`;
      const msg = Buffer.concat([Buffer.from(`${id}.${ts}.`), body]);
      let sig = "v1a," + crypto.sign(null, msg, ed25519Keys.get(secret)).toString("base64");
      if (chance(0.3)) sig = `v1,${bytes(32).toString("base64")} ${sig}`;
      const pre = chance(0.5) ? "svix-" : "webhook-";
      return { method: "POST", url: randomUrl(), body,
        headers: [[pre + "id", id], [pre + "timestamp", String(ts)], [pre + "signature", sig]] };
    },
    sigHeader: /-signature$/i, sigChars: B64, sigAfter: ",",
    tsHeader: /-timestamp$/i,
    judge: (c) => eachSecret(c, (secret) => {
      const h = lower(c.headers);
      const get = (k) => h[`svix-${k}`] ?? h[`webhook-${k}`];
      const id = get("id"), ts = get("timestamp"), sig = get("signature");
      if (!id || !ts || !sig) return "invalid";
      if (!/^\d{1,18}$/.test(ts)) return "invalid";
      if (c.tolerance >= 0 && Math.abs(c.now - Number(ts)) > (c.tolerance || 300)) return "replay";
      const key = crypto.createPublicKey({ key: Buffer.concat([ED25519_SPKI, Buffer.from(secret.slice(5), "base64")]), format: "der", type: "spki" });
      const msg = Buffer.concat([Buffer.from(`${id}.${ts}.`), c.body]);
      for (const entry of sig.split(" ")) {
        const [ver, s] = entry.split(",");
        if (ver !== "v1a" || !s) continue;
        const raw = Buffer.from(s, "base64");
        if (raw.length === 64 && crypto.verify(null, msg, key, raw)) return "ok";
      }
      return "signature";
    }),
  },

  github: {
    oracle: sdkName("@octokit/webhooks-methods"),
    secret: () => (chance(0.8) ? str(PRINTABLE, 8 + int(40)) : unicode(4 + int(10)).replace(/\s/g, "x")),
    async build(secret, body) {
      const sig = body.length ? await octokit.sign(secret, body.toString())
        : "sha256=" + hmac("sha256", secret, body, "hex");
      return { method: "POST", url: randomUrl(), body,
        headers: [["X-Hub-Signature-256", sig], ["X-GitHub-Delivery", crypto.randomUUID()], ["X-GitHub-Event", "push"]] };
    },
    sigHeader: /^x-hub-signature-256$/i, sigChars: HEX, sigAfter: "=",
    async judge(c) {
      const h = lower(c.headers);
      const sig = h["x-hub-signature-256"];
      if (!sig) return "invalid";
      const [first, ...rest] = secretsOf(c);
      try {
        return (await octokit.verifyWithFallback(first, c.body.toString(), sig, rest)) ? "ok" : "signature";
      } catch (e) {
        if (/required/.test(e.message)) return "invalid"; // empty payload
        throw e;
      }
    },
  },

  "github-sha1": {
    oracle: "spec (node:crypto; octokit v6 signs sha256 only)",
    secret: () => str(PRINTABLE, 8 + int(40)),
    build: (secret, body) => ({ method: "POST", url: randomUrl(), body,
      headers: [["X-Hub-Signature", "sha1=" + hmac("sha1", secret, body, "hex")]] }),
    sigHeader: /^x-hub-signature$/i, sigChars: HEX, sigAfter: "=",
    judge(c) {
      const sig = lower(c.headers)["x-hub-signature"];
      if (!sig) return "invalid";
      if (!c.body.length) return "invalid"; // as octokit for sha256
      return combine(secretsOf(c).map((s) => (sig === "sha1=" + hmac("sha1", s, c.body, "hex") ? "ok" : "signature")));
    },
  },

  slack: {
    oracle: "spec (slack_sdk SignatureVerifier rules, node:crypto)",
    tsFirst: true,
    secret: () => str(HEX + "xyz", 32),
    build: (secret, body, ts) => ({ method: "POST", url: randomUrl(), body,
      headers: [["X-Slack-Request-Timestamp", String(ts)],
        ["X-Slack-Signature", "v0=" + hmac("sha256", secret, Buffer.concat([Buffer.from(`v0:${ts}:`), body]), "hex")]] }),
    sigHeader: /^x-slack-signature$/i, sigChars: HEX, sigAfter: "=",
    tsHeader: /^x-slack-request-timestamp$/i,
    tolerances: [0, 0, 60, 600, -1],
    judge(c) {
      const h = lower(c.headers);
      const ts = h["x-slack-request-timestamp"], sig = h["x-slack-signature"];
      if (!ts || !sig || !/^\d{1,18}$/.test(ts)) return "invalid";
      if (c.tolerance >= 0 && Math.abs(c.now - Number(ts)) > (c.tolerance || 300)) return "replay";
      return combine(secretsOf(c).map((s) =>
        sig === "v0=" + hmac("sha256", s, Buffer.concat([Buffer.from(`v0:${ts}:`), c.body]), "hex") ? "ok" : "signature"));
    },
  },

  stripe: {
    oracle: sdkName("stripe"),
    tsFirst: false,
    secret: () => "whsec_" + str(ALNUM, 32),
    build(secret, body, ts) {
      const stripe = new Stripe("sk_test_oracle");
      let header = stripe.webhooks.generateTestHeaderString({ payload: body.toString(), secret, timestamp: ts });
      if (chance(0.3)) header += ",v0=" + str(HEX, 64);
      if (chance(0.3)) header = header.replace(",", `,v1=${str(HEX, 64)},`);
      return { method: "POST", url: randomUrl(), body, headers: [["Stripe-Signature", header]] };
    },
    sigHeader: /^stripe-signature$/i, sigChars: HEX, sigAfter: "v1=",
    tsHeader: /^stripe-signature$/i, tsAfter: "t=",
    tolerances: [0, 0, 600, 3600, -1],
    judge(c) {
      const stripe = new Stripe("sk_test_oracle");
      const header = lower(c.headers)["stripe-signature"];
      // stripe-node reads t= with parseInt (NaN goes through, and an empty v1=
      // makes it throw); stripe-python requires an integer t ("Unable to
      // extract timestamp and signatures from header"): that rule first.
      if (header) {
        const ts = header.split(",").map((i) => i.split("=")).filter((kv) => kv[0] === "t");
        if (!ts.length || ts.some((kv) => !/^\d{1,18}$/.test(kv[1] ?? ""))) return "invalid";
      }
      const tol = c.tolerance === 0 ? 300 : c.tolerance < 0 ? 0 : c.tolerance;
      return combine(secretsOf(c).map((s) => {
        try {
          stripe.webhooks.signature.verifyHeader(c.body, header, s, tol, undefined, c.now * 1000);
          return "ok";
        } catch (e) {
          const m = String(e.message);
          if (/No webhook payload|No stripe-signature header|Unable to extract timestamp/.test(m)) return "invalid";
          if (/No signatures found/.test(m)) return "signature";
          if (/Timestamp outside the tolerance zone/.test(m)) return "replay";
          throw e;
        }
      }));
    },
  },

  shopify: {
    oracle: sdkName("@shopify/shopify-api"),
    secret: () => str(HEX, 32 + int(33)),
    build(secret, body) {
      const sig = hmac("sha256", secret, body, "base64");
      const events = chance(0.3);
      const headers = events
        ? [["shopify-hmac-sha256", sig], ["shopify-topic", "orders/create"], ["shopify-shop-domain", "s.myshopify.com"],
          ["shopify-api-version", "2025-01"], ["shopify-webhook-id", crypto.randomUUID()], ["shopify-event-id", crypto.randomUUID()]]
        : [["X-Shopify-Hmac-Sha256", sig], ["X-Shopify-Topic", "orders/create"], ["X-Shopify-Shop-Domain", "s.myshopify.com"],
          ["X-Shopify-API-Version", "2025-01"], ["X-Shopify-Webhook-Id", crypto.randomUUID()]];
      return { method: "POST", url: randomUrl(), body, headers };
    },
    sigHeader: /hmac-sha256$/i, sigChars: B64, sigAfter: "",
    judge: (c) => eachSecret(c, async (s) => {
      const r = await shopifyFor(s).webhooks.validate({
        rawBody: c.body.toString(), rawRequest: { headers: lower(c.headers), method: c.method, url: "/" }, rawResponse: {},
      });
      if (r.valid) return "ok";
      if (r.reason === "invalid_hmac") return "signature";
      return "invalid"; // missing_body, missing_hmac, missing_headers
    }),
  },

  woocommerce: {
    oracle: "spec (class-wc-webhook.php generate_signature, node:crypto)",
    secret: () => str(PRINTABLE.replace("&", ""), 16 + int(40)),
    build(secret, body) {
      if (chance(0.1)) // the unsigned creation ping
        return { method: "POST", url: randomUrl(), body: Buffer.from(`webhook_id=${1 + int(9999)}`),
          headers: [["Content-Type", "application/x-www-form-urlencoded"]], noSignature: true };
      return { method: "POST", url: randomUrl(), body,
        headers: [["X-WC-Webhook-Signature", hmac("sha256", secret, body, "base64")], ["X-WC-Webhook-Topic", "order.updated"],
          ["X-WC-Webhook-Delivery-ID", String(int(1e6))], ["Content-Type", "application/json"]] };
    },
    sigHeader: /^x-wc-webhook-signature$/i, sigChars: B64, sigAfter: "",
    judge(c) {
      const sig = lower(c.headers)["x-wc-webhook-signature"];
      if (!sig) return /^webhook_id=\d{1,20}$/.test(c.body.toString("latin1")) ? "ok" : "invalid";
      return combine(secretsOf(c).map((s) => (sig === hmac("sha256", s, c.body, "base64") ? "ok" : "signature")));
    },
  },

  "hubspot-v1": hubspot("v1"),
  "hubspot-v2": hubspot("v2"),
  "hubspot-v3": hubspot("v3"),

  sendgrid: {
    oracle: sdkName("@sendgrid/eventwebhook"),
    tsFirst: false,
    secret: sendgridSecret,
    build(secret, body, ts) {
      const t = String(ts);
      const sig = crypto.sign("sha256", Buffer.concat([Buffer.from(t), body]), sendgridKeys.get(secret)).toString("base64");
      // Prove the oracle: SendGrid's own verifier accepts what we signed.
      if (!sendgrid.verifySignature(sendgrid.convertPublicKeyToECDSA(secret), body.toString(), sig, t))
        throw new Error("oracle: @sendgrid/eventwebhook rejects a signature made as SendGrid does");
      return { method: "POST", url: randomUrl(), body,
        headers: [["X-Twilio-Email-Event-Webhook-Signature", sig], ["X-Twilio-Email-Event-Webhook-Timestamp", t],
          ["Content-Type", "application/json"]] };
    },
    sigHeader: /-signature$/i, sigChars: B64, sigAfter: "",
    tsHeader: /-timestamp$/i,
    tolerances: [0, 0, 60, -1],
    judge(c) {
      const h = lower(c.headers);
      const sig = h["x-twilio-email-event-webhook-signature"], ts = h["x-twilio-email-event-webhook-timestamp"];
      if (!sig || !ts) return "invalid";
      if (!/^\d{1,18}$/.test(ts)) return "invalid"; // a unix-seconds timestamp is required by the C rule
      return combine(secretsOf(c).map((s) => {
        try {
          return sendgrid.verifySignature(sendgrid.convertPublicKeyToECDSA(s), c.body.toString(), sig, ts) ? "ok" : "signature";
        } catch {
          return "signature"; // undecodable DER signature
        }
      }));
    },
  },

  twilio: {
    oracle: sdkName("twilio"),
    secret: () => str(HEX, 32),
    build(secret, body) {
      const mode = pick(["form", "form", "json", "get"]);
      let url = randomUrl();
      if (mode === "form") {
        const params = randomParams();
        const text = chance(0.5) ? querystring.stringify(params) : new URLSearchParams(
          Object.entries(params).flatMap(([k, v]) => [].concat(v).map((x) => [k, x]))).toString();
        const sig = twilio.getExpectedTwilioSignature(secret, twilioVariant(url), querystring.parse(text));
        return { method: "POST", url, body: Buffer.from(text),
          headers: [["X-Twilio-Signature", sig],
            ["Content-Type", pick(["application/x-www-form-urlencoded", "application/x-www-form-urlencoded; charset=UTF-8"])]] };
      }
      if (mode === "json") {
        url += (url.includes("?") ? "&" : "?") + "bodySHA256=" + sha256hex(body);
        const sig = twilio.getExpectedTwilioSignature(secret, twilioVariant(url), {});
        return { method: "POST", url, body, headers: [["X-Twilio-Signature", sig], ["Content-Type", "application/json"]] };
      }
      const sig = twilio.getExpectedTwilioSignature(secret, twilioVariant(url), {});
      return { method: "GET", url, body: Buffer.alloc(0), headers: [["X-Twilio-Signature", sig]] };
    },
    sigHeader: /^x-twilio-signature$/i, sigChars: B64, sigAfter: "",
    judge(c) {
      const h = lower(c.headers);
      const sig = h["x-twilio-signature"];
      if (!sig) return "invalid";
      return combine(secretsOf(c).map((s) => {
        if (c.url.includes("bodySHA256"))
          return twilio.validateRequestWithBody(s, sig, c.url, c.body.toString()) ? "ok" : "signature";
        const params = c.body.length ? querystring.parse(c.body.toString()) : {};
        return twilio.validateRequest(s, sig, c.url, params) ? "ok" : "signature";
      }));
    },
  },

  basic: {
    oracle: "spec (RFC 7617 Basic, node Buffer base64)",
    secret: () => `${str(ALNUM, 3 + int(10))}:${str(PRINTABLE, 4 + int(30))}`,
    build: (secret, body) => ({ method: "POST", url: randomUrl(), body,
      headers: [["Authorization", `${pick(["Basic", "basic", "BASIC"])} ${Buffer.from(secret).toString("base64")}`]] }),
    sigHeader: /^authorization$/i, sigChars: B64, sigAfter: " ",
    judge(c) {
      const a = lower(c.headers).authorization;
      if (!a) return "invalid";
      const m = /^basic[ \t]+([A-Za-z0-9+/]+={0,2})$/i.exec(a);
      if (!m) return "signature";
      const cred = Buffer.from(m[1], "base64").toString("latin1");
      return combine(secretsOf(c).map((s) => (Buffer.from(s).toString("latin1") === cred ? "ok" : "signature")));
    },
  },

  msgraph: {
    oracle: "spec (Graph change notifications: clientState, validationToken)",
    secret: () => str(ALNUM + "-_.", 8 + int(100)),
    build(secret, body) {
      if (chance(0.15)) {
        const token = `Validation: ${unicode(3 + int(10))}`;
        return { method: "POST", url: `${randomUrl({ query: false })}?validationToken=${encodeURIComponent(token)}`,
          body: Buffer.alloc(0), headers: [["Content-Type", "text/plain; charset=utf-8"]], noSignature: true };
      }
      const value = Array.from({ length: 1 + int(3) }, () => ({
        subscriptionId: crypto.randomUUID(), clientState: secret, changeType: pick(["created", "updated", "deleted"]),
        resource: `Users/${crypto.randomUUID()}/Messages`, note: body.toString().slice(0, 200),
      }));
      return { method: "POST", url: randomUrl(), body: Buffer.from(JSON.stringify({ value })),
        headers: [["Content-Type", "application/json"]] };
    },
    judge(c) {
      const url = new URL(c.url.replace(/^([a-z]+:\/\/)\[::1\]/i, "$1localhost"));
      const token = url.searchParams.get("validationToken");
      const ct = lower(c.headers)["content-type"] || "";
      if (token && c.method === "POST" && (!c.body.length || /^text\/plain(;| |$)/i.test(ct))) return "ok";
      if (!c.body.length) return "invalid";
      let doc;
      try {
        doc = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(c.body));
      } catch {
        return "invalid";
      }
      if (!doc || typeof doc !== "object" || Array.isArray(doc) || !Array.isArray(doc.value) || !doc.value.length) return "invalid";
      const secrets = secretsOf(c);
      for (const item of doc.value) {
        if (!item || typeof item !== "object" || typeof item.clientState !== "string") return "signature";
        if (!secrets.includes(item.clientState) && item.clientState !== c.secret.trim()) return "signature";
      }
      return "ok";
    },
  },
};

function hubspot(version) {
  const v3 = version === "v3";
  return {
    oracle: sdkName("@hubspot/api-client"),
    tsFirst: v3,
    tsUnit: v3 ? 1000 : undefined,
    secret: () => crypto.randomUUID(),
    build(secret, body, ts) {
      const method = !v3 && chance(0.2) ? "GET" : "POST";
      const b = method === "GET" ? Buffer.alloc(0) : body;
      const url = randomUrl();
      const tms = ts * 1000 + int(1000);
      const sig = HubSpotSignature.getSignature(method, version, { clientSecret: secret, requestBody: b.toString(), url, timestamp: tms });
      const headers = v3
        ? [["X-HubSpot-Signature-v3", sig], ["X-HubSpot-Request-Timestamp", String(tms)]]
        : [["X-HubSpot-Signature", sig], ["X-HubSpot-Signature-Version", version]];
      return { method, url, body: b, headers };
    },
    sigHeader: v3 ? /^x-hubspot-signature-v3$/i : /^x-hubspot-signature$/i, sigChars: v3 ? B64 : HEX, sigAfter: "",
    tsHeader: v3 ? /^x-hubspot-request-timestamp$/i : undefined,
    judge(c) {
      const h = lower(c.headers);
      const sig = h[v3 ? "x-hubspot-signature-v3" : "x-hubspot-signature"];
      const ts = h["x-hubspot-request-timestamp"];
      if (!sig || (v3 && !ts)) return "invalid";
      if (v3 && !/^\d{1,18}$/.test(ts)) return "invalid";
      return combine(secretsOf(c).map((s) => withNow(c.now, () => {
        try {
          return HubSpotSignature.isValid({ signatureVersion: version, signature: sig, clientSecret: s,
            requestBody: c.body.toString(), url: c.url, method: c.method, timestamp: v3 ? Number(ts) : undefined }) ? "ok" : "signature";
        } catch (e) {
          if (/Timestamp is invalid/.test(e.message)) return "replay";
          throw e;
        }
      })));
    },
  };
}

// ---------------------------------------------------------------------------
// Expected verdicts: the judge's, except for the documented symmetric window.

function tsOf(scheme, c) {
  const S = SCHEMES[scheme];
  if (!S.tsHeader) return null;
  const hv = c.headers.find(([k]) => S.tsHeader.test(k))?.[1]?.trim();
  if (!hv) return null;
  const m = S.tsAfter ? new RegExp(`(?:^|,)${S.tsAfter}(\\d{1,18})(?:,|$)`).exec(hv) : /^(\d{1,18})$/.exec(hv);
  return m ? Number(m[1]) : null;
}

// starkbank-ecdsa (inside @sendgrid/eventwebhook) parses DER leniently: a
// signature whose (r, s) is genuine but whose DER lengths are not canonical
// passes. The library (mbedTLS) requires strict DER, as OpenSSL does: when the
// SDK says ok and OpenSSL's strict verifier says no, the verdict is signature.
function sendgridStrictDer(c) {
  const h = lower(c.headers);
  const sig = Buffer.from(h["x-twilio-email-event-webhook-signature"] ?? "", "base64");
  const data = Buffer.concat([Buffer.from(h["x-twilio-email-event-webhook-timestamp"] ?? ""), c.body]);
  return secretsOf(c).some((s) => {
    try {
      const key = crypto.createPublicKey({ key: Buffer.from(s, "base64"), format: "der", type: "spki" });
      return crypto.verify("sha256", data, key, sig);
    } catch {
      return false;
    }
  });
}

function expectFor(scheme, c, sdk) {
  if (scheme === "sendgrid" && sdk === "ok" && !sendgridStrictDer(c))
    return { expect: "signature", deviation: "the SendGrid SDK (starkbank-ecdsa) accepts non-canonical DER encodings; the library requires strict DER, as OpenSSL" };
  return expectWindow(scheme, c, sdk);
}

function expectWindow(scheme, c, sdk) {
  const S = SCHEMES[scheme];
  const ts = tsOf(scheme, c);
  if (ts === null || c.tolerance < 0 || S.tsFirst === undefined) return { expect: sdk };
  const unit = S.tsUnit || 1;
  const outside = Math.abs(c.now * unit - ts) > (c.tolerance || 300) * unit;
  if (!outside) return { expect: sdk };
  let expect = sdk;
  if (S.tsFirst && sdk !== "invalid") expect = "replay";
  if (!S.tsFirst && sdk === "ok") expect = "replay";
  if (expect === sdk) return { expect };
  return { expect, deviation: scheme === "sendgrid"
    ? "the SendGrid SDK checks no timestamp; the library applies the ±tolerance window"
    : "the library's window is symmetric (±tolerance); the SDK rejects only too-old timestamps" };
}

// ---------------------------------------------------------------------------
// Tampering

function tamperHeaderChars(c, headerRe, alphabet, after, digitsOnly) {
  const i = c.headers.findIndex(([k]) => headerRe.test(k));
  if (i < 0) return null;
  const v = c.headers[i][1];
  // candidate positions: chars of `alphabet` that follow `after` up to a separator
  const positions = [];
  if (after === "") {
    for (let k = 0; k < v.length; k++) if (alphabet.includes(v[k])) positions.push(k);
  } else {
    let k = v.indexOf(after);
    while (k >= 0) {
      let j = k + after.length;
      while (j < v.length && alphabet.includes(v[j])) positions.push(j++);
      k = v.indexOf(after, j);
    }
  }
  if (!positions.length) return null;
  const pos = pick(positions);
  const chars = digitsOnly ? "0123456789" : alphabet;
  let ch;
  do ch = pick(chars); while (ch === v[pos]);
  const headers = c.headers.map((h) => [...h]);
  headers[i][1] = v.slice(0, pos) + ch + v.slice(pos + 1);
  return { ...c, headers };
}

// ---------------------------------------------------------------------------
// Fixed vectors published in the SDKs' own test suites and docs

function vectors() {
  const V = [];
  const add = (scheme, kind, c) => V.push({ scheme, kind: `vector:${kind}`, method: "POST", url: "https://example.com/hook", tolerance: 0, ...c });
  const sw = { secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", now: 1614265330, body: Buffer.from('{"test": 2432232314}') };
  const swh = (sig) => [["webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek"], ["webhook-timestamp", "1614265330"], ["webhook-signature", sig]];
  const src = "standard-webhooks libraries/javascript/src/webhook.test.ts";
  add("standard", src, { ...sw, headers: swh("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=") });
  add("standard", src, { ...sw, secret: "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", headers: swh("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=") });
  add("standard", src, { ...sw, headers: swh("v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= v2,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=") });
  add("standard", src, { ...sw, headers: swh("v1,dawfeoifkpqwoekfpqoekf") });
  add("standard", src, { ...sw, headers: swh("v1,") });
  add("standard", src, { ...sw, now: 1614265330 + 301, headers: swh("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=") });
  add("standard", src, { ...sw, now: 1614265330 - 301, headers: swh("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=") });

  const stBody = Buffer.from('{\n  "id": "evt_123",\n  "object": "event",\n  "account": "acct_123",\n  "api_version": "2017-05-25",\n  "created": 1533204620,\n  "data": {\n    "object": {\n      "id": "cus_123",\n      "object": "customer",\n      "created": 123456789,\n      "email": "test@stripe.com",\n      "livemode": false,\n      "metadata": {}\n    }\n  },\n  "livemode": false,\n  "pending_webhooks": 1,\n  "request": {\n    "id": "req_123",\n    "idempotency_key": "idempotency-key-123"\n  },\n  "type": "customer.created"\n}\n');
  const stHeader = "t=1533204620,v1=2220f87ef101a04665f11cdf770523143f875572008577fa0f20882ddb9cc3c7,v0=63f3a72374a733066c4be69ed7f8e5ac85c22c9f0a6a612ab9a025a9e4ee7eef";
  const stSrc = "stripe-dotnet src/StripeTests/Services/Events/EventUtilityTest.cs";
  add("stripe", stSrc, { secret: "webhook_secret", now: 1533204720, tolerance: 300, body: stBody, headers: [["Stripe-Signature", stHeader]] });
  add("stripe", stSrc, { secret: "webhook_secret", now: 1533205020, tolerance: 300, body: stBody, headers: [["Stripe-Signature", stHeader]] });
  add("stripe", stSrc, { secret: "webhook_secret", now: 1533204720, tolerance: 300, body: Buffer.concat([stBody, Buffer.from("this_changes_the_json")]), headers: [["Stripe-Signature", stHeader]] });
  for (const bad of ["t=,v1=2220f87ef101a04665f11cdf770523143f875572008577fa0f20882ddb9cc3c7,v0=63f3a72374a733066c4be69ed7f8e5ac85c22c9f0a6a612ab9a025a9e4ee7eef",
    "t,v1=,v0=", "t,v1=,v0", "t,v1=,", "t,,", ",,", "t"])
    add("stripe", `${stSrc} ValidateSignatureHandlesIncorrectHeaderValues`, { secret: "webhook_secret", now: 1533204720, body: Buffer.from("{}"), headers: [["Stripe-Signature", bad]] });

  const ghSrc = "octokit/webhooks-methods.js test/sign.test.ts";
  add("github", ghSrc, { secret: "mysecret", now: NOW0, body: Buffer.from('{"foo":"bar"}'), headers: [["X-Hub-Signature-256", "sha256=4864d2759938a15468b5df9ade20bf161da9b4f737ea61794142f3484236bda3"]] });
  add("github", "GitHub docs validating-webhook-deliveries", { secret: "It's a Secret to Everybody", now: NOW0, body: Buffer.from("Hello, World!"), headers: [["X-Hub-Signature-256", "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"]] });

  const slBody = Buffer.from("token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c");
  const slH = [["X-Slack-Request-Timestamp", "1531420618"], ["X-Slack-Signature", "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"]];
  const slSrc = "python-slack-sdk tests/slack_sdk/signature/test_signature_verifier.py";
  add("slack", slSrc, { secret: "8f742231b10e8888abcd99yyyzzz85a5", now: 1531420618, body: slBody, headers: slH });
  add("slack", slSrc, { secret: "8f742231b10e8888abcd99yyyzzz85a5", now: 1531420618, body: Buffer.concat([slBody, Buffer.from("------")]), headers: slH });
  add("slack", slSrc, { secret: "8f742231b10e8888abcd99yyyzzz85a5", now: 1531420618 + 301, body: slBody, headers: slH });

  const hs = { secret: "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy", url: "https://www.example.com/webhook_uri", body: Buffer.from("{'example_field':'example_value'}"), now: 15000 };
  const hsSrc = "hubspot-api-python tests/spec/utils/test_signature.py";
  add("hubspot-v1", hsSrc, { ...hs, headers: [["X-HubSpot-Signature", "69fc6631a867edd4f9e9e627fc5c1148e3fbdd8b21837b6d2b8901c1fa57f750"]] });
  add("hubspot-v2", hsSrc, { ...hs, headers: [["X-HubSpot-Signature", "4fe4e3a7d3cf09db53be39d0a58130e2aaba074ec123a9e355b876a689a1c383"]] });
  add("hubspot-v2", hsSrc, { ...hs, method: "GET", body: Buffer.alloc(0), headers: [["X-HubSpot-Signature", "eee2dddcc73c94d699f5e395f4b9d454a069a6855fbfa152e91e88823087200e"]] });
  add("hubspot-v3", hsSrc, { ...hs, headers: [["X-HubSpot-Signature-v3", "HPW73RUtKmcYoEDADG0s6MmGFWUzWJKAW07r8RDgcQw="], ["X-HubSpot-Request-Timestamp", "15000000"]] });
  add("hubspot-v3", hsSrc, { ...hs, now: 15301, headers: [["X-HubSpot-Signature-v3", "HPW73RUtKmcYoEDADG0s6MmGFWUzWJKAW07r8RDgcQw="], ["X-HubSpot-Request-Timestamp", "15000000"]] });
  add("hubspot-v1", "HubSpot docs v1-request-validation", { ...hs, body: Buffer.from('[{"eventId":1,"subscriptionId":12345,"portalId":62515,"occurredAt":1564113600000,"subscriptionType":"contact.creation","attemptNumber":0,"objectId":123,"changeSource":"CRM","changeFlag":"NEW","appId":54321}]'),
    headers: [["X-HubSpot-Signature", "232db2615f3d666fe21a8ec971ac7b5402d33b9a925784df3ca654d05f4817de"]] });

  const sgSrc = "sendgrid-nodejs packages/eventwebhook/src/eventwebhook.spec.js";
  const sgKey = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE83T4O/n84iotIvIW4mdBgQ/7dAfSmpqIM8kF9mN1flpVKS3GRqe62gw+2fNNRaINXvVpiglSI8eNEc6wEA3F+g==";
  const sgSig = "MEUCIGHQVtGj+Y3LkG9fLcxf3qfI10QysgDWmMOVmxG0u6ZUAiEAyBiXDWzM+uOe5W0JuG+luQAbPIqHh89M15TluLtEZtM=";
  const sgBody = Buffer.from(JSON.stringify([{ email: "hello@world.com", event: "dropped", reason: "Bounced Address", sg_event_id: "ZHJvcC0xMDk5NDkxOS1MUnpYbF9OSFN0T0doUTRrb2ZTbV9BLTA", sg_message_id: "LRzXl_NHStOGhQ4kofSm_A.filterdrecv-p3mdw1-756b745b58-kmzbl-18-5F5FC76C-9.0", "smtp-id": "<LRzXl_NHStOGhQ4kofSm_A@ismtpd0039p1iad1.sendgrid.net>", timestamp: 1600112492 }]) + "\r\n");
  const sgH = (sig, ts) => [["X-Twilio-Email-Event-Webhook-Signature", sig], ["X-Twilio-Email-Event-Webhook-Timestamp", ts]];
  add("sendgrid", sgSrc, { secret: sgKey, now: 1600112502, body: sgBody, headers: sgH(sgSig, "1600112502") });
  add("sendgrid", sgSrc, { secret: sgKey, now: NOW0, tolerance: -1, body: sgBody, headers: sgH(sgSig, "1600112502") });
  add("sendgrid", sgSrc, { secret: "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEqTxd43gyp8IOEto2LdIfjRQrIbsd4SXZkLW6jDutdhXSJCWHw8REntlo7aNDthvj+y7GjUuFDb/R1NGe1OPzpA==", now: 1600112502, body: sgBody, headers: sgH(sgSig, "1600112502") });
  add("sendgrid", sgSrc, { secret: sgKey, now: 1600112502, body: Buffer.from("payload"), headers: sgH(sgSig, "1600112502") });
  add("sendgrid", sgSrc, { secret: sgKey, now: 1600112502, body: sgBody, headers: sgH(sgSig, "1600112503") });
  const evs = [{ email: "invalid@gmail.com", event: "processed", send_at: 0, sg_event_id: "cHJvY2Vzc2VkLTE5OTQyMTEyLXFOd0JMZ1BRUWpXNkRKdktRd1NBYnctMA", sg_message_id: "qNwBLgPQQjW6DJvKQwSAbw.filterdrecv-canary-547b64655b-cw6zx-1-6089EA4A-56.0", "smtp-id": "<qNwBLgPQQjW6DJvKQwSAbw@ismtpd0178p1mdw1.sendgrid.net>", timestamp: 1619651146 },
    { email: "invalid@gmail.com", event: "bounce", ip: "167.89.101.76", reason: "552 5.2.2 The email account that you tried to reach is over quota and inactive. Please direct the recipient to https://support.google.com/mail/?p=OverQuotaPerm c17si1130468pgv.34 - gsmtp", sg_event_id: "Ym91bmNlLTAtMTk5NDIxMTItcU53QkxnUFFRalc2REp2S1F3U0Fidy0w", sg_message_id: "qNwBLgPQQjW6DJvKQwSAbw.filterdrecv-canary-547b64655b-cw6zx-1-6089EA4A-56.0", "smtp-id": "<qNwBLgPQQjW6DJvKQwSAbw@ismtpd0178p1mdw1.sendgrid.net>", status: "5.2.2", timestamp: 1619651147, tls: 1, type: "blocked" }];
  add("sendgrid", sgSrc, { secret: "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEQ4LIFtWztlsF7skFqOncjD1lun4H5w8XOhyOArHW9RcIx/FfEzx6cikC/yPfUvwaX/JScE7Fc9CJD2afQ9Ok3Q==",
    now: 1619651159, body: Buffer.from(JSON.stringify(evs).split("},{").join("},\r\n{") + "\r\n"),
    headers: sgH("MEYCIQC/I4o6vCgqRYrTljjoVWB/GRWNtxeePlLMHr3x9ETeRQIhAIpV+03nREPTTHWSW0wIOA0EoMPdcNgXa70yCaqDJlu5", "1619651159") });

  const twSrc = "twilio-python tests/unit/test_request_validator.py";
  const twUrl = "https://mycompany.com/myapp.php?foo=1&bar=2";
  const twForm = Buffer.from(querystring.stringify({ CallSid: "CA1234567890ABCDE", Caller: "+14158675309", Digits: "1234", From: "+14158675309", To: "+18005551212" }));
  const form = [["Content-Type", "application/x-www-form-urlencoded"]];
  const tw = (url, sig, body = twForm, extra = form) => ({ secret: "12345", now: NOW0, url, body, headers: [["X-Twilio-Signature", sig], ...extra] });
  add("twilio", twSrc, tw(twUrl, "RSOYDt4T1cUTdK1PDd93/VVr8B8="));
  add("twilio", twSrc, tw(twUrl.replace(".com", ".com:1234"), "RSOYDt4T1cUTdK1PDd93/VVr8B8="));
  add("twilio", twSrc, tw(twUrl.replace(".com", ".com:1234").replace("https", "http"), "Zmvh+3yNM1Phv2jhDCwEM3q5ebU="));
  add("twilio", twSrc, tw(twUrl, "kvajT1Ptam85bY51eRf/AJRuM3w="));
  add("twilio", twSrc, tw(twUrl.replace("https", "http"), "0ZXoZLH/DfblKGATFgpif+LLRf4="));
  add("twilio", twSrc, tw(twUrl, "IK+Dwps556ElfBT0I3Rgjkr1wJU=", Buffer.from("Sid=CA123&SidAccount=AC123&Digits=5678&Digits=1234")));
  add("twilio", twSrc, tw(`${twUrl}&bodySHA256=0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620`, "a9nBmqA0ju/hNViExpshrM61xv4=",
    Buffer.from('{"property": "value", "boolean": true}'), [["Content-Type", "application/json"]]));
  return V;
}

// ---------------------------------------------------------------------------
// Emit

const out = [];
async function emit(scheme, c, kind) {
  const S = SCHEMES[scheme];
  currentScheme = scheme;
  const sdk = await S.judge(c);
  const { expect, deviation } = expectFor(scheme, c, sdk);
  const line = { scheme, secret: c.secret, method: c.method, url: c.url, headers: c.headers,
    body_b64: c.body.toString("base64"), now: c.now, tolerance: c.tolerance, expect, sdk, oracle: S.oracle, kind };
  if (deviation) line.deviation = deviation;
  out.push(JSON.stringify(line));
}

// Header names in random case, values sometimes with surrounding spaces (an
// HTTP parser trims them; so does the library).
function jitter(headers) {
  return headers.map(([k, v]) => [
    pick([k, k.toLowerCase(), k.toUpperCase(), k]),
    chance(0.1) ? ` ${v}\t` : v,
  ]);
}

for (const v of vectors()) {
  const { scheme, kind, ...c } = v;
  await emit(scheme, { method: "POST", ...c }, kind.replace(/^vector:/, "vector:"));
}

for (const [scheme, S] of Object.entries(SCHEMES)) {
  for (let n = 0; n < PER_SCHEME; n++) {
    const signSecret = S.secret();
    const rotation = chance(0.3);
    const other = S.secret();
    const secret = rotation ? (chance(0.5) ? `${other} ${signSecret}` : `${signSecret} ${other}`) : signSecret;
    const now = randomNow();
    const tolerance = S.tsHeader ? pick(S.tolerances || [0]) : pick([0, -1]);
    const window = tolerance > 0 ? tolerance : 300;
    const ts = now - int(window) + (chance(0.3) ? int(window) : 0);
    const body = Buffer.from(payloadText());
    const req = await S.build(signSecret, body, ts);
    const c = { secret, now, tolerance, ...req, headers: jitter(req.headers) };
    const base = rotation ? "rotation" : "valid";
    await emit(scheme, c, req.noSignature ? "handshake" : base);
    if (req.noSignature) continue;

    if (c.body.length) { // one byte of the body
      const b = Buffer.from(c.body);
      const i = int(b.length);
      b[i] = (b[i] + 1 + int(255)) & 0xff;
      await emit(scheme, { ...c, body: b }, "tamper-body");
    }
    if (S.sigHeader) { // one character of the signature, within its alphabet
      const t = tamperHeaderChars(c, S.sigHeader, S.sigChars, S.sigAfter, false);
      if (t) await emit(scheme, t, "tamper-signature");
    } else if (scheme === "msgraph") { // one character of one clientState
      const doc = JSON.parse(c.body.toString());
      const item = pick(doc.value);
      const k = int(item.clientState.length);
      item.clientState = item.clientState.slice(0, k) + (item.clientState[k] === "x" ? "y" : "x") + item.clientState.slice(k + 1);
      await emit(scheme, { ...c, body: Buffer.from(JSON.stringify(doc)) }, "tamper-signature");
      delete item.clientState;
      await emit(scheme, { ...c, body: Buffer.from(JSON.stringify(doc)) }, "missing-signature");
    }
    if (S.tsHeader) { // one digit of the timestamp, not re-signed
      const t = tamperHeaderChars(c, S.tsHeader, "0123456789", S.tsAfter || "", true);
      if (t) await emit(scheme, t, "tamper-timestamp");
      for (const [kind, dir] of [["stale-old", -1], ["stale-new", 1]]) { // genuine but outside the window
        const tol = tolerance > 0 ? tolerance : 300;
        const ts2 = now + dir * (tol + 1 + int(chance(0.5) ? 5 : 100000));
        const r2 = await S.build(signSecret, body, ts2);
        await emit(scheme, { secret, now, tolerance: tolerance < 0 ? 0 : tolerance, ...r2 }, kind);
      }
    }
    // the wrong secret
    await emit(scheme, { ...c, secret: S.secret() }, "wrong-secret");
    // the signature header missing
    if (S.sigHeader) await emit(scheme, { ...c, headers: c.headers.filter(([k]) => !S.sigHeader.test(k)) }, "missing-signature");
  }
}

process.stdout.write(out.join("\n") + "\n");

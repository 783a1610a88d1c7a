'use strict';
// Node binding of libintegrations. The classes Context and Session come from
// the native addon (src/addon.c); this file finds the addon, defines the
// error classes and hands the addon a factory so that it throws them.

const fs = require('node:fs');
const path = require('node:path');

function addonCandidates() {
  const list = [];
  if (process.env.INTEG_NODE_ADDON) list.push(path.resolve(process.env.INTEG_NODE_ADDON));
  list.push(path.join(__dirname, 'integrations.node'));
  list.push(path.join(__dirname, '..', '..', 'build', 'bindings', 'integrations.node'));
  return list;
}

function loadAddon() {
  const candidates = addonCandidates();
  // An explicit INTEG_NODE_ADDON is never silently replaced by another build.
  if (process.env.INTEG_NODE_ADDON) {
    if (!fs.existsSync(candidates[0])) {
      throw new Error(`INTEG_NODE_ADDON=${process.env.INTEG_NODE_ADDON}: no such file`);
    }
    return require(candidates[0]);
  }
  for (const file of candidates) {
    if (fs.existsSync(file)) return require(file);
  }
  throw new Error(
    'libintegrations Node addon not found; build it (meson setup build && ninja -C build) ' +
      'or set INTEG_NODE_ADDON to its path. Tried: ' + candidates.join(', '));
}

const addon = loadAddon();

/** The INTEG_E* codes, by their C names (without the INTEG_ prefix). */
const codes = Object.freeze({
  OK: 0,
  EINVAL: -1,
  ENOTFOUND: -2,
  EEXISTS: -3,
  EPERM: -4,
  EAUTH: -5,
  ERATELIMIT: -6,
  ENETWORK: -7,
  EREMOTE: -8,
  ESIGNATURE: -9,
  EREPLAY: -10,
  ECONFLICT: -11,
  EMAPPING: -12,
  ESTORE: -13,
  ECRYPTO: -14,
  ENOMEM: -15,
  ECANCELED: -16,
  EUNSUPPORTED: -17,
  EINTERNAL: -99,
});

/** Every failure reported by the library: `code` is the INTEG_E* value. */
class IntegrationsError extends Error {
  constructor(message, code) {
    super(message);
    this.code = code ?? new.target.code ?? codes.EINTERNAL;
  }
}
Object.defineProperty(IntegrationsError.prototype, 'name', {
  value: 'IntegrationsError', writable: true, configurable: true,
});

const byCode = new Map();
const errors = { IntegrationsError };

function defineError(name, code) {
  const cls = {
    [name]: class extends IntegrationsError {
      constructor(message, c = code) {
        super(message, c);
      }
    },
  }[name];
  Object.defineProperty(cls, 'code', { value: code, enumerable: true });
  Object.defineProperty(cls.prototype, 'name', { value: name, writable: true, configurable: true });
  byCode.set(code, cls);
  errors[name] = cls;
  return cls;
}

defineError('InvalidArgument', codes.EINVAL);
defineError('NotFound', codes.ENOTFOUND);
defineError('AlreadyExists', codes.EEXISTS);
defineError('PermissionDenied', codes.EPERM);
defineError('AuthError', codes.EAUTH);
defineError('RateLimited', codes.ERATELIMIT);
defineError('NetworkError', codes.ENETWORK);
defineError('RemoteError', codes.EREMOTE);
defineError('SignatureError', codes.ESIGNATURE);
defineError('ReplayError', codes.EREPLAY);
defineError('ConflictError', codes.ECONFLICT);
defineError('MappingError', codes.EMAPPING);
defineError('StoreError', codes.ESTORE);
defineError('CryptoError', codes.ECRYPTO);
defineError('OutOfMemory', codes.ENOMEM);
defineError('Canceled', codes.ECANCELED);
defineError('Unsupported', codes.EUNSUPPORTED);
defineError('InternalError', codes.EINTERNAL);

/** The error object for a library code (unknown codes: IntegrationsError). */
function errorFromCode(code, message) {
  const cls = byCode.get(code);
  return cls ? new cls(message, code) : new IntegrationsError(message, code);
}

// The addon builds every error it throws or rejects with through this.
addon.setErrorFactory(errorFromCode);

module.exports = {
  version: addon.version,
  strerror: addon.strerror,
  generateMasterKey: addon.generateMasterKey,
  verifyWebhook: addon.verifyWebhook,
  Context: addon.Context,
  Session: addon.Session,
  codes,
  errorFromCode,
  ...errors,
};

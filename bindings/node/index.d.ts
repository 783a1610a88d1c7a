// Typings for the Node binding of libintegrations (see README.md).
// Structured values mirror the JSON of the C API (doc/ and API.md).

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

/** The library version, "MAJOR.MINOR.PATCH". */
export function version(): string;
/** A fixed English text for an error code. */
export function strerror(code: number): string;
/** A new master key: 32 random bytes, standard base64 (44 characters). */
export function generateMasterKey(): string;

export interface HttpOptions {
  timeout_ms?: number;
  connect_timeout_ms?: number;
  max_retries?: number;
  ca_file?: string;
  proxy?: string;
  user_agent?: string;
  allow_private_networks?: boolean;
}

export interface ContextOptions {
  /** "sqlite:PATH" (default "sqlite:./integrations.db") or "sqlite::memory:". */
  store?: string;
  /** Base64 of 32 bytes; else master_key_file, else env INTEG_MASTER_KEY. */
  master_key?: string;
  master_key_file?: string;
  adapters_dir?: string;
  http?: HttpOptions;
  base_url_overrides?: {
    [definitionKey: string]: string | { api?: string; authorize_url?: string; token_url?: string };
  };
  webhook?: { base_url?: string; tolerance_s?: number; max_body_bytes?: number };
}

export type Category =
  | 'erp' | 'crm' | 'accounting' | 'ecommerce' | 'email' | 'storage' | 'communication';

export type AuthType =
  | 'oauth2' | 'oauth2_client_credentials' | 'jwt_bearer' | 'api_key' | 'basic'
  | 'session_token' | 'none';

export interface Page {
  limit?: number;
  offset?: number;
}

export interface Definition {
  id: string;
  key: string;
  name: string;
  category: Category;
  auth_type: AuthType;
  auth_types?: AuthType[];
  config_schema: JsonObject;
  capabilities: JsonValue;
  entities: JsonValue;
  base_url?: string;
  rate_limit?: JsonValue;
  webhook?: JsonValue;
  has_app_credentials: boolean;
  [key: string]: JsonValue | undefined;
}

export type IntegrationStatus = 'active' | 'paused' | 'error' | 'needs_reauth';

export interface Integration {
  id: string;
  tenant_id: string;
  integration_definition_id: string;
  integration_definition_key?: string;
  name: string;
  category: Category;
  auth_type?: AuthType;
  config: JsonObject;
  status: IntegrationStatus;
  last_sync_at: string | null;
  created_at: string;
  updated_at: string;
  has_credentials: boolean;
  [key: string]: JsonValue | undefined;
}

export interface CreateIntegrationRequest {
  /** A definition key ("hubspot-crm") or id. */
  integration_definition_id: string;
  name?: string;
  auth_type?: AuthType;
  credentials?: JsonObject;
  config?: JsonObject;
  status?: 'active' | 'paused';
}

export interface IntegrationPatch {
  name?: string;
  /** Merged onto the current config, then validated. */
  config?: JsonObject;
  status?: 'active' | 'paused';
}

export interface IntegrationFilter extends Page {
  status?: IntegrationStatus;
  category?: Category;
  integration_definition_id?: string;
}

export interface AuditEntry {
  id: string;
  tenant_id: string | null;
  user_id: string | null;
  action: string;
  object_type: string;
  object_id: string;
  at: string;
  details: JsonValue;
}

export interface AuditFilter extends Page {
  action?: string;
  object_id?: string;
  user_id?: string;
}

/**
 * Decides whether a user may perform `action` on `resource` ("integration",
 * "admin" for every write). Only `true` allows. Called synchronously on the
 * JS thread, inside the session method being checked; it must not call the
 * library. If it throws, the call is denied and the exception is rethrown
 * by that method.
 */
export type PermissionCallback =
  (tenantId: string, userId: string, resource: string, action: string) => boolean;

/** One store: the catalog of definitions plus every tenant's integrations. */
export class Context {
  /** Opens synchronously (store migration and catalog load). */
  constructor(options?: ContextOptions);
  /** Opens on the thread pool. */
  static open(options?: ContextOptions): Promise<Context>;
  readonly closed: boolean;
  definitions(filter?: { category?: Category } & Page): Definition[];
  definition(key: string): Definition;
  registerDefinition(manifest: JsonObject): Definition;
  setAppCredentials(key: string, credentials: JsonObject): void;
  /** Re-seals every secret under newKey, on the thread pool. */
  rotateMasterKey(newKey: string): Promise<void>;
  setPermissionCallback(fn: PermissionCallback | null): void;
  session(tenantId: string, userId: string, roles?: string[] | null): Session;
  /** Idempotent. Open sessions keep working until they are closed. */
  close(): void;
}

/** Who is acting: one user of one tenant. Made by Context#session. */
export class Session {
  private constructor();
  readonly tenantId: string;
  readonly userId: string;
  readonly closed: boolean;
  /** The Context this session was opened on. */
  readonly context: Context;
  createIntegration(request: CreateIntegrationRequest): Integration;
  integration(id: string): Integration;
  integrations(filter?: IntegrationFilter): Integration[];
  updateIntegration(id: string, patch: IntegrationPatch): Integration;
  setCredentials(id: string, credentials: JsonObject): void;
  deleteIntegration(id: string): void;
  audit(filter?: AuditFilter): AuditEntry[];
  /** Idempotent. */
  close(): void;
}

export const codes: Readonly<{
  OK: 0; EINVAL: -1; ENOTFOUND: -2; EEXISTS: -3; EPERM: -4; EAUTH: -5; ERATELIMIT: -6;
  ENETWORK: -7; EREMOTE: -8; ESIGNATURE: -9; EREPLAY: -10; ECONFLICT: -11; EMAPPING: -12;
  ESTORE: -13; ECRYPTO: -14; ENOMEM: -15; ECANCELED: -16; EUNSUPPORTED: -17; EINTERNAL: -99;
}>;

/** Every library failure; `code` is the INTEG_E* value, `message` the library's. */
export class IntegrationsError extends Error {
  constructor(message: string, code?: number);
  readonly code: number;
}
export class InvalidArgument extends IntegrationsError { static readonly code: -1; }
export class NotFound extends IntegrationsError { static readonly code: -2; }
export class AlreadyExists extends IntegrationsError { static readonly code: -3; }
export class PermissionDenied extends IntegrationsError { static readonly code: -4; }
export class AuthError extends IntegrationsError { static readonly code: -5; }
export class RateLimited extends IntegrationsError { static readonly code: -6; }
export class NetworkError extends IntegrationsError { static readonly code: -7; }
export class RemoteError extends IntegrationsError { static readonly code: -8; }
export class SignatureError extends IntegrationsError { static readonly code: -9; }
export class ReplayError extends IntegrationsError { static readonly code: -10; }
export class ConflictError extends IntegrationsError { static readonly code: -11; }
export class MappingError extends IntegrationsError { static readonly code: -12; }
export class StoreError extends IntegrationsError { static readonly code: -13; }
export class CryptoError extends IntegrationsError { static readonly code: -14; }
export class OutOfMemory extends IntegrationsError { static readonly code: -15; }
export class Canceled extends IntegrationsError { static readonly code: -16; }
export class Unsupported extends IntegrationsError { static readonly code: -17; }
export class InternalError extends IntegrationsError { static readonly code: -99; }

/** The error object the binding raises for a code (unknown codes: IntegrationsError). */
export function errorFromCode(code: number, message: string): IntegrationsError;

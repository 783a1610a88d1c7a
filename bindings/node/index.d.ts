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
/**
 * Verify one delivery's signature, statelessly (no Context needed). Returns
 * nothing; throws SignatureError (no secret matches), ReplayError (timestamp
 * outside the tolerance) or InvalidArgument (a malformed or missing header,
 * named in the message; an unknown scheme). Comparisons are constant time.
 */
export function verifyWebhook(options: VerifyWebhookOptions): void;

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
  /** "normal" (default): a commit survives the process crashing; "full": also an OS crash or
   *  power loss (every commit syncs). Built-in SQLite store only. */
  durability?: "normal" | "full";
  /** Base64 of 32 bytes; else master_key_file, else env INTEG_MASTER_KEY. */
  master_key?: string;
  master_key_file?: string;
  adapters_dir?: string;
  http?: HttpOptions;
  base_url_overrides?: {
    [definitionKey: string]: string | { api?: string; authorize_url?: string; token_url?: string };
  };
  webhook?: WebhookOptions;
}

export interface WebhookOptions {
  /** Endpoint URLs are base_url/<endpoint id>. */
  base_url?: string;
  /** Timestamp tolerance of signed deliveries (default 300). */
  tolerance_s?: number;
  /** Larger bodies are answered 413 (default 1 MiB). */
  max_body_bytes?: number;
  /** Failed processing attempts before an event is dead (default 8). */
  max_attempts?: number;
  /** How long a replaced secret keeps verifying (default 24 h). */
  rotation_grace_s?: number;
  /** How long receiveWebhook may use a cached endpoint (default 1000): changes made through
   *  another context or process reach receiving within this time. */
  endpoint_cache_ms?: number;
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

/** A mapping's rule (doc/mapping.md): trim, lowercase, template, ... */
export interface TransformRule {
  op: string;
  target: string;
  source?: string;
  sources?: string[];
  [key: string]: JsonValue | undefined;
}

/** What putMapping takes (doc/mapping.md). */
export interface MappingSpec {
  /** An entity of the integration's definition ("contacts"). */
  source_entity: string;
  /** The local entity records land in ("contacts"). */
  target_entity: string;
  /** {"<local path>": "<remote path>"}. */
  field_map: { [localPath: string]: string };
  transform_rules?: TransformRule[];
  required?: string[];
  reverse?: JsonObject;
}

export interface Mapping extends MappingSpec {
  id: string;
  integration_id: string;
  created_at: string;
  updated_at: string;
}

export type MappingDirection = 'pull' | 'push';

/**
 * What happens to a record changed on both sides since the last sync:
 * the more recent side wins (ties go to the remote), one side always wins,
 * a three-way merge against the last synced version, or "manual": the
 * record is held (neither side moves, it is not pushed) and an open
 * Conflict waits for Session#resolveConflict.
 */
export type ConflictStrategy = 'last_write_wins' | 'remote_wins' | 'local_wins' | 'manual' | 'merge_fields';

export interface SyncRequest {
  /** An entity of the integration's definition. */
  entity: string;
  /**
   * "pull" (default): remote changes into the local entity store. "push":
   * local records changed since their last sync go to the remote (created
   * when unlinked, updated when linked; through the batch requests where
   * the manifest declares them). "bidirectional": pull, then push.
   */
  direction?: 'pull' | 'push' | 'bidirectional';
  filter?: { modified_since?: string };
  /** Re-read everything (unchanged records are still skipped). */
  full?: boolean;
  /** Count what would happen; write nothing (locally or remotely). */
  dry_run?: boolean;
  /** Default: the integration's config.conflict_strategy, else last_write_wins. */
  conflict_strategy?: ConflictStrategy;
}

/** Passed to onProgress once per committed page. */
export interface SyncProgress {
  integration_id: string;
  entity: string;
  pages: number;
  records_processed: number;
  records_created: number;
  records_updated: number;
  records_skipped: number;
  records_failed: number;
  elapsed_ms: number;
  records_per_second: number;
}

export interface SyncOptions {
  /**
   * Runs on the JS thread once per committed page while the sync waits on
   * the thread pool. Return `true` (only `true`) to cancel: the Promise then
   * rejects with Canceled carrying `.result`. If it throws, the sync is
   * canceled and the Promise rejects with the thrown value. A returned
   * Promise is not awaited.
   */
  onProgress?: (progress: SyncProgress) => boolean | void;
}

export type SyncStatus = 'running' | 'success' | 'partial' | 'error' | 'canceled';

/** A sync's result, as its sync log entry. */
export interface SyncResult {
  sync_log_id: string;
  integration_id: string;
  entity: string;
  local_entity?: string;
  sync_type: 'full' | 'incremental' | string;
  direction?: 'pull' | 'push' | 'bidirectional';
  /** "manual", "schedule" (runDue) or "webhook". */
  trigger: string;
  dry_run?: boolean;
  status: SyncStatus;
  /** The pull side's counts (records_failed includes failed pushes). */
  records_processed: number;
  records_created: number;
  records_updated: number;
  records_skipped: number;
  records_failed: number;
  pages?: number;
  /** Remote deletions soft-deleted locally. */
  records_deleted?: number;
  /** Records changed on both sides (held ones included). */
  conflicts: number;
  conflict_strategy?: ConflictStrategy;
  /** Push and bidirectional runs: created + updated + deleted remotely. */
  records_pushed?: number;
  /** Push and bidirectional runs: the push side's counts. */
  push?: PushCounts;
  errors: { record: JsonValue; code: number; message: string }[];
  started_at: string;
  completed_at: string | null;
  /** "scheduler" for the syncs runDue runs. */
  user_id: string;
  [key: string]: JsonValue | undefined;
}

/** SyncResult.push. */
export interface PushCounts {
  processed: number;
  created: number;
  updated: number;
  deleted: number;
  /** Creates of an earlier, interrupted run found remotely by lookup. */
  adopted: number;
  skipped: number;
  failed: number;
  [key: string]: number;
}

export type ConflictStatus = 'open' | 'resolved';

/** A record changed on both sides (Session#conflicts). */
export interface Conflict {
  id: string;
  integration_id: string;
  /** The remote entity ("contacts"). */
  entity: string;
  local_entity: string;
  local_id: string;
  external_id: string;
  /** The local data when the conflict was (last) detected. */
  local: JsonObject;
  /** The remote record, mapped to local data. */
  remote: JsonObject;
  /** What both sides held at the last sync. */
  base: JsonObject | null;
  /** merge_fields: the fields changed on both sides. */
  fields: string[];
  strategy: ConflictStrategy;
  status: ConflictStatus;
  /** "remote", "local", "merged" (a strategy), or "data" (resolved by hand). */
  resolution: string | null;
  /** The user who resolved it, or "strategy". */
  resolved_by: string | null;
  created_at: string;
  resolved_at: string | null;
  [key: string]: JsonValue | undefined;
}

export interface ConflictFilter extends Page {
  status?: ConflictStatus;
  entity?: string;
}

/** Keep one side's data, or give the merged data. */
export type ConflictResolution = { choose: 'local' | 'remote' } | { data: JsonObject };

/** One scheduled sync of runDue. */
export interface ScheduledSync {
  tenant_id: string;
  integration_id: string;
  entity: string;
  /** "skipped": a sync of the integration was already running. */
  status: SyncStatus | 'skipped';
  sync_log_id?: string;
  records_processed?: number;
  /** On error or skipped: the INTEG_E* code and the message. */
  code?: number;
  error?: string;
}

export interface RunDueResult {
  syncs: ScheduledSync[];
  /** The webhook events processed with the remaining budget. */
  webhooks: WebhookProcessResult;
}

export interface SyncLogFilter extends Page {
  entity?: string;
  status?: SyncStatus;
}

/** testIntegration's answer: a failed check is success false, not an error. */
export interface ConnectionTest {
  success: boolean;
  /** The real reason on failure ("... HTTP 401: ..."). */
  message: string;
  code: number;
  http_status?: number;
  [key: string]: JsonValue | undefined;
}

export interface EntityLink {
  integration_id: string;
  external_id: string;
  remote_updated_at: string | null;
  [key: string]: JsonValue | undefined;
}

/** A record of a local entity. */
export interface EntityRecord {
  id: string;
  entity: string;
  data: JsonObject;
  updated_at: string;
  deleted: boolean;
  version: number;
  /** From entity() and putEntity(). */
  links?: EntityLink[];
}

export interface EntityFilter extends Page {
  updated_since?: string;
  include_deleted?: boolean;
}

/** Create ({data}) or replace ({id, data}: the record must exist). */
export interface EntityInput {
  id?: string;
  data: JsonObject;
}

// ---- Webhooks (doc/webhooks.md) ------------------------------------------

export type WebhookScheme =
  | 'standard' | 'standard-ed25519' | 'github' | 'github-sha1' | 'slack' | 'stripe' | 'shopify'
  | 'woocommerce' | 'hubspot-v1' | 'hubspot-v2' | 'hubspot-v3' | 'sendgrid' | 'twilio' | 'basic'
  | 'msgraph';

export interface WebhookEndpointRequest {
  /** Override the definition's scheme. */
  scheme?: WebhookScheme;
  /** Event types or "prefix*" patterns to queue; empty or absent: all. */
  events?: string[];
  /** When the provider dictates it (Shopify app secret, SendGrid public key, ...). */
  secret?: string;
  active?: boolean;
  description?: string | null;
}

export interface WebhookEndpoint {
  id: string;
  integration_id: string;
  /** webhook.base_url + "/" + id: register this with the provider. */
  url: string;
  scheme: WebhookScheme;
  secret_source?: string;
  events: string[];
  active: boolean;
  description: string | null;
  created_at: string;
  updated_at: string;
  secret_rotated_at: string | null;
  has_previous_secret: boolean;
  [key: string]: JsonValue | undefined;
}

/** From createWebhookEndpoint and rotateWebhookSecret only: the secret, shown once. */
export interface WebhookEndpointWithSecret extends WebhookEndpoint {
  /** "whsec_..." when generated. */
  secret: string;
}

export interface WebhookEndpointPatch {
  events?: string[];
  active?: boolean;
  /** null clears it. */
  description?: string | null;
  scheme?: WebhookScheme;
  /** A provider-dictated secret; the old one verifies for webhook.rotation_grace_s. */
  secret?: string;
}

export type WebhookEventStatus = 'queued' | 'processing' | 'retry' | 'processed' | 'dead';

export interface WebhookEvent {
  id: string;
  endpoint_id: string;
  integration_id: string;
  /** The provider's delivery id (de-duplication), or a hash of the body. */
  event_id: string;
  event_type: string | null;
  status: WebhookEventStatus;
  attempts: number;
  received_at: string;
  processed_at: string | null;
  last_error: string | null;
  /** For queued and retrying events. */
  next_attempt_at?: string;
  result?: JsonValue;
  [key: string]: JsonValue | undefined;
}

export interface WebhookEventFilter extends Page {
  endpoint_id?: string;
  integration_id?: string;
  status?: WebhookEventStatus;
}

/**
 * Request headers: [name, value] pairs (an array, a Map, fetch's Headers, any
 * iterable of pairs) or an object such as Node's req.headers (array values
 * are repeated headers; undefined values are skipped). Names match
 * case-insensitively.
 */
export type WebhookHeaders =
  | Iterable<readonly [string, string]>
  | { [name: string]: string | string[] | undefined };

/** The raw body, byte for byte (a string is taken as UTF-8). */
export type WebhookBody = string | ArrayBufferView | ArrayBuffer;

export interface WebhookRequest {
  /** Default "POST". */
  method?: string;
  /** The URL as received (some schemes sign it); default "". */
  url?: string;
  headers?: WebhookHeaders | null;
  body?: WebhookBody | null;
}

/** What to answer the provider with. */
export interface WebhookResponse {
  /** 202 accepted; 200 duplicate, ignored or a handshake; 401; 404; 413. */
  status: number;
  /**
   * A JSON status object ({"status":"accepted","id"}, ...), or for a
   * handshake the text to echo (Graph validationToken, Slack challenge):
   * send that as text/plain.
   */
  body: string;
  /** Why, after a 4xx answer: for the host's logs, never for the sender. */
  reason?: string;
}

export interface VerifyWebhookOptions extends WebhookRequest {
  scheme: WebhookScheme;
  /** The endpoint's secret, or several during a rotation (any one verifies). */
  secret: string | string[];
  /** The time to check timestamps against: unix seconds or a Date (default: now). */
  now?: number | Date | null;
  /** Seconds; 0 or absent: the scheme's default (300); negative: skip the check. */
  tolerance?: number | null;
}

export interface WebhookProcessResult {
  /** Events this call leased. */
  claimed: number;
  processed: number;
  /** Handling failed, recorded as retry or dead. */
  failed: number;
  /** Dead-lettered by this call, including events found with their last lease expired (not in claimed). */
  dead: number;
  /** Taken over by another worker after this call's lease ran out: nothing of this call's applied. */
  lost: number;
  /** Deleted during the round, with its endpoint or integration. */
  gone: number;
  /** The store failed to record the outcome: taken again when the lease expires. */
  errors: number;
  events: {
    id: string;
    endpoint_id: string;
    status: 'processed' | 'retry' | 'dead' | 'lost' | 'gone' | 'error';
    /** Status 'processed': {records_created, records_updated, records_failed, items_ignored}. */
    result?: JsonValue;
    /** Statuses 'retry', 'dead' and 'error'. */
    error?: string;
    /** The store's error code (status 'error'). */
    code?: number;
  }[];
}

// ---- Events -----------------------------------------------------------------

interface EventBase {
  /** RFC 3339. */
  at: string;
  tenant_id: string;
  integration_id: string;
  [key: string]: JsonValue | undefined;
}

export interface WebhookDeadEvent extends EventBase {
  type: 'webhook.dead';
  /** The WebhookEvent's id (replayWebhookEvent takes it). */
  event_id: string;
  /** The provider's delivery id: the WebhookEvent's event_id. */
  delivery_id: string;
  endpoint_id: string;
  attempts: number;
  last_error: string;
}

export interface NeedsReauthEvent extends EventBase {
  type: 'integration.needs_reauth';
  reason: string;
}

/** After every sync that did not end canceled (manual, scheduled or a webhook's). */
export interface SyncEvent extends EventBase {
  type: 'sync.completed' | 'sync.failed';
  entity: string;
  sync_log_id: string;
  status: SyncStatus;
  trigger: string;
  direction: string;
  records_processed: number;
  records_created: number;
  records_updated: number;
  records_skipped: number;
  records_failed: number;
  records_deleted: number;
  /** Runs that push (direction "push" or "bidirectional"). */
  records_pushed?: number;
  conflicts: number;
  /** sync.failed: why. */
  error?: string;
  code?: number;
}

/** A record changed on both sides; outcome "held" leaves an open Conflict. */
export interface ConflictDetectedEvent extends EventBase {
  type: 'conflict.detected';
  conflict_id: string;
  entity: string;
  local_id: string;
  external_id: string;
  strategy: ConflictStrategy;
  outcome: 'held' | 'remote' | 'local' | 'merged';
}

/** @deprecated use SyncEvent | ConflictDetectedEvent. */
export type OtherEvent = SyncEvent | ConflictDetectedEvent;

export type IntegrationsEvent = WebhookDeadEvent | NeedsReauthEvent | SyncEvent | ConflictDetectedEvent;

/**
 * Receives the library's notifications on the JS thread, each as its own
 * task (never inside a library call, so it may call the library). Events
 * raised by a Promise-returning method are delivered before that Promise
 * settles; others (from synchronous methods) soon after the method returns.
 * A throw is an uncaught exception, as from an EventEmitter listener.
 */
export type EventCallback = (event: IntegrationsEvent) => void;

// ---- OAuth (doc/oauth.md) -----------------------------------------------------

export interface OAuthBeginRequest {
  /** A definition key ("hubspot-crm") or id with an oauth2 auth method. */
  integration_definition_id: string;
  redirect_uri: string;
  name?: string;
  config?: JsonObject;
  /** Extra to the manifest's scopes. */
  scopes?: string[];
  /** Re-authorise an existing integration instead of creating one. */
  integration_id?: string;
}

export interface OAuthBegin {
  /** Send the user here; the provider redirects to redirect_uri with code and state. */
  authorize_url: string;
  /** Single use, 10 minutes. */
  state: string;
  expires_at: string;
}

/** The callback's query parameters. */
export interface OAuthCallback {
  state: string;
  code?: string;
  error?: string;
  error_description?: string;
  [param: string]: string | undefined;
}

/**
 * Decides whether a user may perform `action` on `resource` ("integration",
 * "admin" for every write). Only `true` allows; it must not call the
 * library. Synchronous methods call it on the JS thread, inside the method
 * being checked: if it throws, the call is denied and the exception is
 * rethrown by that method. Promise-returning methods whose check runs on
 * the thread pool (sync) call it on the JS thread through a threadsafe
 * function while the worker waits; if it throws, the Promise rejects with
 * the exception.
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
  /** Set or clear the notification callback (see EventCallback). */
  setEventCallback(fn: EventCallback | null): void;
  /**
   * Handle one HTTP delivery to an endpoint (the last path segment of its
   * URL): verified and durably queued before it returns. An error is thrown
   * only when no answer could be made (store down).
   */
  receiveWebhook(endpointId: string, request: WebhookRequest): WebhookResponse;
  /**
   * Process up to maxEvents (1..10000, default 100) due events of every
   * tenant, on the thread pool (a fetch may hit the network).
   */
  processWebhooks(maxEvents?: number | null): Promise<WebhookProcessResult>;
  /**
   * Finish an OAuth flow from the callback's query, on the thread pool (the
   * code exchange). An unknown or used state rejects with NotFound, an
   * expired one or a provider error with AuthError.
   */
  completeOAuth(callback: OAuthCallback): Promise<Integration>;
  /**
   * Run what is due, on the thread pool: the scheduled syncs of active
   * integrations with config auto_sync (at most maxJobs integrations,
   * 1..10000, default 100; each entity of config.entities, else every
   * listable one), run as the tenant's user "scheduler" with trigger
   * "schedule" (a permission callback is asked on the JS thread), then
   * queued webhook events with the remaining budget. A failed sync is an
   * entry with status "error", not a rejection.
   */
  runDue(maxJobs?: number | null): Promise<RunDueResult>;
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

  /** Create or replace the integration's mapping for mapping.source_entity. */
  putMapping(integrationId: string, mapping: MappingSpec): Mapping;
  mappings(integrationId: string): Mapping[];
  deleteMapping(mappingId: string): void;
  /** Preview a stored mapping on one record; writes nothing. */
  applyMapping(mappingId: string, record: JsonObject, direction?: MappingDirection | null): JsonObject;

  /**
   * Run a sync now, on the thread pool (it blocks on the network). Only one
   * sync per integration runs at a time: another one is ConflictError, and
   * while it runs this session's other calls throw ConflictError.
   */
  sync(integrationId: string, request: SyncRequest, options?: SyncOptions | null): Promise<SyncResult>;
  /** Newest first. */
  syncLogs(integrationId: string, filter?: SyncLogFilter | null): SyncResult[];
  /** The definition's cheap authenticated call, on the thread pool. */
  testIntegration(id: string): Promise<ConnectionTest>;
  /** The integration's conflicts, newest first (resolved ones too). */
  conflicts(integrationId: string, filter?: ConflictFilter | null): Conflict[];
  /**
   * Resolve an open conflict, on the thread pool: the chosen data is written
   * locally and (unless it is the remote's) to the remote through the
   * entity's update request; the record then syncs normally again. An
   * unknown id (or another tenant's) rejects with NotFound, a resolved one
   * with ConflictError, a bad resolution with InvalidArgument.
   */
  resolveConflict(conflictId: string, resolution: ConflictResolution): Promise<void>;

  /** Records of a local entity, most recently updated first. */
  entities(entity: string, filter?: EntityFilter | null): EntityRecord[];
  /** One record with its links. */
  entity(entity: string, localId: string): EntityRecord;
  putEntity(entity: string, record: EntityInput): EntityRecord;
  /** Soft delete: the record reads back with deleted: true. */
  deleteEntity(entity: string, localId: string): void;

  /** The response's secret is shown here and by rotateWebhookSecret only. */
  createWebhookEndpoint(integrationId: string, request?: WebhookEndpointRequest | null): WebhookEndpointWithSecret;
  /** Never with their secrets. */
  webhookEndpoints(integrationId: string): WebhookEndpoint[];
  /** With a new scheme and no secret: the current secret if it suits the scheme, else a generated one
   *  (in the response, once, as secret), else an InvalidArgumentError naming secret. */
  updateWebhookEndpoint(endpointId: string, patch: WebhookEndpointPatch): WebhookEndpoint & { secret?: string };
  /** A new generated secret, shown once; the old one verifies for the grace period. */
  rotateWebhookSecret(endpointId: string): WebhookEndpointWithSecret;
  /** Deletes its queued events too. */
  deleteWebhookEndpoint(endpointId: string): void;
  /** The tenant's webhook events, newest first. */
  webhookEvents(filter?: WebhookEventFilter | null): WebhookEvent[];
  /** Queue a dead (or processed) event again; others are ConflictError. */
  replayWebhookEvent(eventId: string): void;

  /** Start an authorization-code flow (state and PKCE). */
  beginOAuth(request: OAuthBeginRequest): OAuthBegin;
  /**
   * Force a token refresh now, on the thread pool. A refused refresh token
   * rejects with AuthError and marks the integration needs_reauth.
   */
  refreshOAuth(integrationId: string): Promise<void>;
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
export class Canceled extends IntegrationsError {
  static readonly code: -16;
  /** From sync(): what the canceled run committed (status "canceled"). */
  readonly result?: SyncResult;
}
export class Unsupported extends IntegrationsError { static readonly code: -17; }
export class InternalError extends IntegrationsError { static readonly code: -99; }

/** The error object the binding raises for a code (unknown codes: IntegrationsError). */
export function errorFromCode(code: number, message: string): IntegrationsError;

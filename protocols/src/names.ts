/**
 * Every NATS name of the mesh, built in one place so no process spells a subject by hand.
 *
 * - Subjects are dot-separated tokens under the prefix `im.v1.` (`im.v1.offload`,
 *   `im.v1.worker.<workerId>.infer`, ...). Ids that become a token are checked by
 *   {@link assertSubjectToken}.
 * - JetStream KV buckets, object stores and streams may not contain dots (NATS allows only
 *   `A-Z a-z 0-9 _ -` there), so they carry the same prefix in its permitted form `im_v1_`
 *   (`im_v1_models`, `im_v1_updates`, ...).
 * - The `v1` is the wire version: a breaking change to any message moves every name to `v2`, so
 *   old and new processes never read each other's messages.
 * @module
 */
import { invalidInput } from './errors.js';

/** Prefix of every subject (without the trailing dot). */
export const SUBJECT_PREFIX = 'im.v1';
/** Prefix of every bucket, object store and stream name (NATS forbids dots there). */
export const STORE_PREFIX = 'im_v1_';

/** Longest id accepted as a subject token; keeps subjects well under the server's limits. */
export const MAX_SUBJECT_TOKEN_LENGTH = 128;

// A token may not be empty and may not hold the separator, the wildcards or whitespace; control
// characters are refused too, since they never belong in an id and confuse logs.
// eslint-disable-next-line no-control-regex
const FORBIDDEN_TOKEN_CHARS = /[.*>\s\u0000-\u001f\u007f]/u;

/** True when `value` can stand as one subject token (see {@link assertSubjectToken}). */
export function isSubjectToken(value: unknown): value is string {
  return (
    typeof value === 'string' &&
    value.length > 0 &&
    value.length <= MAX_SUBJECT_TOKEN_LENGTH &&
    !FORBIDDEN_TOKEN_CHARS.test(value)
  );
}

/**
 * Checks that `value` can stand as one subject token (an agent, worker, round or transfer id)
 * and returns it. Throws INVALID_INPUT naming `what` otherwise.
 * @example
 * assertSubjectToken('edge-7', 'agent id'); // 'edge-7'
 * assertSubjectToken('a.b', 'agent id'); // throws INVALID_INPUT
 */
export function assertSubjectToken(value: string, what = 'subject token'): string {
  if (typeof value !== 'string' || value.length === 0) {
    throw invalidInput(`${what} must be a non-empty string`, { what });
  }
  if (value.length > MAX_SUBJECT_TOKEN_LENGTH) {
    throw invalidInput(`${what} is longer than ${MAX_SUBJECT_TOKEN_LENGTH} characters`, {
      what,
    });
  }
  if (FORBIDDEN_TOKEN_CHARS.test(value)) {
    throw invalidInput(
      `${what} ${JSON.stringify(value)} may not contain '.', '*', '>', whitespace or control characters`,
      { what },
    );
  }
  return value;
}

const subject = (...tokens: string[]): string => [SUBJECT_PREFIX, ...tokens].join('.');
const store = (name: string): string => `${STORE_PREFIX}${name}`;

// ---- inference data plane ------------------------------------------------------------------

/** Where edge agents send offloaded inference requests; routers queue-subscribe here. */
export function offloadSubject(): string {
  return subject('offload');
}

/** Queue group shared by every router replica on {@link offloadSubject}. */
export function routerQueueGroup(): string {
  return 'im_v1_routers';
}

/** A worker's own inference subject; the router forwards requests here keeping the reply subject. */
export function workerInferSubject(workerId: string): string {
  return subject('worker', assertSubjectToken(workerId, 'worker id'), 'infer');
}

/** Where a worker publishes its load reports several times a second. */
export function workerLoadSubject(workerId: string): string {
  return subject('worker', assertSubjectToken(workerId, 'worker id'), 'load');
}

/** Wildcard matching every worker's load reports (routers subscribe to it). */
export function allWorkerLoadsSubject(): string {
  return subject('worker', '*', 'load');
}

/**
 * A worker's own model-metadata subject: routers forward a metadata request here to a worker that
 * has the model loaded (same request and reply as {@link modelMetadataSubject}).
 */
export function workerMetadataSubject(workerId: string): string {
  return subject('worker', assertSubjectToken(workerId, 'worker id'), 'metadata');
}

/** Request subject answering model metadata (the manifest) by name and optional version. */
export function modelMetadataSubject(): string {
  return subject('models', 'metadata');
}

// ---- large payloads --------------------------------------------------------------------------

/**
 * Subject carrying the chunks of one large payload transfer (a request or response bigger than
 * the server's max_payload that is streamed rather than staged in the object store).
 */
export function payloadChunkSubject(transferId: string): string {
  return subject('payload', assertSubjectToken(transferId, 'transfer id'), 'chunk');
}

/** Subject a receiver acknowledges chunks on, giving the sender flow control. */
export function payloadAckSubject(transferId: string): string {
  return subject('payload', assertSubjectToken(transferId, 'transfer id'), 'ack');
}

/** Object-store key of a staged payload: `<requestId>/<part>`, part being request or response. */
export function stagedPayloadKey(requestId: string, part: 'request' | 'response'): string {
  return `${assertSubjectToken(requestId, 'request id')}/${part}`;
}

// ---- fleet -----------------------------------------------------------------------------------

/** Where one agent publishes its heartbeats. */
export function agentHeartbeatSubject(agentId: string): string {
  return subject('agent', assertSubjectToken(agentId, 'agent id'), 'heartbeat');
}

/** Wildcard matching every agent's heartbeats (the fleet registry subscribes to it). */
export function allAgentHeartbeatsSubject(): string {
  return subject('agent', '*', 'heartbeat');
}

/**
 * Nudge subject telling one agent its desired state changed. The desired state itself lives in
 * {@link desiredStateBucket}; this only saves the agent a watch round trip.
 */
export function agentDesiredSubject(agentId: string): string {
  return subject('agent', assertSubjectToken(agentId, 'agent id'), 'desired');
}

/**
 * Request/reply subject where an agent enrolls with a one-time token (served by every coordinator
 * in {@link enrollQueueGroup}).
 */
export function enrollSubject(): string {
  return subject('fleet', 'enroll');
}

/** Queue group of the coordinators answering {@link enrollSubject}. */
export function enrollQueueGroup(): string {
  return 'im-v1-enroll';
}

// ---- federated learning ----------------------------------------------------------------------

/** Where the aggregator sends one selected agent its round task (global weights + settings). */
export function flRoundTaskSubject(agentId: string): string {
  return subject('fl', 'agent', assertSubjectToken(agentId, 'agent id'), 'task');
}

/** Where clients publish their updates for one round (captured by {@link updatesStream}). */
export function flUpdateSubject(roundId: string): string {
  return subject('fl', 'round', assertSubjectToken(roundId, 'round id'), 'update');
}

/** Wildcard matching the updates of every round: the subject filter of {@link updatesStream}. */
export function allFlUpdatesSubject(): string {
  return subject('fl', 'round', '*', 'update');
}

/**
 * Where the aggregator sends the clients of one round the messages of secure aggregation's later
 * phases (the roster of advertised keys, each client's inbox of encrypted shares, the unmask
 * request). Clients subscribe to it for the rounds they take part in.
 */
export function flSecureToClientsSubject(roundId: string): string {
  return subject('fl', 'round', assertSubjectToken(roundId, 'round id'), 'secure', 'down');
}

/** Where clients of one round send the aggregator their secure aggregation messages. */
export function flSecureToAggregatorSubject(roundId: string): string {
  return subject('fl', 'round', assertSubjectToken(roundId, 'round id'), 'secure', 'up');
}

/**
 * Key of one closed round's full record in {@link roundsBucket}: `run.<runId>.round.<n>`. The
 * run's own record is `run.<runId>`, so the filter `run.*` matches run records only.
 */
export function flRunRoundKey(runId: string, round: number): string {
  if (!Number.isInteger(round) || round < 1) throw invalidInput(`round ${round} is not a round number`);
  return `run.${assertKvKeyToken(runId, 'run id')}.round.${round}`;
}

// ---- audit -----------------------------------------------------------------------------------

/** Where every mutating admin call is recorded (captured by {@link auditStream}). */
export function auditSubject(): string {
  return subject('audit');
}

// ---- JetStream KV buckets, object stores, streams ---------------------------------------------

/** KV bucket of model manifests, keyed by model name and version. */
export function modelsBucket(): string {
  return store('models');
}

/** KV bucket of each agent's desired model versions. */
export function desiredStateBucket(): string {
  return store('desired');
}

/** KV bucket of fleet records (enrolled agents, their identity and labels), keyed by agent id. */
export function fleetBucket(): string {
  return store('fleet');
}

/**
 * Stream capturing every agent's heartbeats ({@link allAgentHeartbeatsSubject}), keeping the last
 * one per agent: the fleet registry's heartbeat state lives here, not in a coordinator.
 */
export function heartbeatsStream(): string {
  return store('heartbeats');
}

/** KV bucket of one-time enrollment tokens, keyed by token id. */
export function enrollmentTokensBucket(): string {
  return store('enroll_tokens');
}

/** KV bucket of admin API users (their role and token hash), keyed by user id. */
export function usersBucket(): string {
  return store('users');
}

/** KV bucket of rollouts and their progress (also holds step leases). */
export function rolloutsBucket(): string {
  return store('rollouts');
}

/** KV bucket of federated rounds and their state. */
export function roundsBucket(): string {
  return store('rounds');
}

/** Object store of model artifacts, addressed by sha256. */
export function artifactsObjectStore(): string {
  return store('artifacts');
}

/** Object store where payloads larger than max_payload are staged for one hop. */
export function payloadStagingObjectStore(): string {
  return store('payloads');
}

/** Durable stream of federated updates. */
export function updatesStream(): string {
  return store('updates');
}

/** Durable stream of audit events. */
export function auditStream(): string {
  return store('audit');
}

// ---- keys inside the registry's KV buckets ----------------------------------------------------
//
// KV keys follow the subject rules (dot-separated tokens) and NATS allows only `A-Z a-z 0-9 _ - /
// =` besides the dots, so ids that go into keys must be plainer than subject tokens.

/** Characters allowed in one token of a KV key (an agent id or a model name). */
const KV_TOKEN = /^[A-Za-z0-9_-]{1,128}$/u;
/** A model version inside a key: the version schema's characters (dots make more tokens). */
const KV_VERSION = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/u;
/** A model name: lowercase letters, digits, `_`, `-` (the model name schema). */
const KV_MODEL_NAME = /^[a-z0-9][a-z0-9_-]{0,63}$/u;

/**
 * Checks that `value` can stand as one token of a KV key (`A-Z a-z 0-9 _ -`, 1 to 128 characters)
 * and returns it; INVALID_INPUT naming `what` otherwise. Agent ids that appear in desired state
 * must pass this.
 */
export function assertKvKeyToken(value: string, what = 'key token'): string {
  if (typeof value !== 'string' || !KV_TOKEN.test(value)) {
    throw invalidInput(`${what} ${JSON.stringify(value)} must be 1-128 letters, digits, '_' or '-'`, {
      what,
    });
  }
  return value;
}

function assertModelName(name: string): string {
  if (typeof name !== 'string' || !KV_MODEL_NAME.test(name)) {
    throw invalidInput(`model name ${JSON.stringify(name)} is not valid`, { what: 'model name' });
  }
  return name;
}

function assertModelVersion(version: string): string {
  if (
    typeof version !== 'string' ||
    !KV_VERSION.test(version) ||
    version.includes('..') ||
    version.endsWith('.')
  ) {
    throw invalidInput(`model version ${JSON.stringify(version)} is not valid`, { what: 'model version' });
  }
  return version;
}

/**
 * Key of one model version's manifest in {@link modelsBucket}: `<name>.<version>`. Names hold no
 * dots, so the first token is always the name and the rest the version (`spam.1.2.0`).
 */
export function modelManifestKey(name: string, version: string): string {
  return `${assertModelName(name)}.${assertModelVersion(version)}`;
}

/** Key filter matching every version of one model in {@link modelsBucket}: `<name>.>`. */
export function modelVersionsKeyFilter(name: string): string {
  return `${assertModelName(name)}.>`;
}

/** The model name and version of a {@link modelManifestKey}; undefined for any other key. */
export function parseModelManifestKey(key: string): { name: string; version: string } | undefined {
  const dot = key.indexOf('.');
  if (dot <= 0) return undefined;
  const name = key.slice(0, dot);
  const version = key.slice(dot + 1);
  return KV_MODEL_NAME.test(name) && KV_VERSION.test(version) ? { name, version } : undefined;
}

/**
 * Key of one agent's desired version of one model in {@link desiredStateBucket}:
 * `<agentId>.<model>`. The value is a `DesiredModel` (JSON); a deleted key means "not desired".
 */
export function desiredModelKey(agentId: string, model: string): string {
  return `${assertKvKeyToken(agentId, 'agent id')}.${assertModelName(model)}`;
}

/** Key filter an agent watches in {@link desiredStateBucket}: `<agentId>.>`. */
export function agentDesiredKeyFilter(agentId: string): string {
  return `${assertKvKeyToken(agentId, 'agent id')}.>`;
}

/** Key filter matching every agent's desired version of one model: `*.<model>`. */
export function modelDesiredKeyFilter(model: string): string {
  return `*.${assertModelName(model)}`;
}

/** The agent id and model of a {@link desiredModelKey}; undefined for any other key. */
export function parseDesiredModelKey(key: string): { agentId: string; model: string } | undefined {
  const [agentId, model, ...rest] = key.split('.');
  if (agentId === undefined || model === undefined || rest.length > 0) return undefined;
  return KV_TOKEN.test(agentId) && KV_MODEL_NAME.test(model) ? { agentId, model } : undefined;
}

/** Key of one rollout's record in {@link rolloutsBucket}: `rollout.<id>`. */
export function rolloutKey(id: string): string {
  return `rollout.${assertKvKeyToken(id, 'rollout id')}`;
}

/**
 * Key of one chunk of a rollout's agent entries in {@link rolloutsBucket}:
 * `rollout.<id>.agents.<chunk>` (not matched by {@link rolloutKeyFilter}).
 */
export function rolloutAgentChunkKey(id: string, chunk: number): string {
  if (!Number.isInteger(chunk) || chunk < 0) throw invalidInput(`chunk ${chunk} is not a chunk index`);
  return `rollout.${assertKvKeyToken(id, 'rollout id')}.agents.${chunk}`;
}

/** Key filter matching every rollout record in {@link rolloutsBucket}: `rollout.*`. */
export function rolloutKeyFilter(): string {
  return 'rollout.*';
}

/** Key of the lease of the coordinator driving one rollout in {@link rolloutsBucket}: `lease.<id>`. */
export function rolloutLeaseKey(id: string): string {
  return `lease.${assertKvKeyToken(id, 'rollout id')}`;
}

/**
 * Key of the claim of the one live rollout of a model in {@link rolloutsBucket}: `active.<model>`.
 * Created with compare-and-set when a rollout starts, deleted when it ends.
 */
export function rolloutActiveKey(model: string): string {
  return `active.${assertModelName(model)}`;
}

/**
 * The fleet registry: every agent the coordinator knows, with its identity, labels, presence and
 * last heartbeat (DESIGN.md section 8). Its state lives in JetStream, not here:
 * - fleet records (enrolled identity + operator-managed labels) in `fleetBucket()`, followed with
 *   a KV watch so an enrollment or label change made through any coordinator shows up on all;
 * - heartbeats in `heartbeatsStream()`, which keeps the last one per agent: on start the registry
 *   replays those, then follows live heartbeats with a plain subscription (no JetStream cost per
 *   heartbeat on the coordinator).
 * The in-memory view is a cache any coordinator rebuilds in a second. Presence comes from the age
 * of the last heartbeat: `online` within `staleAfterMs`, `stale` until `offlineAfterMs`, then
 * `offline`; `unknown` for an enrolled agent never heard from.
 * @module
 */
import type { Subscription } from '@nats-io/transport-node';
import type { KV } from '@nats-io/kv';
import { KvWatchInclude } from '@nats-io/kv';
import type { Logger } from 'pino';
import {
  ErrorCode,
  InferMeshError,
  isInferMeshError,
  agentHeartbeatSchema,
  allAgentHeartbeatsSubject,
  decode,
  fleetBucket,
  fleetRecordSchema,
  notFound,
} from '@infermesh/protocols';
import type {
  AgentHeartbeat,
  AgentPresence,
  FleetAgent,
  FleetRecord,
  Labels,
  LabelsPatch,
} from '@infermesh/protocols';
import { jetstreamCall, openRegistryKv, registryUnavailable } from '@infermesh/mesh-client';
import type { MeshConnection } from '@infermesh/mesh-client';
import { ensureHeartbeatsStream, replayLastHeartbeats } from './heartbeats-stream.js';

import {
  DEFAULT_FLEET_OFFLINE_AFTER_MS,
  DEFAULT_FLEET_STALE_AFTER_MS,
} from '../config/coordinator-config.js';

/** CAS retries of a label update racing another writer. */
const LABEL_UPDATE_ATTEMPTS = 5;

export interface FleetRegistryOptions {
  readonly connection: MeshConnection;
  readonly logger: Logger;
  readonly staleAfterMs?: number;
  readonly offlineAfterMs?: number;
  /** Wall clock in ms since the epoch (Date.now by default). */
  readonly now?: () => number;
  /** JetStream replicas of the bucket and stream when creating them. */
  readonly replicas?: number;
}

/** Which agents {@link FleetRegistry.list} and {@link FleetRegistry.page} return. */
export interface FleetQuery {
  /** Every key must be present with the same value. */
  readonly selector?: Labels;
  readonly presence?: readonly AgentPresence[];
}

/** One page of agents, in agent id order. */
export interface FleetPage {
  readonly agents: FleetAgent[];
  /** The id to pass as `cursor` for the next page; absent on the last page. */
  readonly nextCursor?: string;
  /** Agents matching the query, over all pages. */
  readonly total: number;
}

interface HeartbeatState {
  heartbeat: AgentHeartbeat;
  /** Wall-clock ms when it reached a coordinator (the stream's timestamp on replay). */
  receivedAt: number;
}

/** True when every key of `selector` is in `labels` with the same value. */
export function matchesSelector(labels: Labels, selector: Labels): boolean {
  for (const [key, value] of Object.entries(selector)) {
    if (labels[key] !== value) return false;
  }
  return true;
}

/** The fleet as this coordinator sees it. */
export class FleetRegistry {
  readonly #connection: MeshConnection;
  readonly #logger: Logger;
  readonly #staleAfterMs: number;
  readonly #offlineAfterMs: number;
  readonly #now: () => number;
  readonly #replicas: number;
  readonly #records = new Map<string, FleetRecord>();
  readonly #heartbeats = new Map<string, HeartbeatState>();
  readonly #listeners = new Set<(heartbeat: AgentHeartbeat, receivedAt: number) => void>();
  /** Every known agent id, sorted; rebuilt lazily when an id is added or removed. */
  #sortedIds: string[] | undefined;
  #kv: KV | undefined;
  #subscription: Subscription | undefined;
  #watchStop: (() => void) | undefined;
  #rejected = 0;

  constructor(options: FleetRegistryOptions) {
    this.#connection = options.connection;
    this.#logger = options.logger;
    this.#staleAfterMs = options.staleAfterMs ?? DEFAULT_FLEET_STALE_AFTER_MS;
    this.#offlineAfterMs = Math.max(
      options.offlineAfterMs ?? DEFAULT_FLEET_OFFLINE_AFTER_MS,
      this.#staleAfterMs,
    );
    this.#now = options.now ?? Date.now;
    this.#replicas = options.replicas ?? 1;
  }

  /** Agents known: enrolled ones and any that heartbeat. */
  get size(): number {
    return this.#ids().length;
  }

  /** Heartbeats dropped as invalid since start. */
  get rejectedHeartbeats(): number {
    return this.#rejected;
  }

  /**
   * Opens (creating when missing) the bucket and the stream, follows records and live heartbeats,
   * and replays the last heartbeat of every agent. Resolves once the view is complete.
   */
  async start(): Promise<void> {
    const nc = this.#connection.nc;
    // Live first, so nothing sent during the replay is missed (the newer of the two wins).
    this.#subscription = nc.subscribe(allAgentHeartbeatsSubject(), {
      callback: (err, msg) => {
        if (err) return;
        this.#accept(msg.subject, msg.data, this.#now());
      },
    });
    await ensureHeartbeatsStream(this.#connection, this.#replicas);
    this.#kv = await openRegistryKv(this.#connection, fleetBucket(), 'InferMesh fleet records', {
      create: true,
      replicas: this.#replicas,
    });
    await this.#followRecords(this.#kv);
    await replayLastHeartbeats(this.#connection, (subject, data, receivedAt) =>
      this.#accept(subject, data, receivedAt),
    );
    this.#logger.info(
      { agents: this.size, enrolled: this.#records.size, heartbeats: this.#heartbeats.size },
      'fleet registry ready',
    );
  }

  stop(): Promise<void> {
    this.#subscription?.unsubscribe();
    this.#subscription = undefined;
    this.#watchStop?.();
    this.#watchStop = undefined;
    this.#listeners.clear();
    return Promise.resolve();
  }

  /** Calls `listener` for every accepted heartbeat; returns the unsubscribe function. */
  onHeartbeat(listener: (heartbeat: AgentHeartbeat, receivedAt: number) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Every agent matching `query`, in agent id order. */
  list(query: FleetQuery = {}): FleetAgent[] {
    const now = this.#now();
    const out: FleetAgent[] = [];
    const matches = this.#matcher(query, now);
    for (const id of this.#ids()) if (matches(id)) out.push(this.#view(id, now));
    return out;
  }

  /**
   * One page of the agents matching `query`, after `cursor` (an agent id), at most `limit`. Only
   * the page's agents are built; the others are only tested against the query.
   */
  page(query: FleetQuery, limit: number, cursor?: string): FleetPage {
    const now = this.#now();
    const ids = this.#ids();
    const agents: FleetAgent[] = [];
    let total = 0;
    let nextCursor: string | undefined;
    const start = cursor === undefined ? 0 : upperBound(ids, cursor);
    const matches = this.#matcher(query, now);
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i] as string;
      if (!matches(id)) continue;
      total += 1;
      if (i < start) continue;
      if (agents.length < limit) agents.push(this.#view(id, now));
      else nextCursor ??= agents[agents.length - 1]?.agentId;
    }
    return nextCursor === undefined ? { agents, total } : { agents, total, nextCursor };
  }

  /** One agent; undefined when neither enrolled nor ever heard from. */
  get(agentId: string): FleetAgent | undefined {
    if (!this.#records.has(agentId) && !this.#heartbeats.has(agentId)) return undefined;
    return this.#view(agentId, this.#now());
  }

  /** The fleet record of an enrolled agent. */
  recordOf(agentId: string): FleetRecord | undefined {
    return this.#records.get(agentId);
  }

  /** Stores a new agent's record; CONFLICT when the id is already enrolled. */
  async createRecord(record: FleetRecord): Promise<void> {
    const value = fleetRecordSchema.parse(record);
    const kv = this.#bucket();
    try {
      await kv.create(value.agentId, JSON.stringify(value));
    } catch (cause) {
      if (/wrong last sequence|key exists/i.test((cause as Error).message)) {
        throw new InferMeshError(ErrorCode.CONFLICT, `agent ${value.agentId} is already enrolled`, { cause });
      }
      throw isInferMeshError(cause) ? cause : registryUnavailable('the fleet bucket', cause);
    }
    this.#setRecord(value);
  }

  /** Stores a record, replacing any (re-enrollment of the same identity). */
  async putRecord(record: FleetRecord): Promise<void> {
    const value = fleetRecordSchema.parse(record);
    const kv = this.#bucket();
    await jetstreamCall('the fleet bucket', () => kv.put(value.agentId, JSON.stringify(value)));
    this.#setRecord(value);
  }

  /** Removes an agent's record (de-enrollment); NOT_FOUND when it has none. */
  async deleteRecord(agentId: string): Promise<void> {
    if (!this.#records.has(agentId)) throw notFound(`agent ${agentId} is not enrolled`, { agentId });
    const kv = this.#bucket();
    await jetstreamCall('the fleet bucket', () => kv.delete(agentId));
    this.#records.delete(agentId);
    if (!this.#heartbeats.has(agentId)) this.#sortedIds = undefined;
  }

  /**
   * Applies a label patch (string sets, null removes) to an enrolled agent with compare-and-set;
   * NOT_FOUND for an agent that is not enrolled.
   */
  async updateLabels(agentId: string, patch: LabelsPatch, by: string): Promise<FleetRecord> {
    const kv = this.#bucket();
    for (let attempt = 1; ; attempt++) {
      const entry = await jetstreamCall('the fleet bucket', () => kv.get(agentId));
      if (!entry || entry.operation !== 'PUT') {
        throw notFound(`agent ${agentId} is not enrolled`, { agentId });
      }
      const current = fleetRecordSchema.parse(entry.json());
      const labels: Labels = { ...current.labels };
      for (const [key, value] of Object.entries(patch)) {
        if (value === null) delete labels[key];
        else labels[key] = value;
      }
      const next: FleetRecord = {
        ...current,
        labels,
        labelsUpdatedAt: this.#now(),
        labelsUpdatedBy: by,
      };
      try {
        await kv.update(agentId, JSON.stringify(next), entry.revision);
        this.#setRecord(next);
        return next;
      } catch (cause) {
        if (attempt >= LABEL_UPDATE_ATTEMPTS || !/wrong last sequence/i.test((cause as Error).message)) {
          throw isInferMeshError(cause) ? cause : registryUnavailable('the fleet bucket', cause);
        }
      }
    }
  }

  #bucket(): KV {
    if (!this.#kv) throw new InferMeshError(ErrorCode.UNAVAILABLE, 'the fleet registry is not started');
    return this.#kv;
  }

  #ids(): string[] {
    if (!this.#sortedIds) {
      const ids = new Set<string>(this.#records.keys());
      for (const id of this.#heartbeats.keys()) ids.add(id);
      this.#sortedIds = [...ids].sort();
    }
    return this.#sortedIds;
  }

  #setRecord(record: FleetRecord): void {
    const known = this.#records.has(record.agentId) || this.#heartbeats.has(record.agentId);
    this.#records.set(record.agentId, record);
    if (!known) this.#sortedIds = undefined;
  }

  #presence(id: string, now: number): AgentPresence {
    const state = this.#heartbeats.get(id);
    if (!state) return 'unknown';
    const age = now - state.receivedAt;
    return age <= this.#staleAfterMs ? 'online' : age <= this.#offlineAfterMs ? 'stale' : 'offline';
  }

  #labels(id: string): Labels {
    return this.#records.get(id)?.labels ?? this.#heartbeats.get(id)?.heartbeat.labels ?? {};
  }

  /** The query as a predicate over agent ids (the selector's entries read once, not per agent). */
  #matcher(query: FleetQuery, now: number): (id: string) => boolean {
    const selector = Object.entries(query.selector ?? {});
    const presence = query.presence;
    return (id) => {
      if (selector.length > 0) {
        const labels = this.#labels(id);
        for (const [key, value] of selector) if (labels[key] !== value) return false;
      }
      return presence === undefined || presence.includes(this.#presence(id, now));
    };
  }

  #view(id: string, now: number): FleetAgent {
    const record = this.#records.get(id);
    const state = this.#heartbeats.get(id);
    return {
      agentId: id,
      enrolled: record !== undefined,
      presence: this.#presence(id, now),
      labels: this.#labels(id),
      ...(record?.hostname === undefined ? {} : { hostname: record.hostname }),
      ...(record === undefined ? {} : { enrolledAt: record.enrolledAt }),
      ...(state === undefined ? {} : { lastSeenAt: state.receivedAt, heartbeat: state.heartbeat }),
    };
  }

  /** Validates and keeps one heartbeat; false when it was dropped. */
  #accept(subject: string, data: Uint8Array, receivedAt: number): boolean {
    let heartbeat: AgentHeartbeat;
    try {
      heartbeat = decode(agentHeartbeatSchema, data, 'agent heartbeat');
    } catch (err) {
      this.#reject(subject, (err as Error).message);
      return false;
    }
    // The subject names the sender: a heartbeat about another agent is refused.
    if (subject.split('.')[3] !== heartbeat.agentId) {
      this.#reject(subject, `agentId ${heartbeat.agentId} does not match the subject`);
      return false;
    }
    const known = this.#heartbeats.get(heartbeat.agentId);
    if (known && known.receivedAt > receivedAt) return false;
    if (!known && !this.#records.has(heartbeat.agentId)) this.#sortedIds = undefined;
    this.#heartbeats.set(heartbeat.agentId, { heartbeat, receivedAt });
    for (const listener of this.#listeners) {
      try {
        listener(heartbeat, receivedAt);
      } catch (err) {
        this.#logger.error({ err }, 'heartbeat listener failed');
      }
    }
    return true;
  }

  #reject(subject: string, reason: string): void {
    this.#rejected += 1;
    // One line per 1,000 so a misbehaving sender cannot flood the log.
    if (this.#rejected % 1_000 === 1) {
      this.#logger.warn({ subject, reason, rejected: this.#rejected }, 'dropped an invalid heartbeat');
    }
  }

  async #followRecords(kv: KV): Promise<void> {
    const watch = await jetstreamCall('the fleet bucket', () =>
      kv.watch({ include: KvWatchInclude.AllHistory }),
    );
    this.#watchStop = () => watch.stop();
    let initial = (await kv.status()).values;
    let resolveReady: () => void = () => undefined;
    const ready = new Promise<void>((resolve) => (resolveReady = resolve));
    if (initial === 0) resolveReady();
    void (async () => {
      for await (const entry of watch) {
        if (entry.operation === 'PUT') {
          const parsed = fleetRecordSchema.safeParse(entry.json());
          if (parsed.success) this.#setRecord(parsed.data);
          else this.#logger.warn({ key: entry.key }, 'ignored an invalid fleet record');
        } else {
          this.#records.delete(entry.key);
          this.#sortedIds = undefined;
        }
        if (initial > 0 && entry.delta === 0) {
          initial = 0;
          resolveReady();
        }
      }
    })().catch((err: unknown) => this.#logger.error({ err }, 'fleet record watch ended'));
    await ready;
  }
}

/** Index of the first id greater than `cursor` in sorted `ids`. */
function upperBound(ids: readonly string[], cursor: string): number {
  let lo = 0;
  let hi = ids.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((ids[mid] as string) <= cursor) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

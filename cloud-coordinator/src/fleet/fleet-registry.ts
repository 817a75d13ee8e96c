/**
 * The fleet registry: every agent the coordinator knows, with its identity, labels, presence and
 * last heartbeat (DESIGN.md section 8). Its state lives in JetStream, not here:
 * - fleet records (enrolled identity + operator-managed labels) in `fleetBucket()`, followed with
 *   a KV watch so an enrollment or label change made through any coordinator shows up on all
 *   (`fleet-records.ts`);
 * - heartbeats in `heartbeatsStream()`, which keeps the last one per agent: on start the registry
 *   replays those, then follows live heartbeats with a plain subscription (no JetStream cost per
 *   heartbeat on the coordinator).
 * An enrolled agent's heartbeats count only when signed with its key (`AGENT_SIGNATURE_HEADER`);
 * with `requireEnrollment`, heartbeats of agents without a record are dropped too. Live heartbeats
 * are checked in short slices (`heartbeat-intake.ts`) so a burst never stalls the admin API.
 * The in-memory view is a cache any coordinator rebuilds in a second. Presence comes from the age
 * of the last heartbeat: `online` within `staleAfterMs`, `stale` until `offlineAfterMs`, then
 * `offline`; `unknown` for an enrolled agent never heard from.
 * @module
 */
import type { Subscription } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import {
  AGENT_SIGNATURE_HEADER,
  agentHeartbeatSchema,
  allAgentHeartbeatsSubject,
  decode,
} from '@infermesh/protocols';
import type {
  AgentHeartbeat,
  AgentPresence,
  FleetAgent,
  FleetRecord,
  Labels,
  LabelsPatch,
} from '@infermesh/protocols';
import type { MeshConnection } from '@infermesh/mesh-client';
import { FleetRecords } from './fleet-records.js';
import { HeartbeatIntake } from './heartbeat-intake.js';
import { ensureHeartbeatsStream, replayLastHeartbeats } from './heartbeats-stream.js';
import {
  DEFAULT_FLEET_OFFLINE_AFTER_MS,
  DEFAULT_FLEET_STALE_AFTER_MS,
} from '../config/coordinator-config.js';

export interface FleetRegistryOptions {
  readonly connection: MeshConnection;
  readonly logger: Logger;
  readonly staleAfterMs?: number;
  readonly offlineAfterMs?: number;
  /** Wall clock in ms since the epoch (Date.now by default). */
  readonly now?: () => number;
  /** JetStream replicas of the bucket and stream when creating them. */
  readonly replicas?: number;
  /**
   * Drop heartbeats of agents that did not enroll (production). Off by default so development
   * agents with a configured id show up; enrolled agents' heartbeats must be signed either way.
   */
  readonly requireEnrollment?: boolean;
}

/** Least window a signed heartbeat's clock may differ from the coordinator's by. */
const MIN_FRESHNESS_MS = 60_000;

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
  readonly #records: FleetRecords;
  readonly #requireEnrollment: boolean;
  /** How far a signed heartbeat's `at` may be from the coordinator's clock. */
  readonly #freshnessMs: number;
  /** Live heartbeats wait here and are checked in short slices (see heartbeat-intake.ts). */
  readonly #intake = new HeartbeatIntake({
    process: (h) => void this.#accept(h.subject, h.data, h.receivedAt, h.signature),
  });
  readonly #heartbeats = new Map<string, HeartbeatState>();
  readonly #listeners = new Set<(heartbeat: AgentHeartbeat, receivedAt: number) => void>();
  /** Every known agent id, sorted; rebuilt lazily when an id is added or removed. */
  #sortedIds: string[] | undefined;
  #subscription: Subscription | undefined;
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
    this.#requireEnrollment = options.requireEnrollment ?? false;
    this.#freshnessMs = Math.max(2 * this.#staleAfterMs, MIN_FRESHNESS_MS);
    this.#records = new FleetRecords({
      connection: this.#connection,
      logger: this.#logger,
      now: this.#now,
      replicas: this.#replicas,
      // A new or removed id changes the sorted id list (unless heartbeats already listed it).
      onChange: (agentId) => {
        if (!this.#heartbeats.has(agentId)) this.#sortedIds = undefined;
      },
    });
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
        this.#intake.push({
          subject: msg.subject,
          data: msg.data,
          receivedAt: this.#now(),
          signature: msg.headers?.get(AGENT_SIGNATURE_HEADER) || undefined,
        });
      },
    });
    await ensureHeartbeatsStream(this.#connection, this.#replicas);
    await this.#records.start();
    await replayLastHeartbeats(this.#connection, (subject, data, receivedAt, signature) =>
      this.#accept(subject, data, receivedAt, signature),
    );
    // Live heartbeats queued meanwhile are checked now that every record is known.
    this.#intake.resume();
    this.#logger.info(
      { agents: this.size, enrolled: this.#records.size, heartbeats: this.#heartbeats.size },
      'fleet registry ready',
    );
  }

  stop(): Promise<void> {
    this.#subscription?.unsubscribe();
    this.#subscription = undefined;
    this.#intake.close();
    this.#records.stop();
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
  createRecord(record: FleetRecord): Promise<void> {
    return this.#records.create(record);
  }

  /** Stores a record, replacing any (re-enrollment of the same identity). */
  putRecord(record: FleetRecord): Promise<void> {
    return this.#records.put(record);
  }

  /** Removes an agent's record (de-enrollment); NOT_FOUND when it has none. */
  deleteRecord(agentId: string): Promise<void> {
    return this.#records.delete(agentId);
  }

  /** Applies a label patch to an enrolled agent (compare-and-set); NOT_FOUND when not enrolled. */
  updateLabels(agentId: string, patch: LabelsPatch, by: string): Promise<FleetRecord> {
    return this.#records.updateLabels(agentId, patch, by);
  }

  /** True when `signature` is the enrolled agent's signature over `data` (false when not enrolled). */
  signedBy(agentId: string, data: Uint8Array, signature: string | undefined): boolean {
    return this.#records.signedBy(agentId, data, signature);
  }

  #ids(): string[] {
    if (!this.#sortedIds) {
      const ids = new Set<string>(this.#records.ids());
      for (const id of this.#heartbeats.keys()) ids.add(id);
      this.#sortedIds = [...ids].sort();
    }
    return this.#sortedIds;
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
  #accept(subject: string, data: Uint8Array, receivedAt: number, signature: string | undefined): boolean {
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
    const record = this.#records.get(heartbeat.agentId);
    if (record) {
      // An enrolled agent speaks only with its key: anything else claiming its id is dropped.
      if (!this.#records.signedBy(heartbeat.agentId, data, signature)) {
        this.#reject(subject, `heartbeat of enrolled agent ${heartbeat.agentId} without a valid signature`);
        return false;
      }
    } else if (this.#requireEnrollment) {
      this.#reject(subject, `agent ${heartbeat.agentId} is not enrolled`);
      return false;
    }
    const known = this.#heartbeats.get(heartbeat.agentId);
    if (known && known.receivedAt > receivedAt) return false;
    if (record) {
      // A signed heartbeat is taken once and only while fresh: a replay (same or older `at`) must
      // not keep a silent agent online or roll its counters back, and a far-future `at` must not
      // lock the agent's genuine heartbeats out.
      if (Math.abs(heartbeat.at - receivedAt) > this.#freshnessMs) {
        this.#reject(
          subject,
          `heartbeat of ${heartbeat.agentId} is ${heartbeat.at - receivedAt} ms off the coordinator's clock`,
        );
        return false;
      }
      if (known && heartbeat.at <= known.heartbeat.at) return false;
    }
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

/**
 * The rollout controller of one coordinator (DESIGN.md section 8): every tick it lists the live
 * rollouts, takes or renews the lease of each running one (`rollout-lease.ts`), and drives the ones
 * it holds a step further (`rollout-driver.ts`). Any number of coordinators run one; the lease
 * makes exactly one of them drive each rollout, and since the whole state is in KV, a coordinator
 * that restarts (or takes over from a dead one once its lease expires) resumes where it was.
 *
 * It also samples the latency the agents' heartbeats report for the rollouts it drives, for the
 * p95 gate; the driver saves them into the rollout record as the bake goes (`bake-latency.ts`), so
 * a driver that takes over mid-bake judges the whole bake, not only the heartbeats it saw itself.
 * When a rollout it drives ends, it deletes the model's live-rollout claim (`active-rollout.ts`).
 * @module
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { isFinalRolloutState } from '@infermesh/protocols';
import type { AgentHeartbeat, Rollout } from '@infermesh/protocols';
import type { DesiredStateStore } from '@infermesh/mesh-client';
import { chunkRange } from './rollout-agents.js';
import {
  DEFAULT_ROLLOUT_LEASE_TTL_MS,
  DEFAULT_ROLLOUT_TICK_INTERVAL_MS,
} from '../config/coordinator-config.js';
import { releaseActiveRollout } from './active-rollout.js';
import { DEFAULT_LATENCY_SAVE_INTERVAL_MS } from './bake-latency.js';
import { servingVersionOf } from './health-gates.js';
import type { LatencySample } from './health-gates.js';
import { RolloutDriver } from './rollout-driver.js';
import type { RolloutDriverOptions } from './rollout-driver.js';
import { acquireLease, releaseLease } from './rollout-lease.js';
import type { FleetView } from './rollout-service.js';
import { withEvent } from './rollout-store.js';
import type { RolloutStore, StoredRollout } from './rollout-store.js';

/** Steps one rollout may take in one tick (each a KV write). */
const MAX_STEPS_PER_TICK = 8;
/** Latency samples kept per rollout and group. */
const MAX_LATENCY_SAMPLES = 10_000;

/** The fleet as the controller needs it: agents and their heartbeats as they arrive. */
export interface ControllerFleet extends FleetView {
  onHeartbeat(listener: (heartbeat: AgentHeartbeat, receivedAt: number) => void): () => void;
}

/** Options of {@link RolloutController}. */
export interface RolloutControllerOptions {
  readonly store: RolloutStore;
  readonly desired: DesiredStateStore;
  /** Compare-and-set removal of desired values, for rollbacks. */
  readonly removal: RolloutDriverOptions['removal'];
  readonly fleet: ControllerFleet;
  readonly coordinatorId: string;
  readonly logger: Logger;
  readonly tickIntervalMs?: number;
  readonly leaseTtlMs?: number;
  /** Wall clock, ms since the epoch (leases compare it across coordinators). */
  readonly now?: () => number;
  /** Longest time latency samples of a bake stay in memory only, ms. */
  readonly latencySaveIntervalMs?: number;
}

/** What the controller knows of a rollout it drives, for latency sampling. */
interface Sampling {
  model: string;
  version: string;
  /** The step `cohort` and `rest` are of. */
  step: number;
  cohort: Set<string>;
  rest: Set<string>;
  samples: { cohort: LatencySample[]; rest: LatencySample[] };
  lastRequests: Map<string, number>;
}

/** Drives the rollouts whose lease this coordinator holds. */
export class RolloutController {
  /** This process instance: a restarted coordinator is a new holder. */
  readonly holder: string;
  readonly #o: RolloutControllerOptions;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #tickMs: number;
  readonly #leaseMs: number;
  readonly #driver: RolloutDriver;
  readonly #sampling = new Map<string, Sampling>();
  /** Agent ids of each step of the rollouts it drives (fixed at creation, read once). */
  readonly #members = new Map<string, string[][]>();
  readonly #held = new Set<string>();
  #timer: NodeJS.Timeout | undefined;
  #ticking: Promise<void> | undefined;
  #unsubscribe: (() => void) | undefined;
  #stopped = false;

  constructor(options: RolloutControllerOptions) {
    this.#o = options;
    this.holder = `${options.coordinatorId}/${randomBytes(4).toString('hex')}`;
    this.#log = options.logger.child({ component: 'coordinator.rollouts', holder: this.holder });
    this.#now = options.now ?? Date.now;
    this.#tickMs = options.tickIntervalMs ?? DEFAULT_ROLLOUT_TICK_INTERVAL_MS;
    this.#leaseMs = options.leaseTtlMs ?? DEFAULT_ROLLOUT_LEASE_TTL_MS;
    this.#driver = new RolloutDriver({
      store: options.store,
      desired: options.desired,
      removal: options.removal,
      fleet: options.fleet,
      holder: this.holder,
      logger: options.logger,
      now: this.#now,
      latencyOf: (id) => this.#sampling.get(id)?.samples ?? { cohort: [], rest: [] },
      resetLatency: (id) => {
        const s = this.#sampling.get(id);
        if (s) {
          s.samples = { cohort: [], rest: [] };
          s.lastRequests.clear();
        }
      },
      consumeLatency: (id, saved) => {
        const s = this.#sampling.get(id);
        if (s) {
          s.samples = {
            cohort: s.samples.cohort.slice(saved.cohort),
            rest: s.samples.rest.slice(saved.rest),
          };
        }
      },
      latencySaveIntervalMs: options.latencySaveIntervalMs ?? DEFAULT_LATENCY_SAVE_INTERVAL_MS,
    });
  }

  /** Starts ticking (the first tick right away). */
  start(): void {
    this.#unsubscribe = this.#o.fleet.onHeartbeat((heartbeat) => this.#sample(heartbeat));
    this.#schedule(0);
    this.#log.info({ tickIntervalMs: this.#tickMs, leaseTtlMs: this.#leaseMs }, 'rollout controller started');
  }

  /** Stops ticking, waits for the tick in progress, and gives up the leases it holds. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#unsubscribe?.();
    await this.#ticking;
    for (const id of this.#held) {
      await releaseLease(this.#o.store.kv, id, this.holder).catch(() => undefined);
    }
    this.#held.clear();
  }

  /** Runs one tick now (tests). */
  async tick(): Promise<void> {
    let rollouts: Rollout[];
    try {
      rollouts = await this.#o.store.list();
    } catch (err) {
      this.#log.warn({ err }, 'cannot list rollouts; next tick');
      return;
    }
    for (const rollout of rollouts) {
      if (this.#stopped) return;
      if (rollout.state !== 'running') {
        if (this.#held.delete(rollout.id)) {
          this.#sampling.delete(rollout.id);
          this.#members.delete(rollout.id);
          await releaseLease(this.#o.store.kv, rollout.id, this.holder).catch(() => undefined);
        }
        continue;
      }
      try {
        await this.#drive(rollout.id);
      } catch (err) {
        this.#log.error({ err, rolloutId: rollout.id }, 'rollout step failed; retrying next tick');
      }
    }
  }

  async #drive(id: string): Promise<void> {
    const lease = await acquireLease(this.#o.store.kv, id, this.holder, this.#leaseMs, this.#now());
    if (!lease.held) {
      if (this.#held.delete(id))
        this.#log.warn({ rolloutId: id, holder: lease.holder }, 'lost the lease of a rollout');
      this.#sampling.delete(id);
      this.#members.delete(id);
      return;
    }
    this.#held.add(id);
    let stored: StoredRollout | null | undefined = await this.#o.store.get(id);
    if (!stored) return;
    if (lease.acquired || stored.rollout.driver !== this.holder) {
      const previous = stored.rollout.driver;
      const next = withEvent(
        { ...stored.rollout, driver: this.holder },
        {
          at: this.#now(),
          type: 'driver',
          driver: this.holder,
          message:
            previous === undefined ? `driven by ${this.holder}` : `${this.holder} took over from ${previous}`,
          ...(lease.previous
            ? {
                details: {
                  previousHolder: lease.previous.holder,
                  previousExpiresAt: lease.previous.expiresAt,
                },
              }
            : {}),
        },
      );
      const revision = await this.#o.store.put(next, stored.revision);
      if (revision === false) return;
      stored = { rollout: next, revision };
      this.#log.info({ rolloutId: id, previous }, 'driving a rollout');
    }
    // Stop before the lease could run out under a slow step.
    const deadline = lease.lease.expiresAt - this.#leaseMs / 3;
    for (let i = 0; i < MAX_STEPS_PER_TICK && stored && !this.#stopped; i += 1) {
      if (this.#now() > deadline) break;
      await this.#track(stored.rollout);
      stored = await this.#driver.advance(stored, deadline);
      if (stored && isFinalRolloutState(stored.rollout.state)) {
        await releaseActiveRollout(this.#o.store.kv, stored.rollout.spec.model, id).catch((err: unknown) =>
          this.#log.warn({ err, rolloutId: id }, 'cannot release the live-rollout claim; it is stale now'),
        );
      }
    }
  }

  /** Keeps the cohort and the rest of a driven rollout's current step, for latency sampling. */
  async #track(rollout: Rollout): Promise<void> {
    const step = rollout.step;
    let members = this.#members.get(rollout.id);
    if (!members) {
      const [from, to] = chunkRange(rollout, 0, rollout.steps.length - 1);
      members = rollout.steps.map((): string[] => []);
      for (const { chunk } of await this.#o.store.chunks(rollout.id, from, to)) {
        members[chunk.step]?.push(...chunk.agents.map((a) => a.agentId));
      }
      this.#members.set(rollout.id, members);
    }
    let s = this.#sampling.get(rollout.id);
    if (!s) {
      s = {
        model: rollout.spec.model,
        version: rollout.spec.version,
        cohort: new Set(),
        rest: new Set(),
        step: -1,
        samples: { cohort: [], rest: [] },
        lastRequests: new Map(),
      };
      this.#sampling.set(rollout.id, s);
    }
    if (s.step === step) return;
    s.step = step;
    s.cohort = new Set(members[step] ?? []);
    s.rest = new Set(members.slice(step + 1).flat());
  }

  #sample(heartbeat: AgentHeartbeat): void {
    for (const s of this.#sampling.values()) {
      const inCohort = s.cohort.has(heartbeat.agentId);
      if (!inCohort && !s.rest.has(heartbeat.agentId)) continue;
      const version = inCohort ? s.version : servingVersionOf(heartbeat, s.model);
      const entry = heartbeat.models.find((m) => m.name === s.model && m.version === version);
      if (!entry) continue;
      const key = `${heartbeat.agentId}@${entry.version}`;
      const last = s.lastRequests.get(key);
      s.lastRequests.set(key, entry.requests);
      if (last === undefined || entry.p95Ms === undefined) continue;
      const requests = entry.requests >= last ? entry.requests - last : entry.requests;
      const group = inCohort ? s.samples.cohort : s.samples.rest;
      if (requests > 0 && group.length < MAX_LATENCY_SAMPLES) group.push({ p95Ms: entry.p95Ms, requests });
    }
  }

  #schedule(delayMs: number): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.#ticking = this.tick().finally(() => {
        this.#ticking = undefined;
        this.#schedule(this.#tickMs);
      });
    }, delayMs);
    this.#timer.unref?.();
  }
}

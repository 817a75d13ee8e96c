/**
 * The operations the admin API performs on rollouts: start one (check the version, pick and order
 * the targets, plan the steps, store the record and its agent chunks), page a rollout's agents, and pause, resume, abort or roll back one. None
 * of them touches desired state: they write the rollout record (compare-and-set) and the
 * coordinator holding the rollout's lease acts on it (`rollout-controller.ts`).
 * @module
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import {
  ErrorCode,
  InferMeshError,
  invalidInput,
  isFinalRolloutState,
  isInferMeshError,
  MAX_LISTED_SKIPPED,
} from '@infermesh/protocols';
import type {
  FleetAgent,
  ModelManifest,
  Rollout,
  RolloutAgentPage,
  RolloutAgentPageQuery,
  RolloutSpec,
} from '@infermesh/protocols';
import { registryUnavailable } from '@infermesh/mesh-client';
import type { DesiredStateStore } from '@infermesh/mesh-client';
import { claimActiveRollout, releaseActiveRollout } from './active-rollout.js';
import type { ClaimedRolloutStatus } from './active-rollout.js';
import { chunkPlannedSteps, pageRolloutAgents } from './rollout-agents.js';
import { planSteps, planTargets } from './rollout-planner.js';
import { withEvent } from './rollout-store.js';
import type { RolloutStore, StoredRollout } from './rollout-store.js';

/** The part of the fleet registry rollouts read. */
export interface FleetView {
  list(query?: { selector?: Record<string, string> }): FleetAgent[];
  get(agentId: string): FleetAgent | undefined;
}

/** What {@link RolloutService} needs. */
export interface RolloutServiceOptions {
  readonly store: RolloutStore;
  readonly desired: DesiredStateStore;
  readonly fleet: FleetView;
  /** The manifest of a version; throws MODEL_NOT_FOUND when it does not exist. */
  readonly manifestOf: (model: string, version: string) => Promise<ModelManifest>;
  readonly logger: Logger;
  readonly now?: () => number;
}

/** A new rollout id: `ro-`, the time in base 36, and 8 random hex characters. */
export function newRolloutId(now: number): string {
  return `ro-${now.toString(36)}${randomBytes(4).toString('hex')}`;
}

const conflict = (message: string): InferMeshError => new InferMeshError(ErrorCode.CONFLICT, message);

/** Starts and steers rollouts. */
export class RolloutService {
  readonly #o: RolloutServiceOptions;
  readonly #log: Logger;
  readonly #now: () => number;

  constructor(options: RolloutServiceOptions) {
    this.#o = options;
    this.#log = options.logger.child({ component: 'coordinator.rollouts' });
    this.#now = options.now ?? Date.now;
  }

  /**
   * Starts a rollout of `spec.model@spec.version`. MODEL_NOT_FOUND when the version does not exist,
   * INVALID_INPUT when it has no edge variant or no agent is a target, CONFLICT while another
   * rollout of the model is running or paused (or being started: see `active-rollout.ts`).
   */
  async start(spec: RolloutSpec, actor: string): Promise<Rollout> {
    const manifest = await this.#o.manifestOf(spec.model, spec.version);
    if (manifest.variants.edge === undefined) {
      throw invalidInput(`${spec.model}@${spec.version} has no edge variant to roll out to agents`);
    }
    const now = this.#now();
    const id = newRolloutId(now);
    const holders = new Map(
      (await this.#o.desired.holdersOf(spec.model)).map((entry) => [entry.agentId, entry.desired]),
    );
    const candidates = this.#o.fleet.list({ selector: spec.selector }).map((agent) => ({
      agentId: agent.agentId,
      presence: agent.presence,
      labels: agent.labels,
      desired: holders.get(agent.agentId),
    }));
    const plan = planTargets(id, candidates, spec.selector);
    if (plan.targets.length === 0) {
      throw invalidInput(
        `no agent is a target: ${candidates.length} match the selector ${JSON.stringify(spec.selector)}, ` +
          `${plan.skipped.length} of them skipped (offline, never seen, or pinned)`,
        { skipped: plan.skipped.slice(0, MAX_LISTED_SKIPPED), skippedTotal: plan.skipped.length },
      );
    }
    const planned = planSteps(plan.targets, spec.canaryPercent, spec.waves);
    const { steps, chunks } = chunkPlannedSteps(id, planned);
    const rollout: Rollout = withEvent(
      {
        id,
        spec,
        state: 'running',
        step: 0,
        phase: 'applying',
        steps,
        targets: plan.targets.length,
        skipped: plan.skipped.slice(0, MAX_LISTED_SKIPPED),
        skippedTotal: plan.skipped.length,
        events: [],
        createdBy: actor,
        createdAt: now,
        updatedAt: now,
      },
      {
        at: now,
        type: 'created',
        actor,
        message:
          `${spec.model}@${spec.version} to ${plan.targets.length} agents in ${steps.length} steps ` +
          `(${steps.map((s) => s.agents).join(', ')})` +
          (plan.skipped.length > 0 ? `; skipped ${plan.skipped.length}` : ''),
      },
    );
    // The claim makes this the model's one live rollout; of concurrent starts exactly one wins.
    await this.#claim(spec.model, id, now);
    try {
      await this.#o.store.create(rollout, chunks);
    } catch (err) {
      await releaseActiveRollout(this.#o.store.kv, spec.model, id).catch(() => undefined);
      throw err;
    }
    this.#log.info(
      { rolloutId: id, model: spec.model, version: spec.version, targets: plan.targets.length, actor },
      'rollout started',
    );
    return rollout;
  }

  /** One rollout; NOT_FOUND when absent. */
  async get(id: string): Promise<Rollout> {
    return (await this.#o.store.require(id)).rollout;
  }

  /** A page of a rollout's agents in rollout order; NOT_FOUND when the rollout is absent. */
  async agents(id: string, query: RolloutAgentPageQuery): Promise<RolloutAgentPage> {
    const { rollout } = await this.#o.store.require(id);
    return pageRolloutAgents(this.#o.store, rollout, query);
  }

  /** Every rollout, newest first. */
  list(): Promise<Rollout[]> {
    return this.#o.store.list();
  }

  /** Pauses a running rollout: its driver stops acting until it is resumed. */
  async pause(id: string, actor: string): Promise<Rollout> {
    return this.#change(id, actor, 'paused', (r) => {
      if (r.state === 'paused') return undefined;
      if (r.state !== 'running') throw conflict(`rollout ${id} is ${r.state}; only a running rollout pauses`);
      if (r.phase === 'rolling_back') throw conflict(`rollout ${id} is rolling back; that does not pause`);
      return { ...r, state: 'paused', reason: `paused by ${actor}` };
    });
  }

  /**
   * Resumes a paused rollout where it stopped. A step that was baking bakes again from the start
   * (the driver takes new baselines when a bake starts); one waiting for its cohort gets a fresh
   * ready timeout.
   */
  async resume(id: string, actor: string): Promise<Rollout> {
    return this.#change(id, actor, 'resumed', (r) => {
      if (r.state === 'running') return undefined;
      if (r.state !== 'paused') throw conflict(`rollout ${id} is ${r.state}; only a paused rollout resumes`);
      const now = this.#now();
      const steps = r.steps.map((step, index) => {
        if (index !== r.step) return step;
        if (r.phase === 'baking') return { ...step, bakeStartedAt: undefined, bakeLatency: undefined };
        return r.phase === 'waiting_ready' ? { ...step, startedAt: now } : step;
      });
      const { reason: _reason, ...rest } = r;
      return {
        ...rest,
        state: 'running',
        steps,
      };
    });
  }

  /** Stops a rollout for good, leaving every agent's desired state as it is. */
  async abort(id: string, actor: string): Promise<Rollout> {
    const aborted = await this.#change(id, actor, 'aborted', (r) => {
      if (r.state === 'aborted') return undefined;
      if (isFinalRolloutState(r.state)) throw conflict(`rollout ${id} is ${r.state} already`);
      if (r.phase === 'rolling_back') throw conflict(`rollout ${id} is rolling back; let it finish`);
      const now = this.#now();
      return { ...r, state: 'aborted', phase: 'done', reason: `aborted by ${actor}`, finishedAt: now };
    });
    await releaseActiveRollout(this.#o.store.kv, aborted.spec.model, id);
    return aborted;
  }

  /**
   * Rolls a rollout back: every agent it wrote gets its previous desired value again (or none),
   * unless someone changed that agent's desired state since. Also for a finished rollout.
   */
  async rollback(id: string, actor: string): Promise<Rollout> {
    const current = (await this.#o.store.require(id)).rollout;
    if (isFinalRolloutState(current.state) && current.state !== 'rolled_back') {
      // Live again while it rolls back: no other rollout of the model may run meanwhile.
      await this.#claim(current.spec.model, id, this.#now());
    }
    return this.#change(id, actor, 'rollback', (r) => {
      if (r.phase === 'rolling_back' || r.state === 'rolled_back') return undefined;
      const { finishedAt: _f, ...rest } = r;
      return { ...rest, state: 'running', phase: 'rolling_back', reason: `rollback requested by ${actor}` };
    });
  }

  /** Claims `model` for rollout `id`; CONFLICT naming the live rollout when another holds it. */
  async #claim(model: string, id: string, now: number): Promise<void> {
    const statusOf = async (other: string): Promise<ClaimedRolloutStatus> => {
      const stored = await this.#o.store.get(other);
      if (stored === null) return 'missing';
      return isFinalRolloutState(stored.rollout.state) ? 'final' : 'live';
    };
    let outcome;
    try {
      outcome = await claimActiveRollout(this.#o.store.kv, model, id, now, statusOf);
    } catch (cause) {
      if (isInferMeshError(cause)) throw cause;
      throw registryUnavailable('the rollouts bucket', cause);
    }
    if (outcome.claimed) return;
    const other = await this.#o.store.get(outcome.rolloutId).catch(() => null);
    const what = other
      ? `rollout ${other.rollout.id} of ${model}@${other.rollout.spec.version} is ${other.rollout.state}`
      : `rollout ${outcome.rolloutId} of ${model} is starting`;
    throw new InferMeshError(ErrorCode.CONFLICT, `${what}; abort or finish it first`, {
      details: { rolloutId: outcome.rolloutId },
    });
  }

  async #change(
    id: string,
    actor: string,
    type: string,
    change: (rollout: Rollout) => Rollout | undefined,
  ): Promise<Rollout> {
    const stored: StoredRollout = await this.#o.store.update(id, (r) => {
      const next = change(r);
      return (
        next &&
        withEvent(next, { at: this.#now(), type, actor, message: `${type} by ${actor}`, step: r.step })
      );
    });
    this.#log.info({ rolloutId: id, actor, action: type }, 'rollout changed');
    return stored.rollout;
  }
}

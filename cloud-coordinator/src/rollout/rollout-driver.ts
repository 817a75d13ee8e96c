/**
 * One step of a rollout's state machine, run by the coordinator holding its lease. Every step is
 * idempotent, so a driver that crashes anywhere and a successor that repeats the step do no harm:
 * - `applying`: first the previous desired value of each agent of the step is captured into the
 *   record (saved), then the desired state is written with a compare-and-set; an entry that is
 *   already this rollout's counts as written, a pin is left alone (the agent is skipped).
 * - `waiting_ready`: heartbeats say which cohort agents serve the version, or failed to load it.
 * - `baking`: baselines of the counters are saved when the bake starts, latency samples as it goes
 *   (`bake-latency.ts`); at its end the gates judge.
 * - `rolling_back`: each agent whose desired value is still this rollout's gets its previous value
 *   back (or none); agents someone changed since are left alone.
 * @module
 */
import type { Logger } from 'pino';
import { isInferMeshError, rolloutSetBy } from '@infermesh/protocols';
import type { DesiredModel, GateEvaluation, Rollout, RolloutAgent, RolloutEvent } from '@infermesh/protocols';
import type { DesiredEntry, DesiredStateStore } from '@infermesh/mesh-client';
import { countersOf, evaluateGates, loadStatusOf, servingVersionOf } from './health-gates.js';
import { bakeSamples, latencySaveDue, saveBakeLatency } from './bake-latency.js';
import type { GroupSamples } from './bake-latency.js';
import type { FleetView } from './rollout-service.js';
import { withEvent } from './rollout-store.js';
import type { RolloutStore, StoredRollout } from './rollout-store.js';

/** What a driver needs. */
export interface RolloutDriverOptions {
  readonly store: RolloutStore;
  readonly desired: DesiredStateStore;
  readonly fleet: FleetView;
  /** This coordinator instance (the lease holder), written into events. */
  readonly holder: string;
  readonly logger: Logger;
  readonly now: () => number;
  /** Latency samples of a rollout's cohort and rest not saved into its record yet. */
  readonly latencyOf: (rolloutId: string) => GroupSamples;
  /** Forget the latency samples of a rollout (a bake begins). */
  readonly resetLatency: (rolloutId: string) => void;
  /** Forget the oldest samples of a rollout once they are saved in its record. */
  readonly consumeLatency: (rolloutId: string, saved: { cohort: number; rest: number }) => void;
  /** Longest time latency samples of a bake stay unsaved, ms. */
  readonly latencySaveIntervalMs: number;
}

/** Agents still holding a desired value the rollout may have written. */
const TOUCHED = new Set<RolloutAgent['state']>(['applied', 'ready', 'failed']);

const isOurs = (entry: DesiredEntry | null, r: Rollout): boolean =>
  entry !== null && entry.desired.setBy === rolloutSetBy(r.id) && entry.desired.version === r.spec.version;

const sameDesired = (a: DesiredModel | null | undefined, b: DesiredModel | null): boolean =>
  (a ?? null) === null
    ? b === null
    : b !== null && a?.version === b.version && a.source === b.source && a.setBy === b.setBy && a.at === b.at;

/** Runs the state machine of the rollouts this coordinator drives. */
export class RolloutDriver {
  readonly #o: RolloutDriverOptions;
  readonly #log: Logger;

  constructor(options: RolloutDriverOptions) {
    this.#o = options;
    this.#log = options.logger.child({ component: 'coordinator.rollout-driver' });
  }

  /**
   * Moves a running rollout on by one step; resolves with the record as saved, or undefined when
   * there was nothing to do (waiting) or the save lost a race (the next tick re-reads).
   */
  async advance(stored: StoredRollout): Promise<StoredRollout | undefined> {
    const r = stored.rollout;
    if (r.state !== 'running') return undefined;
    switch (r.phase) {
      case 'applying':
        return this.#apply(stored);
      case 'waiting_ready':
        return this.#waitReady(stored);
      case 'baking':
        return this.#bake(stored);
      case 'rolling_back':
        return this.#rollBack(stored);
      case 'done':
        return undefined;
    }
  }

  async #save(stored: StoredRollout, next: Rollout): Promise<StoredRollout | undefined> {
    const revision = await this.#o.store.put(
      { ...next, updatedAt: Math.max(next.updatedAt, this.#o.now()) },
      stored.revision,
    );
    return revision === false ? undefined : { rollout: next, revision };
  }

  #event(type: string, message: string, step?: number): RolloutEvent {
    return {
      at: this.#o.now(),
      type,
      message,
      driver: this.#o.holder,
      ...(step !== undefined ? { step } : {}),
    };
  }

  async #apply(stored: StoredRollout): Promise<StoredRollout | undefined> {
    const r = stored.rollout;
    const { model, version } = r.spec;
    const now = this.#o.now();
    const step = r.steps[r.step];
    if (!step) return this.#save(stored, { ...r, phase: 'done', state: 'succeeded', finishedAt: now });
    const cohort = r.agents.filter((a) => a.step === r.step && a.state === 'pending');
    // 1. Capture the previous values (saved before anything is written).
    if (cohort.some((a) => !a.captured) || step.startedAt === undefined) {
      const captured = new Map<string, RolloutAgent>();
      for (const agent of cohort) {
        if (agent.captured) continue;
        const entry = await this.#o.desired.getModel(agent.agentId, model);
        captured.set(
          agent.agentId,
          entry?.desired.source === 'pin'
            ? { ...agent, state: 'skipped', reason: `pinned to ${entry.desired.version}` }
            : { ...agent, captured: true, previous: isOurs(entry, r) ? null : (entry?.desired ?? null) },
        );
      }
      const steps = r.steps.map((s, i) =>
        i === r.step && s.startedAt === undefined ? { ...s, startedAt: now } : s,
      );
      return this.#save(stored, { ...r, steps, agents: r.agents.map((a) => captured.get(a.agentId) ?? a) });
    }
    // 2. Write the desired state of the captured agents.
    const written = new Map<string, RolloutAgent>();
    for (const agent of cohort) {
      const entry = await this.#o.desired.getModel(agent.agentId, model);
      if (isOurs(entry, r)) {
        written.set(agent.agentId, { ...agent, state: 'applied', appliedAt: agent.appliedAt ?? now });
        continue;
      }
      if (entry?.desired.source === 'pin') {
        written.set(agent.agentId, {
          ...agent,
          state: 'skipped',
          reason: `pinned to ${entry.desired.version}`,
        });
        continue;
      }
      const value: DesiredModel = { model, version, source: 'rollout', setBy: rolloutSetBy(r.id), at: now };
      try {
        await this.#o.desired.set(agent.agentId, value, entry?.revision ?? 0);
        // Someone else's rollout value replaced since the capture: that one is what to restore.
        const previous = sameDesired(agent.previous, entry?.desired ?? null)
          ? agent.previous
          : (entry?.desired ?? null);
        written.set(agent.agentId, { ...agent, previous, state: 'applied', appliedAt: now });
      } catch (err) {
        if (!isInferMeshError(err)) throw err;
        this.#log.info(
          { rolloutId: r.id, agentId: agent.agentId, err: err.message },
          'desired state changed meanwhile; retrying',
        );
      }
    }
    let next: Rollout = { ...r, agents: r.agents.map((a) => written.get(a.agentId) ?? a) };
    const left = next.agents.filter((a) => a.step === r.step && a.state === 'pending');
    if (left.length === 0) {
      const applied = next.agents.filter((a) => a.step === r.step && a.state === 'applied').length;
      next = withEvent(
        { ...next, phase: 'waiting_ready' },
        this.#event(
          'step.applied',
          `${step.kind} ${r.step}: ${model}@${version} written for ${applied} agents`,
          r.step,
        ),
      );
    }
    return this.#save(stored, next);
  }

  async #waitReady(stored: StoredRollout): Promise<StoredRollout | undefined> {
    const r = stored.rollout;
    const { model, version } = r.spec;
    const now = this.#o.now();
    const step = r.steps[r.step];
    if (!step) return undefined;
    let changed = false;
    const agents = r.agents.map((a) => {
      if (a.step !== r.step || (a.state !== 'applied' && a.state !== 'ready')) return a;
      const status = loadStatusOf(this.#o.fleet.get(a.agentId)?.heartbeat, model, version);
      if (status.status === 'ready' && a.state !== 'ready') {
        changed = true;
        return { ...a, state: 'ready' as const };
      }
      if (status.status === 'failed') {
        changed = true;
        return { ...a, state: 'failed' as const, reason: status.reason };
      }
      return a;
    });
    let next: Rollout = { ...r, agents };
    const cohort = agents.filter((a) => a.step === r.step && a.state !== 'skipped');
    const failed = cohort.filter((a) => a.state === 'failed');
    if (failed.length > 0) {
      return this.#save(stored, this.#gateFailed(next, this.#judge(next, 0)));
    }
    if (cohort.every((a) => a.state === 'ready')) {
      const steps = r.steps.map((s, i) => (i === r.step ? { ...s, readyAt: now } : s));
      next = withEvent(
        { ...next, steps, phase: 'baking' },
        this.#event('step.ready', `${step.kind} ${r.step}: ${cohort.length} agents serve ${version}`, r.step),
      );
      return this.#save(stored, next);
    }
    if (now - (step.startedAt ?? now) > r.spec.readyTimeoutMs) {
      const late = cohort.filter((a) => a.state !== 'ready').map((a) => a.agentId);
      const reason = `${late.length} agents did not serve ${version} within ${r.spec.readyTimeoutMs} ms: ${late.slice(0, 10).join(', ')}`;
      return this.#save(
        stored,
        withEvent({ ...next, state: 'paused', reason }, this.#event('paused', reason, r.step)),
      );
    }
    return changed ? this.#save(stored, next) : undefined;
  }

  async #bake(stored: StoredRollout): Promise<StoredRollout | undefined> {
    const r = stored.rollout;
    const now = this.#o.now();
    const step = r.steps[r.step];
    if (!step) return undefined;
    if (step.bakeStartedAt === undefined) {
      // Baselines: the cohort's counters of the version, the rest's of what they serve.
      const agents = r.agents.map((a) => {
        const heartbeat = this.#o.fleet.get(a.agentId)?.heartbeat;
        const version = a.step <= r.step ? r.spec.version : servingVersionOf(heartbeat, r.spec.model);
        const baseline = countersOf(heartbeat, r.spec.model, version);
        const { baseline: _old, ...rest } = a;
        return baseline ? { ...rest, baseline } : rest;
      });
      const steps = r.steps.map((s, i) =>
        i === r.step ? { ...s, bakeStartedAt: now, bakeLatency: undefined } : s,
      );
      this.#o.resetLatency(r.id);
      return this.#save(
        stored,
        withEvent(
          { ...r, agents, steps },
          this.#event('step.baking', `baking for ${r.spec.bakeMs} ms`, r.step),
        ),
      );
    }
    const elapsed = now - step.bakeStartedAt;
    const failedLoad = this.#judge(r, elapsed);
    if (failedLoad.cohort.failedLoads.length > 0) return this.#save(stored, this.#gateFailed(r, failedLoad));
    if (elapsed < r.spec.bakeMs) return this.#saveLatency(stored);
    const gate = failedLoad;
    const judged: Rollout = { ...r, lastGate: gate };
    if (gate.verdict === 'fail') return this.#save(stored, this.#gateFailed(judged, gate));
    if (gate.verdict === 'wait') {
      const maxBakeMs = r.spec.maxBakeMs ?? 3 * r.spec.bakeMs;
      if (elapsed < maxBakeMs) return r.lastGate?.verdict === 'wait' ? undefined : this.#save(stored, judged);
      const reason = `not enough traffic after ${elapsed} ms of baking: ${gate.reasons.join('; ')}`;
      return this.#save(
        stored,
        withEvent({ ...judged, state: 'paused', reason }, this.#event('paused', reason, r.step)),
      );
    }
    const steps = r.steps.map((s, i) => (i === r.step ? { ...s, passedAt: now } : s));
    const summary = `${step.kind} ${r.step} passed: ${gate.cohort.requests + gate.cohort.errors} requests, error rate ${((gate.cohort.errorRate ?? 0) * 100).toFixed(2)}%`;
    let next = withEvent({ ...judged, steps }, this.#event('gate.passed', summary, r.step));
    if (r.step + 1 >= r.steps.length) {
      next = withEvent(
        { ...next, state: 'succeeded', phase: 'done', finishedAt: now },
        this.#event('succeeded', `every target serves ${r.spec.version}`),
      );
    } else {
      next = { ...next, step: r.step + 1, phase: 'applying' };
    }
    return this.#save(stored, next);
  }

  /** Folds the unsaved latency samples into the step's `bakeLatency` when they are due. */
  async #saveLatency(stored: StoredRollout): Promise<StoredRollout | undefined> {
    const r = stored.rollout;
    const step = r.steps[r.step];
    const unsaved = this.#o.latencyOf(r.id);
    const now = this.#o.now();
    if (step?.bakeStartedAt === undefined) return undefined;
    if (!latencySaveDue(step.bakeLatency, step.bakeStartedAt, unsaved, now, this.#o.latencySaveIntervalMs)) {
      return undefined;
    }
    const counts = { cohort: unsaved.cohort.length, rest: unsaved.rest.length };
    const bakeLatency = saveBakeLatency(step.bakeLatency, unsaved, now);
    const steps = r.steps.map((s, i) => (i === r.step ? { ...s, bakeLatency } : s));
    const saved = await this.#save(stored, { ...r, steps });
    if (saved) this.#o.consumeLatency(r.id, counts);
    // Nothing else to do this tick: waiting on the bake.
    return undefined;
  }

  /** The gates over the current bake (failed loads only, before the bake has baselines). */
  #judge(r: Rollout, elapsedMs: number): GateEvaluation {
    const { model, version } = r.spec;
    const latency = bakeSamples(r.steps[r.step]?.bakeLatency, this.#o.latencyOf(r.id));
    const view = (
      a: RolloutAgent,
      v: string | undefined,
    ): {
      agentId: string;
      baseline?: RolloutAgent['baseline'];
      current?: ReturnType<typeof countersOf>;
      failedLoad?: string;
    } => {
      const heartbeat = this.#o.fleet.get(a.agentId)?.heartbeat;
      const status = a.step <= r.step ? loadStatusOf(heartbeat, model, version) : undefined;
      return {
        agentId: a.agentId,
        baseline: a.baseline,
        current: countersOf(heartbeat, model, v ?? servingVersionOf(heartbeat, model)),
        ...(a.state === 'failed'
          ? { failedLoad: a.reason ?? 'load failed' }
          : status?.status === 'failed'
            ? { failedLoad: status.reason }
            : {}),
      };
    };
    const live = r.agents.filter((a) => a.state !== 'skipped');
    return evaluateGates({
      step: r.step,
      now: this.#o.now(),
      spec: r.spec,
      cohort: live.filter((a) => a.step === r.step).map((a) => view(a, version)),
      rest: live.filter((a) => a.step > r.step).map((a) => view(a, undefined)),
      cohortLatency: elapsedMs > 0 ? latency.cohort : [],
      restLatency: latency.rest,
    });
  }

  #gateFailed(r: Rollout, gate: GateEvaluation): Rollout {
    const reason = `gate failed at ${r.steps[r.step]?.kind ?? 'step'} ${r.step}: ${gate.reasons.join('; ')}`;
    const judged = { ...r, lastGate: gate, reason };
    if (r.spec.onGateFailure === 'pause') {
      return withEvent(
        { ...judged, state: 'paused' },
        this.#event('gate.failed', `${reason}; paused`, r.step),
      );
    }
    return withEvent(
      { ...judged, phase: 'rolling_back' },
      this.#event('gate.failed', `${reason}; rolling back`, r.step),
    );
  }

  async #rollBack(stored: StoredRollout): Promise<StoredRollout | undefined> {
    const r = stored.rollout;
    const restored = new Map<string, RolloutAgent>();
    for (const agent of r.agents) {
      if (!TOUCHED.has(agent.state) && !(agent.state === 'pending' && agent.captured)) continue;
      const entry = await this.#o.desired.getModel(agent.agentId, r.spec.model);
      if (!isOurs(entry, r)) {
        const reason =
          agent.state === 'pending' ? 'never written' : 'desired state changed by someone else; left alone';
        restored.set(agent.agentId, { ...agent, state: 'restored', reason });
        continue;
      }
      try {
        if (agent.previous) await this.#o.desired.set(agent.agentId, agent.previous, entry?.revision);
        else await this.#o.desired.remove(agent.agentId, r.spec.model);
        restored.set(agent.agentId, {
          ...agent,
          state: 'restored',
          reason: agent.previous ? `back to ${agent.previous.version}` : 'desired value removed',
        });
      } catch (err) {
        if (!isInferMeshError(err)) throw err;
        this.#log.info(
          { rolloutId: r.id, agentId: agent.agentId, err: err.message },
          'restore raced a change; retrying',
        );
      }
    }
    let next: Rollout = { ...r, agents: r.agents.map((a) => restored.get(a.agentId) ?? a) };
    const left = next.agents.filter((a) => TOUCHED.has(a.state) || (a.state === 'pending' && a.captured));
    if (left.length === 0) {
      const count = next.agents.filter((a) => a.state === 'restored').length;
      next = withEvent(
        { ...next, state: 'rolled_back', phase: 'done', finishedAt: this.#o.now() },
        this.#event('rolled_back', `restored ${count} agents`),
      );
    }
    return this.#save(stored, next);
  }
}

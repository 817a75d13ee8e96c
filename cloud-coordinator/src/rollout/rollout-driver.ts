/**
 * One step of a rollout's state machine, run by the coordinator holding its lease. Every step is
 * idempotent, so a driver that crashes anywhere and a successor that repeats the step do no harm.
 * The agents live in chunks (`rollout-agents.ts`) that the driver works through one by one, each
 * written with compare-and-set, and before each chunk it checks that the record is still at the
 * revision it drives from: a takeover (which writes `driver`) or an operator's change stops an old
 * driver at the next chunk. A step over many chunks may span ticks (it stops at `deadline`, before
 * its lease could run out); the record moves on once every chunk of the step is done.
 * - `applying`: first the previous desired value of each agent of a chunk is captured into the
 *   chunk (saved), then the desired state is written with a compare-and-set; an entry that is
 *   already this rollout's counts as written, a pin is left alone (the agent is skipped).
 * - `waiting_ready`: heartbeats say which cohort agents serve the version, or failed to load it.
 * - `baking`: baselines of the counters are saved when the bake starts, latency samples as it goes
 *   (`bake-latency.ts`); at its end the gates judge.
 * - `rolling_back`: each agent whose desired value is still this rollout's gets its previous value
 *   back (or none), both with compare-and-set on the revision read; agents someone changed since
 *   (before or during the restore) are left alone.
 * @module
 */
import type { Logger } from 'pino';
import type {
  GateEvaluation,
  Rollout,
  RolloutAgent,
  RolloutAgentChunk,
  RolloutEvent,
} from '@infermesh/protocols';
import type { DesiredStateStore } from '@infermesh/mesh-client';
import { AgentDesiredWrites, cutReason, touched } from './agent-desired-writes.js';
import type { DesiredRemover } from './agent-desired-writes.js';
import { countersOf, evaluateGates, gateAgentOf, loadStatusOf, servingVersionOf } from './health-gates.js';
import type { GateAgent } from './health-gates.js';
import { bakeSamples, latencySaveDue, saveBakeLatency } from './bake-latency.js';
import type { GroupSamples } from './bake-latency.js';
import { boundGate, chunkRange, recount, sameCounts } from './rollout-agents.js';
import type { FleetView } from './rollout-service.js';
import { withEvent } from './rollout-store.js';
import type { RolloutStore, StoredChunk, StoredRollout } from './rollout-store.js';

/** What a driver needs. */
export interface RolloutDriverOptions {
  readonly store: RolloutStore;
  readonly desired: DesiredStateStore;
  /** Compare-and-set removal of a desired value (`desired-removal.ts`). */
  readonly removal: DesiredRemover;
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

/** What a pass over chunks saw: the chunks as they are now, and whether it covered them all. */
interface ChunkPass {
  readonly chunks: RolloutAgentChunk[];
  readonly complete: boolean;
}

/** Runs the state machine of the rollouts this coordinator drives. */
export class RolloutDriver {
  readonly #o: RolloutDriverOptions;
  readonly #writes: AgentDesiredWrites;

  constructor(options: RolloutDriverOptions) {
    this.#o = options;
    const log = options.logger.child({ component: 'coordinator.rollout-driver' });
    this.#writes = new AgentDesiredWrites(options.desired, options.removal, log);
  }

  /**
   * Moves a running rollout on by one step; resolves with the record as saved, or undefined when
   * there was nothing to do (waiting), the save lost a race, or `deadline` (ms since the epoch)
   * came before every chunk was done (the next tick re-reads and goes on).
   */
  async advance(
    stored: StoredRollout,
    deadline = Number.POSITIVE_INFINITY,
  ): Promise<StoredRollout | undefined> {
    const r = stored.rollout;
    if (r.state !== 'running') return undefined;
    switch (r.phase) {
      case 'applying':
        return this.#apply(stored, deadline);
      case 'waiting_ready':
        return this.#waitReady(stored, deadline);
      case 'baking':
        return this.#bake(stored, deadline);
      case 'rolling_back':
        return this.#rollBack(stored, deadline);
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

  /**
   * Runs `work` on chunks `from .. to - 1` in order, each only while the record is still at the
   * revision `stored` was read at and `deadline` has not passed. `work` writes the chunk itself
   * (compare-and-set) and answers it as stored, or false when that lost a race.
   */
  async #pass(
    stored: StoredRollout,
    [from, to]: [number, number],
    deadline: number,
    work: (chunk: StoredChunk) => Promise<StoredChunk | false>,
  ): Promise<ChunkPass> {
    const chunks: RolloutAgentChunk[] = [];
    let complete = true;
    for (let index = from; index < to; index += 1) {
      if (this.#o.now() > deadline) return { chunks, complete: false };
      const record = await this.#o.store.get(stored.rollout.id);
      if (record?.revision !== stored.revision) return { chunks, complete: false };
      const chunk = await this.#o.store.getChunk(stored.rollout.id, index);
      if (!chunk) {
        complete = false;
        continue;
      }
      const done = await work(chunk);
      if (done === false) complete = false;
      chunks.push(done === false ? chunk.chunk : done.chunk);
    }
    return { chunks, complete };
  }

  /** Writes `agents` into a chunk (compare-and-set); the chunk as stored, false on a race. */
  async #putChunk(stored: StoredChunk, agents: RolloutAgent[]): Promise<StoredChunk | false> {
    const chunk = { ...stored.chunk, agents };
    const revision = await this.#o.store.putChunk(chunk, stored.revision);
    return revision === false ? false : { chunk, revision };
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

  async #apply(stored: StoredRollout, deadline: number): Promise<StoredRollout | undefined> {
    const r = stored.rollout;
    const { model, version } = r.spec;
    const now = this.#o.now();
    const step = r.steps[r.step];
    if (!step) return this.#save(stored, { ...r, phase: 'done', state: 'succeeded', finishedAt: now });
    if (step.startedAt === undefined) {
      const steps = r.steps.map((s, i) => (i === r.step ? { ...s, startedAt: now } : s));
      return this.#save(stored, { ...r, steps });
    }
    const pass = await this.#pass(stored, chunkRange(r, r.step, r.step), deadline, (chunk) =>
      this.#applyChunk(r, chunk),
    );
    if (!pass.complete) return undefined;
    const agents = pass.chunks.flatMap((c) => c.agents);
    let next: Rollout = { ...r, steps: recount(r.steps, pass.chunks) };
    if (agents.some((a) => a.state === 'pending')) {
      // Some writes raced a change: the next tick retries them.
      return sameCounts(next.steps, r.steps) ? undefined : this.#save(stored, next);
    }
    const applied = agents.filter((a) => a.state === 'applied').length;
    next = withEvent(
      { ...next, phase: 'waiting_ready' },
      this.#event(
        'step.applied',
        `${step.kind} ${r.step}: ${model}@${version} written for ${applied} agents`,
        r.step,
      ),
    );
    return this.#save(stored, next);
  }

  /** Captures the previous values of a chunk's pending agents (saved first), then writes theirs. */
  async #applyChunk(r: Rollout, stored: StoredChunk): Promise<StoredChunk | false> {
    let current: StoredChunk | false = stored;
    // 1. Capture the previous values (saved before anything is written).
    if (current.chunk.agents.some((a) => a.state === 'pending' && !a.captured)) {
      const agents = await Promise.all(current.chunk.agents.map((a) => this.#writes.capture(r, a)));
      current = await this.#putChunk(current, agents);
      if (current === false) return false;
    }
    if (!current.chunk.agents.some((a) => a.state === 'pending')) return current;
    // 2. Write the desired state of the captured agents.
    const now = this.#o.now();
    const agents = await Promise.all(current.chunk.agents.map((a) => this.#writes.write(r, a, now)));
    return this.#putChunk(current, agents);
  }

  async #waitReady(stored: StoredRollout, deadline: number): Promise<StoredRollout | undefined> {
    const r = stored.rollout;
    const { model, version } = r.spec;
    const now = this.#o.now();
    const step = r.steps[r.step];
    if (!step) return undefined;
    const pass = await this.#pass(stored, chunkRange(r, r.step, r.step), deadline, async (chunk) => {
      let changed = false;
      const agents = chunk.chunk.agents.map((a) => {
        if (a.state !== 'applied' && a.state !== 'ready') return a;
        const status = loadStatusOf(this.#o.fleet.get(a.agentId)?.heartbeat, model, version);
        if (status.status === 'ready' && a.state !== 'ready') {
          changed = true;
          return { ...a, state: 'ready' as const };
        }
        if (status.status === 'failed') {
          changed = true;
          return { ...a, state: 'failed' as const, reason: cutReason(status.reason) };
        }
        return a;
      });
      return changed ? this.#putChunk(chunk, agents) : chunk;
    });
    if (!pass.complete) return undefined;
    let next: Rollout = { ...r, steps: recount(r.steps, pass.chunks) };
    const cohort = pass.chunks.flatMap((c) => c.agents).filter((a) => a.state !== 'skipped');
    if (cohort.some((a) => a.state === 'failed')) {
      return this.#save(stored, this.#gateFailed(next, this.#judge(next, 0, cohort, [])));
    }
    if (cohort.every((a) => a.state === 'ready')) {
      const steps = next.steps.map((s, i) => (i === r.step ? { ...s, readyAt: now } : s));
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
    return sameCounts(next.steps, r.steps) ? undefined : this.#save(stored, next);
  }

  async #bake(stored: StoredRollout, deadline: number): Promise<StoredRollout | undefined> {
    const r = stored.rollout;
    const now = this.#o.now();
    const step = r.steps[r.step];
    if (!step) return undefined;
    if (step.bakeStartedAt === undefined) {
      // Baselines: the cohort's counters of the version, the rest's of what they serve.
      const pass = await this.#pass(stored, chunkRange(r, r.step, r.steps.length - 1), deadline, (chunk) =>
        this.#putChunk(
          chunk,
          chunk.chunk.agents.map((a) => {
            const heartbeat = this.#o.fleet.get(a.agentId)?.heartbeat;
            const version = a.step <= r.step ? r.spec.version : servingVersionOf(heartbeat, r.spec.model);
            const baseline = countersOf(heartbeat, r.spec.model, version);
            const { baseline: _old, ...rest } = a;
            return baseline ? { ...rest, baseline } : rest;
          }),
        ),
      );
      if (!pass.complete) return undefined;
      const steps = r.steps.map((s, i) =>
        i === r.step ? { ...s, bakeStartedAt: this.#o.now(), bakeLatency: undefined } : s,
      );
      this.#o.resetLatency(r.id);
      return this.#save(
        stored,
        withEvent({ ...r, steps }, this.#event('step.baking', `baking for ${r.spec.bakeMs} ms`, r.step)),
      );
    }
    const elapsed = now - step.bakeStartedAt;
    const ended = elapsed >= r.spec.bakeMs;
    const [from, to] = chunkRange(r, r.step, ended ? r.steps.length - 1 : r.step);
    const agents = (await this.#o.store.chunks(r.id, from, to)).flatMap((c) => c.chunk.agents);
    const cohort = agents.filter((a) => a.step === r.step);
    const gate = this.#judge(
      r,
      elapsed,
      cohort,
      agents.filter((a) => a.step > r.step),
    );
    if (gate.cohort.failedLoads.length > 0) return this.#save(stored, this.#gateFailed(r, gate));
    if (!ended) return this.#saveLatency(stored);
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

  /** The gates over the current bake of `cohort` against `rest` (failed loads only before the end). */
  #judge(r: Rollout, elapsedMs: number, cohort: RolloutAgent[], rest: RolloutAgent[]): GateEvaluation {
    const { model, version } = r.spec;
    const latency = bakeSamples(r.steps[r.step]?.bakeLatency, this.#o.latencyOf(r.id));
    const view = (a: RolloutAgent, counted: string | undefined): GateAgent =>
      gateAgentOf(a, this.#o.fleet.get(a.agentId)?.heartbeat, model, version, r.step, counted);
    const live = (agents: RolloutAgent[]): RolloutAgent[] => agents.filter((a) => a.state !== 'skipped');
    return boundGate(
      evaluateGates({
        step: r.step,
        now: this.#o.now(),
        spec: r.spec,
        cohort: live(cohort).map((a) => view(a, version)),
        rest: live(rest).map((a) => view(a, undefined)),
        cohortLatency: elapsedMs > 0 ? latency.cohort : [],
        restLatency: latency.rest,
      }),
    );
  }

  #gateFailed(r: Rollout, gate: GateEvaluation): Rollout {
    const reason =
      `gate failed at ${r.steps[r.step]?.kind ?? 'step'} ${r.step}: ${gate.reasons.join('; ')}`.slice(
        0,
        2_000,
      );
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

  async #rollBack(stored: StoredRollout, deadline: number): Promise<StoredRollout | undefined> {
    const r = stored.rollout;
    const pass = await this.#pass(stored, chunkRange(r, 0, r.steps.length - 1), deadline, async (chunk) => {
      if (!chunk.chunk.agents.some(touched)) return chunk;
      const agents = await Promise.all(chunk.chunk.agents.map((agent) => this.#writes.restore(r, agent)));
      return this.#putChunk(chunk, agents);
    });
    if (!pass.complete) return undefined;
    let next: Rollout = { ...r, steps: recount(r.steps, pass.chunks) };
    if (!pass.chunks.some((c) => c.agents.some(touched))) {
      const count = next.steps.reduce((sum, s) => sum + s.counts.restored, 0);
      next = withEvent(
        { ...next, state: 'rolled_back', phase: 'done', finishedAt: this.#o.now() },
        this.#event('rolled_back', `restored ${count} agents`),
      );
      return this.#save(stored, next);
    }
    return sameCounts(next.steps, r.steps) ? undefined : this.#save(stored, next);
  }
}

/**
 * What a rollout does to one agent's desired state, each a compare-and-set so that an operator's
 * change made meanwhile always wins: capture the previous value (before anything is written), write
 * the rollout's value, and restore the previous value (or remove the rollout's) on a rollback. Each
 * answers the agent's entry as it should be saved; a lost race leaves the entry as it was, for the
 * driver to retry on its next pass.
 * @module
 */
import type { Logger } from 'pino';
import { isInferMeshError, rolloutSetBy } from '@infermesh/protocols';
import type { DesiredModel, Rollout, RolloutAgent } from '@infermesh/protocols';
import type { DesiredEntry, DesiredStateStore } from '@infermesh/mesh-client';

/** Compare-and-set removal of a desired value (`desired-removal.ts`). */
export interface DesiredRemover {
  removeIfAt(agentId: string, model: string, revision: number): Promise<void>;
}

/** Agents still holding a desired value the rollout may have written. */
const TOUCHED = new Set<RolloutAgent['state']>(['applied', 'ready', 'failed']);

/** True for an agent a rollback has to look at: written, or captured and maybe written. */
export const touched = (a: RolloutAgent): boolean =>
  TOUCHED.has(a.state) || (a.state === 'pending' && a.captured);

/** Longest reason kept on an agent entry. */
const MAX_AGENT_REASON = 256;

/** A reason cut to the length an agent entry keeps. */
export const cutReason = (reason: string): string =>
  reason.length > MAX_AGENT_REASON ? reason.slice(0, MAX_AGENT_REASON) : reason;

const isOurs = (entry: DesiredEntry | null, r: Rollout): boolean =>
  entry !== null && entry.desired.setBy === rolloutSetBy(r.id) && entry.desired.version === r.spec.version;

const sameDesired = (a: DesiredModel | null | undefined, b: DesiredModel | null): boolean =>
  (a ?? null) === null
    ? b === null
    : b !== null && a?.version === b.version && a.source === b.source && a.setBy === b.setBy && a.at === b.at;

/** The desired-state writes of a rollout, one agent at a time. */
export class AgentDesiredWrites {
  readonly #desired: DesiredStateStore;
  readonly #removal: DesiredRemover;
  readonly #log: Logger;

  constructor(desired: DesiredStateStore, removal: DesiredRemover, logger: Logger) {
    this.#desired = desired;
    this.#removal = removal;
    this.#log = logger;
  }

  /** A pending agent with its previous value captured (or skipped, when pinned). */
  async capture(r: Rollout, agent: RolloutAgent): Promise<RolloutAgent> {
    if (agent.state !== 'pending' || agent.captured) return agent;
    const entry = await this.#desired.getModel(agent.agentId, r.spec.model);
    return entry?.desired.source === 'pin'
      ? { ...agent, state: 'skipped', reason: `pinned to ${entry.desired.version}` }
      : { ...agent, captured: true, previous: isOurs(entry, r) ? null : (entry?.desired ?? null) };
  }

  /** A captured pending agent with the rollout's value written (applied), unless a pin stands. */
  async write(r: Rollout, agent: RolloutAgent, now: number): Promise<RolloutAgent> {
    if (agent.state !== 'pending' || !agent.captured) return agent;
    const { model, version } = r.spec;
    const entry = await this.#desired.getModel(agent.agentId, model);
    if (isOurs(entry, r)) return { ...agent, state: 'applied', appliedAt: agent.appliedAt ?? now };
    if (entry?.desired.source === 'pin') {
      return { ...agent, state: 'skipped', reason: `pinned to ${entry.desired.version}` };
    }
    const value: DesiredModel = { model, version, source: 'rollout', setBy: rolloutSetBy(r.id), at: now };
    try {
      await this.#desired.set(agent.agentId, value, entry?.revision ?? 0);
      // Someone else's rollout value replaced since the capture: that one is what to restore.
      const previous = sameDesired(agent.previous, entry?.desired ?? null)
        ? agent.previous
        : (entry?.desired ?? null);
      return { ...agent, previous, state: 'applied', appliedAt: now };
    } catch (err) {
      if (!isInferMeshError(err)) throw err;
      this.#log.info(
        { rolloutId: r.id, agentId: agent.agentId, err: err.message },
        'desired state changed meanwhile; retrying',
      );
      return agent;
    }
  }

  /** A touched agent given its previous value back (or none) while the rollout's value still stands. */
  async restore(r: Rollout, agent: RolloutAgent): Promise<RolloutAgent> {
    if (!touched(agent)) return agent;
    const entry = await this.#desired.getModel(agent.agentId, r.spec.model);
    if (entry === null || !isOurs(entry, r)) {
      const reason =
        agent.state === 'pending' ? 'never written' : 'desired state changed by someone else; left alone';
      return { ...agent, state: 'restored', reason };
    }
    try {
      if (agent.previous) await this.#desired.set(agent.agentId, agent.previous, entry.revision);
      else await this.#removal.removeIfAt(agent.agentId, r.spec.model, entry.revision);
      return {
        ...agent,
        state: 'restored',
        reason: agent.previous ? `back to ${agent.previous.version}` : 'desired value removed',
      };
    } catch (err) {
      if (!isInferMeshError(err)) throw err;
      this.#log.info(
        { rolloutId: r.id, agentId: agent.agentId, err: err.message },
        'restore raced a change; retrying',
      );
      return agent;
    }
  }
}

/**
 * A rollout's target agents as stored: split into chunks of at most `ROLLOUT_AGENT_CHUNK_SIZE`
 * agents, each chunk inside one step, so no KV value grows with the fleet (a record naming every
 * agent of a 10,000-agent fleet with previous values and baselines would pass NATS' 1 MB payload).
 * Also the paging of agents for the admin API, and the bounding of what a gate evaluation lists.
 * @module
 */
import {
  MAX_GATE_LISTED,
  ROLLOUT_AGENT_CHUNK_SIZE,
  countRolloutAgents,
  invalidInput,
} from '@infermesh/protocols';
import type {
  GateEvaluation,
  Rollout,
  RolloutAgent,
  RolloutAgentChunk,
  RolloutAgentPage,
  RolloutAgentPageQuery,
  RolloutStep,
} from '@infermesh/protocols';
import type { PlannedStep } from './rollout-planner.js';
import type { RolloutStore } from './rollout-store.js';

/** The steps of a new rollout with their chunk ranges, and the chunks holding every target. */
export function chunkPlannedSteps(
  rolloutId: string,
  planned: readonly PlannedStep[],
  chunkSize = ROLLOUT_AGENT_CHUNK_SIZE,
): { steps: RolloutStep[]; chunks: RolloutAgentChunk[] } {
  const steps: RolloutStep[] = [];
  const chunks: RolloutAgentChunk[] = [];
  for (const [index, step] of planned.entries()) {
    const firstChunk = chunks.length;
    for (let at = 0; at < step.agents.length; at += chunkSize) {
      const agents: RolloutAgent[] = step.agents
        .slice(at, at + chunkSize)
        .map((agentId) => ({ agentId, step: index, state: 'pending', captured: false }));
      chunks.push({ rolloutId, chunk: chunks.length, step: index, agents });
    }
    steps.push({
      kind: step.kind,
      percent: step.percent,
      agents: step.agents.length,
      counts: countRolloutAgents(step.agents.map(() => ({ state: 'pending' as const }))),
      firstChunk,
      chunkCount: chunks.length - firstChunk,
    });
  }
  return { steps, chunks };
}

/** Chunk indexes of the steps `fromStep .. toStep` (inclusive; clamped to the rollout's steps). */
export function chunkRange(rollout: Rollout, fromStep: number, toStep: number): [number, number] {
  const first = rollout.steps[Math.max(0, fromStep)];
  const last = rollout.steps[Math.min(rollout.steps.length - 1, toStep)];
  if (!first || !last || fromStep > toStep) return [0, 0];
  return [first.firstChunk, last.firstChunk + last.chunkCount];
}

/** The steps with the counts of the given chunks replaced (steps not covered keep theirs). */
export function recount(steps: readonly RolloutStep[], chunks: readonly RolloutAgentChunk[]): RolloutStep[] {
  const byStep = new Map<number, RolloutAgent[]>();
  for (const chunk of chunks) {
    const agents = byStep.get(chunk.step) ?? [];
    agents.push(...chunk.agents);
    byStep.set(chunk.step, agents);
  }
  return steps.map((step, index) => {
    const agents = byStep.get(index);
    return agents && agents.length === step.agents ? { ...step, counts: countRolloutAgents(agents) } : step;
  });
}

/** True when two steps lists count the same agents in the same states. */
export function sameCounts(a: readonly RolloutStep[], b: readonly RolloutStep[]): boolean {
  return a.every((step, i) => JSON.stringify(step.counts) === JSON.stringify(b[i]?.counts));
}

/** A gate evaluation whose lists are cut to {@link MAX_GATE_LISTED} (the counts stay whole). */
export function boundGate(gate: GateEvaluation): GateEvaluation {
  const bound = (health: GateEvaluation['cohort']): GateEvaluation['cohort'] =>
    health.failedLoads.length > MAX_GATE_LISTED
      ? {
          ...health,
          failedLoads: health.failedLoads.slice(0, MAX_GATE_LISTED),
          failedLoadCount: health.failedLoads.length,
        }
      : health;
  const reasons =
    gate.reasons.length > MAX_GATE_LISTED
      ? [...gate.reasons.slice(0, MAX_GATE_LISTED), `... and ${gate.reasons.length - MAX_GATE_LISTED} more`]
      : gate.reasons;
  return {
    ...gate,
    reasons: reasons.map((r) => r.slice(0, 512)),
    cohort: bound(gate.cohort),
    rest: bound(gate.rest),
  };
}

/**
 * A page of a rollout's agents in rollout order. The cursor is `<chunk>:<offset>`: where the next
 * page starts.
 */
export async function pageRolloutAgents(
  store: RolloutStore,
  rollout: Rollout,
  query: RolloutAgentPageQuery,
): Promise<RolloutAgentPage> {
  let [from, to] = chunkRange(rollout, 0, rollout.steps.length - 1);
  if (query.step !== undefined) {
    if (query.step >= rollout.steps.length) {
      throw invalidInput(`step ${query.step} does not exist; the rollout has ${rollout.steps.length}`);
    }
    [from, to] = chunkRange(rollout, query.step, query.step);
  }
  let offset = 0;
  if (query.cursor !== undefined) {
    const [chunk, at] = query.cursor.split(':').map(Number) as [number, number];
    if (chunk < from || chunk > to) throw invalidInput(`cursor ${query.cursor} is outside this listing`);
    from = chunk;
    offset = at;
  }
  const agents: RolloutAgent[] = [];
  for (let chunk = from; chunk < to; chunk += 1) {
    const stored = await store.getChunk(rollout.id, chunk);
    const entries = stored?.chunk.agents ?? [];
    const take = entries.slice(chunk === from ? offset : 0);
    const room = query.limit - agents.length;
    agents.push(...take.slice(0, room));
    if (take.length > room) {
      const at = entries.length - take.length + room;
      return { agents, nextCursor: `${chunk}:${at}` };
    }
    if (take.length === room && chunk + 1 < to) return { agents, nextCursor: `${chunk + 1}:0` };
  }
  return { agents };
}

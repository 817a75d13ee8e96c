/**
 * Plans a rollout, with no I/O: which agents are targets (matching the selector, not offline, not
 * pinned), the order they are reached in, and the cohort of each step (the canary, then each wave).
 *
 * The order is deterministic per rollout but not alphabetical: agents sort by the sha256 of the
 * rollout id and their own id, so consecutive rollouts do not always canary on the same devices,
 * and a re-plan (a coordinator restart) gives the same cohorts.
 * @module
 */
import { createHash } from 'node:crypto';
import type { AgentPresence, DesiredModel, Labels, RolloutStep } from '@infermesh/protocols';

/** Presences an agent may have to become a target (offline and never-seen agents are left out). */
export const TARGET_PRESENCES: readonly AgentPresence[] = ['online', 'stale'];

/** An agent as the planner sees it. */
export interface PlanCandidate {
  readonly agentId: string;
  readonly presence: AgentPresence;
  readonly labels: Labels;
  /** Its current desired value of the model, if any. */
  readonly desired?: DesiredModel | undefined;
}

/** The targets of a rollout and the agents left out. */
export interface TargetPlan {
  /** Target agent ids, in rollout order. */
  readonly targets: string[];
  readonly skipped: { agentId: string; reason: string }[];
}

/** True when every selector label is on the agent with the same value. */
function selected(labels: Labels, selector: Labels): boolean {
  return Object.entries(selector).every(([key, value]) => labels[key] === value);
}

/** The rollout order key of an agent. */
function orderKey(rolloutId: string, agentId: string): string {
  return createHash('sha256').update(`${rolloutId}\n${agentId}`).digest('hex');
}

/**
 * Picks the targets among `candidates`: matching `selector`, online or stale, not pinned (an
 * operator's pin is never replaced). Sorted in the rollout's order.
 * @example
 * planTargets('ro-abc123', agents, { site: 'eu' }).targets; // ['edge-4', 'edge-1', ...]
 */
export function planTargets(
  rolloutId: string,
  candidates: readonly PlanCandidate[],
  selector: Labels,
): TargetPlan {
  const targets: string[] = [];
  const skipped: { agentId: string; reason: string }[] = [];
  for (const agent of candidates) {
    if (!selected(agent.labels, selector)) continue;
    if (!TARGET_PRESENCES.includes(agent.presence)) {
      skipped.push({ agentId: agent.agentId, reason: agent.presence });
      continue;
    }
    if (agent.desired?.source === 'pin') {
      skipped.push({ agentId: agent.agentId, reason: `pinned to ${agent.desired.version}` });
      continue;
    }
    targets.push(agent.agentId);
  }
  targets.sort((a, b) => {
    const ka = orderKey(rolloutId, a);
    const kb = orderKey(rolloutId, b);
    return ka < kb ? -1 : ka > kb ? 1 : 0;
  });
  skipped.sort((a, b) => (a.agentId < b.agentId ? -1 : a.agentId > b.agentId ? 1 : 0));
  return { targets, skipped };
}

/** How many of `total` agents a cumulative percent covers (at least one when total > 0). */
export function cohortSize(total: number, percent: number): number {
  if (total === 0) return 0;
  return Math.min(total, Math.max(1, Math.ceil((total * percent) / 100 - 1e-9)));
}

/** A step as planned: its kind, cumulative percent and the agents it adds, in order. */
export interface PlannedStep {
  readonly kind: RolloutStep['kind'];
  readonly percent: number;
  readonly agents: string[];
}

/**
 * Splits ordered targets into steps: the canary (`canaryPercent` of them, at least one), then each
 * wave up to its cumulative percent. Steps that would add nobody are dropped; the last step always
 * reaches every target.
 * @example
 * planSteps(tenAgents, 5, [25, 50, 100]).map((s) => s.agents.length); // [1, 2, 2, 5]
 */
export function planSteps(
  targets: readonly string[],
  canaryPercent: number,
  waves: readonly number[],
): PlannedStep[] {
  const steps: PlannedStep[] = [];
  let covered = 0;
  const add = (kind: RolloutStep['kind'], percent: number): void => {
    const upTo = percent >= 100 ? targets.length : cohortSize(targets.length, percent);
    if (upTo <= covered) return;
    steps.push({ kind, percent, agents: targets.slice(covered, upTo) });
    covered = upTo;
  };
  add('canary', canaryPercent);
  for (const percent of waves) add('wave', percent);
  if (covered < targets.length) add('wave', 100);
  return steps;
}

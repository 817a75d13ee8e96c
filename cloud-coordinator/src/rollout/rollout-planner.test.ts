import { describe, expect, it } from 'vitest';
import type { PlanCandidate } from './rollout-planner.js';
import { cohortSize, planSteps, planTargets } from './rollout-planner.js';

const agent = (agentId: string, extra: Partial<PlanCandidate> = {}): PlanCandidate => ({
  agentId,
  presence: 'online',
  labels: { site: 'eu' },
  ...extra,
});
const ten = Array.from({ length: 10 }, (_, i) => `edge-${i}`);

describe('rollout planner', () => {
  it('splits 10 targets into canary 5% and waves 25/50/100 as 1, 2, 2, 5', () => {
    const steps = planSteps(ten, 5, [25, 50, 100]);
    expect(steps.map((s) => [s.kind, s.agents.length])).toEqual([
      ['canary', 1],
      ['wave', 2],
      ['wave', 2],
      ['wave', 5],
    ]);
    expect(steps.flatMap((s) => s.agents)).toEqual(ten);
  });

  it('drops steps that add nobody and always reaches every target', () => {
    expect(planSteps(['a', 'b'], 5, [25, 50, 100]).map((s) => s.agents)).toEqual([['a'], ['b']]);
    expect(planSteps(['a'], 50, [100]).map((s) => s.agents)).toEqual([['a']]);
    expect(planSteps([], 5, [100])).toEqual([]);
  });

  it('gives at least one agent to a canary and rounds cohorts up', () => {
    expect(cohortSize(10, 5)).toBe(1);
    expect(cohortSize(10, 25)).toBe(3);
    expect(cohortSize(1000, 5)).toBe(50);
    expect(cohortSize(0, 5)).toBe(0);
  });

  it('skips pinned, offline and never-seen agents, and leaves unselected ones out', () => {
    const plan = planTargets(
      'ro-test01',
      [
        agent('a'),
        agent('b', { desired: { model: 'm', version: '1', source: 'pin', setBy: 'ops', at: 1 } }),
        agent('c', { presence: 'offline' }),
        agent('d', { presence: 'unknown' }),
        agent('e', { labels: { site: 'us' } }),
        agent('f', {
          presence: 'stale',
          desired: { model: 'm', version: '1', source: 'rollout', setBy: 'x', at: 1 },
        }),
      ],
      { site: 'eu' },
    );
    expect([...plan.targets].sort()).toEqual(['a', 'f']);
    expect(plan.skipped).toEqual([
      { agentId: 'b', reason: 'pinned to 1' },
      { agentId: 'c', reason: 'offline' },
      { agentId: 'd', reason: 'unknown' },
    ]);
  });

  it('orders targets deterministically per rollout, not alphabetically', () => {
    const candidates = ten.map((id) => agent(id));
    const first = planTargets('ro-aaaaaa', candidates, {}).targets;
    expect(planTargets('ro-aaaaaa', [...candidates].reverse(), {}).targets).toEqual(first);
    expect(planTargets('ro-bbbbbb', candidates, {}).targets).not.toEqual(first);
    expect([...first].sort()).toEqual(ten);
  });
});

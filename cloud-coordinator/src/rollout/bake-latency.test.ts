import { describe, expect, it } from 'vitest';
import { bakeSamples, foldLatency, latencySaveDue, saveBakeLatency } from './bake-latency.js';
import { evaluateGates, weightedP95 } from './health-gates.js';
import type { GateAgent, LatencySample } from './health-gates.js';

const spec = { maxErrorRate: 0.5, minRequests: 0, maxP95Ms: 200 };
const healthy = (id: string): GateAgent => ({
  agentId: id,
  baseline: { version: '2', requests: 0, errors: 0 },
  current: { version: '2', requests: 100, errors: 0 },
});

describe('bake latency saved in the rollout record', () => {
  it('folds samples into one total without changing the request-weighted p95', () => {
    const samples: LatencySample[] = [
      { p95Ms: 10, requests: 5 },
      { p95Ms: 300, requests: 20 },
      { p95Ms: 40, requests: 0 },
      { p95Ms: 80, requests: 15 },
    ];
    const all = weightedP95(samples) as number;
    const total = foldLatency(undefined, samples.slice(0, 2));
    expect(total.requests).toBe(25);
    expect(weightedP95([total, ...samples.slice(2)])).toBeCloseTo(all, 9);
    // Folding in two saves is the same as in one.
    const twice = foldLatency(total, samples.slice(2));
    expect(twice).toEqual({ p95Ms: expect.closeTo(all, 9) as number, requests: 40 });
    expect(foldLatency(undefined, [])).toEqual({ p95Ms: 0, requests: 0 });
  });

  it('saves when the interval passed and there is something to save', () => {
    const unsaved = { cohort: [{ p95Ms: 5, requests: 1 }], rest: [] };
    expect(latencySaveDue(undefined, 1_000, unsaved, 3_000, 5_000)).toBe(false);
    expect(latencySaveDue(undefined, 1_000, unsaved, 6_000, 5_000)).toBe(true);
    const saved = saveBakeLatency(undefined, unsaved, 6_000);
    expect(latencySaveDue(saved, 1_000, unsaved, 8_000, 5_000)).toBe(false);
    expect(latencySaveDue(saved, 1_000, { cohort: [], rest: [] }, 60_000, 5_000)).toBe(false);
  });

  it('lets a coordinator taking over mid-bake judge p95 on what its predecessor saw too', () => {
    // The first driver saw a slow cohort for the first half of the bake, and saved it.
    const before = { cohort: [{ p95Ms: 450, requests: 60 }], rest: [{ p95Ms: 20, requests: 60 }] };
    const saved = saveBakeLatency(undefined, before, 5_000);
    // The second driver, in a fresh process, saw a short quiet stretch only.
    const after = { cohort: [{ p95Ms: 30, requests: 10 }], rest: [{ p95Ms: 20, requests: 10 }] };
    const judge = (latency: { cohort: readonly LatencySample[]; rest: readonly LatencySample[] }) =>
      evaluateGates({
        step: 0,
        now: 10_000,
        spec,
        cohort: [healthy('a')],
        rest: [healthy('b')],
        cohortLatency: latency.cohort,
        restLatency: latency.rest,
      });
    // In memory only (the behaviour this replaces), the slow half is lost and the gate passes.
    expect(judge(after).verdict).toBe('pass');
    const gate = judge(bakeSamples(saved, after));
    expect(gate.verdict).toBe('fail');
    expect(gate.cohort.p95Ms).toBeCloseTo((450 * 60 + 30 * 10) / 70, 2);
    expect(gate.rest.p95Ms).toBe(20);
    expect(gate.reasons.join()).toMatch(/p95 latency .* above maxP95Ms 200/);
  });
});

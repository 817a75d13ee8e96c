import { describe, expect, it } from 'vitest';
import type { AgentHeartbeat } from '@infermesh/protocols';
import { counterDelta, countersOf, evaluateGates, loadStatusOf, weightedP95 } from './health-gates.js';
import type { GateAgent } from './health-gates.js';

const heartbeat = (extra: Partial<AgentHeartbeat>): AgentHeartbeat => ({
  agentId: 'edge-1',
  at: 1,
  uptimeS: 1,
  models: [],
  health: 'ok',
  ...extra,
});
const spec = { maxErrorRate: 0.01, minRequests: 0 };
const agentWith = (id: string, from: [number, number], to: [number, number], version = '2'): GateAgent => ({
  agentId: id,
  baseline: { version, requests: from[0], errors: from[1] },
  current: { version, requests: to[0], errors: to[1] },
});

describe('health gates', () => {
  it('reads ready, failed and pending from heartbeats', () => {
    const synced = heartbeat({
      models: [{ name: 'm', version: '2', state: 'ready', requests: 5, errors: 0 }],
      sync: [{ name: 'm', desiredVersion: '2', servingVersion: '2', state: 'synced', bytesFetched: 1 }],
    });
    expect(loadStatusOf(synced, 'm', '2')).toEqual({ status: 'ready' });
    const refused = heartbeat({
      sync: [
        {
          name: 'm',
          desiredVersion: '3',
          servingVersion: '2',
          state: 'refused',
          reason: 'self-test-failed',
          bytesFetched: 1,
        },
      ],
    });
    expect(loadStatusOf(refused, 'm', '3')).toMatchObject({
      status: 'failed',
      reason: expect.stringContaining('self-test-failed'),
    });
    expect(loadStatusOf(refused, 'm', '2')).toEqual({ status: 'pending' });
    expect(loadStatusOf(undefined, 'm', '2')).toEqual({ status: 'pending' });
    expect(countersOf(synced, 'm', '2')).toEqual({ version: '2', requests: 5, errors: 0 });
  });

  it('counts traffic as counter deltas, and the counter itself after an agent restart', () => {
    expect(
      counterDelta({ version: '2', requests: 10, errors: 1 }, { version: '2', requests: 50, errors: 3 }),
    ).toEqual({ requests: 40, errors: 2 });
    expect(
      counterDelta({ version: '2', requests: 10, errors: 1 }, { version: '2', requests: 4, errors: 0 }),
    ).toEqual({ requests: 4, errors: 0 });
    expect(
      counterDelta({ version: '1', requests: 10, errors: 1 }, { version: '2', requests: 40, errors: 0 }),
    ).toEqual({ requests: 0, errors: 0 });
  });

  it('passes a healthy cohort', () => {
    const gate = evaluateGates({
      step: 0,
      now: 5,
      spec,
      cohort: [agentWith('a', [0, 0], [100, 0])],
      rest: [agentWith('b', [0, 0], [100, 0], '1')],
      cohortLatency: [],
    });
    expect(gate).toMatchObject({
      verdict: 'pass',
      reasons: [],
      cohort: { requests: 100, errors: 0, errorRate: 0 },
    });
  });

  it('fails an error rate above the limit and above the rest', () => {
    const gate = evaluateGates({
      step: 1,
      now: 5,
      spec,
      cohort: [agentWith('a', [10, 0], [60, 50])],
      rest: [agentWith('b', [0, 0], [100, 0], '1')],
      cohortLatency: [],
    });
    expect(gate.verdict).toBe('fail');
    expect(gate.cohort.errorRate).toBeCloseTo(0.5);
    expect(gate.reasons[0]).toMatch(/error rate 50.00% .* above maxErrorRate 1.00% and the rest's 0.00%/);
  });

  it('does not blame the version for errors the whole fleet sees', () => {
    const gate = evaluateGates({
      step: 1,
      now: 5,
      spec,
      cohort: [agentWith('a', [0, 0], [90, 10])],
      rest: [agentWith('b', [0, 0], [80, 20], '1')],
      cohortLatency: [],
    });
    expect(gate.verdict).toBe('pass');
  });

  it('does not let a rest with too little traffic excuse a bad cohort', () => {
    // The rest: 1 request, 1 error (100 %); the cohort: 50 % over 10,000 requests.
    const gate = evaluateGates({
      step: 0,
      now: 5,
      spec,
      cohort: [agentWith('a', [0, 0], [5_000, 5_000])],
      rest: [agentWith('b', [0, 0], [0, 1], '1')],
      cohortLatency: [],
    });
    expect(gate.verdict).toBe('fail');
    expect(gate.reasons[0]).toMatch(/the rest saw 1 requests, too few to compare with; 100 needed/);
    // minRequests raises the floor the rest must reach.
    const busier = evaluateGates({
      step: 0,
      now: 5,
      spec: { maxErrorRate: 0.01, minRequests: 500 },
      cohort: [agentWith('a', [0, 0], [500, 500])],
      rest: [agentWith('b', [0, 0], [100, 300], '1')],
      cohortLatency: [],
    });
    expect(busier.verdict).toBe('fail');
    expect(busier.reasons[0]).toMatch(/500 needed/);
  });

  it('excuses a cohort only within maxErrorRate of a busy rest', () => {
    const judge = (cohortErrors: number): string =>
      evaluateGates({
        step: 1,
        now: 5,
        spec: { maxErrorRate: 0.05, minRequests: 0 },
        cohort: [agentWith('a', [0, 0], [1_000 - cohortErrors, cohortErrors])],
        rest: [agentWith('b', [0, 0], [800, 200], '1')],
        cohortLatency: [],
      }).verdict;
    expect(judge(240)).toBe('pass'); // 24 %: within 5 points of the rest's 20 %
    expect(judge(260)).toBe('fail'); // 26 %: more than 5 points worse
    expect(judge(40)).toBe('pass'); // 4 %: below maxErrorRate anyway
  });

  it('fails any failed load at once, whatever the traffic', () => {
    const gate = evaluateGates({
      step: 0,
      now: 5,
      spec: { ...spec, minRequests: 1000 },
      cohort: [{ agentId: 'a', failedLoad: 'self-test-failed' }],
      rest: [],
      cohortLatency: [],
    });
    expect(gate).toMatchObject({ verdict: 'fail', cohort: { failedLoads: ['a'] } });
  });

  it('waits while the cohort has seen fewer than minRequests', () => {
    const gate = evaluateGates({
      step: 0,
      now: 5,
      spec: { ...spec, minRequests: 50 },
      cohort: [agentWith('a', [0, 0], [20, 0])],
      rest: [],
      cohortLatency: [],
    });
    expect(gate.verdict).toBe('wait');
  });

  it('fails a p95 above maxP95Ms, weighting heartbeats by their requests', () => {
    expect(
      weightedP95([
        { p95Ms: 10, requests: 90 },
        { p95Ms: 100, requests: 10 },
      ]),
    ).toBeCloseTo(19);
    expect(weightedP95([{ p95Ms: 10, requests: 0 }])).toBeUndefined();
    const gate = evaluateGates({
      step: 0,
      now: 5,
      spec: { ...spec, maxP95Ms: 15 },
      cohort: [agentWith('a', [0, 0], [100, 0])],
      rest: [],
      cohortLatency: [
        { p95Ms: 10, requests: 90 },
        { p95Ms: 100, requests: 10 },
      ],
    });
    expect(gate.verdict).toBe('fail');
    expect(gate.reasons[0]).toMatch(/p95 latency 19.0 ms is above maxP95Ms 15 ms/);
  });
});

import { describe, expect, it } from 'vitest';
import type { ClientResult } from '@infermesh/federated';
import { decodeServerState, encodeServerState } from './global-weights.js';
import { createRunAggregation } from './run-strategy.js';
import type { RunAggregation, RunAggregationSettings } from './run-strategy.js';

/** Server-side DP with an adaptive clip norm around FedAvgM (momentum: server state of its own). */
const SETTINGS: RunAggregationSettings = {
  strategy: 'fedavgm',
  strategyOptions: { serverMomentum: 0.9 },
  clientsPerRound: 40,
  privacy: { mode: 'server', clipNorm: 1, noiseMultiplier: 0.5, targetQuantile: 0.5 },
  secure: false,
};

const global = (): Float32Array[] => [new Float32Array([0, 0, 0]), new Float32Array([0])];

/** `clients` results whose deltas have norms 0.01, 0.02, ... (all far below the first C). */
function results(clients: number, current: readonly Float32Array[]): ClientResult[] {
  return Array.from({ length: clients }, (_, i) => ({
    weights: current.map((layer, l) => layer.map((v, k) => v + (l === 0 && k === 0 ? 0.01 * (i + 1) : 0))),
    numExamples: 10,
  }));
}

/** One round: every result folded in, the new global returned. */
function round(aggregation: RunAggregation, current: Float32Array[]): Float32Array[] {
  const aggregator = aggregation.begin(current);
  for (const result of results(40, current)) aggregator.add(result);
  return aggregator.finish();
}

describe('run aggregation state', () => {
  it('keeps the adaptive DP clip norm across a restart: a restored run continues with the same C', () => {
    const original = createRunAggregation(SETTINGS);
    let weights = round(original, global());
    weights = round(original, weights);
    const afterTwo = original.lastDpRound!;
    expect(afterTwo.nextClipNorm).toBeLessThan(1); // every norm fits under C: it adapts downwards

    // What the driver stores after a closed round and a coordinator taking over loads.
    const stored = encodeServerState(original.exportState()!);
    const takenOver = createRunAggregation(SETTINGS);
    takenOver.importState(decodeServerState(stored));

    round(original, weights);
    round(takenOver, weights);
    expect(takenOver.lastDpRound!.clipNorm).toBe(afterTwo.nextClipNorm);
    expect(takenOver.lastDpRound!.clipNorm).toBe(original.lastDpRound!.clipNorm);
    expect(takenOver.lastDpRound!.noiseStddev).toBeCloseTo(original.lastDpRound!.noiseStddev, 12);
    // The strategy's own state (momentum, round count) came along too.
    expect(takenOver.strategy.streaming && takenOver.strategy.round).toBe(3);

    // Without the saved state a new coordinator would start again from the initial C.
    const fresh = createRunAggregation(SETTINGS);
    round(fresh, weights);
    expect(fresh.lastDpRound!.clipNorm).toBe(1);
  });

  it('stores no clip norm where there is none to adapt', () => {
    const fixed = createRunAggregation({
      ...SETTINGS,
      privacy: { mode: 'server', clipNorm: 1, noiseMultiplier: 0.5 },
    });
    round(fixed, global());
    const state = decodeServerState(encodeServerState(fixed.exportState()!));
    expect(state.adaptiveClipNorm).toBeUndefined();
    expect(state.round).toBe(1);
    expect(fixed.lastDpRound!.nextClipNorm).toBe(1);

    const plain = createRunAggregation({ ...SETTINGS, privacy: undefined });
    round(plain, global());
    expect(plain.lastDpRound).toBeUndefined();
    expect(decodeServerState(encodeServerState(plain.exportState()!)).adaptiveClipNorm).toBeUndefined();

    const robust = createRunAggregation({
      ...SETTINGS,
      strategy: 'fedmedian',
      strategyOptions: {},
      privacy: undefined,
    });
    expect(robust.exportState()).toBeUndefined();
  });
});

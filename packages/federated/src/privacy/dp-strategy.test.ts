import { describe, expect, it } from 'vitest';
import { createStrategy } from '../create-strategy.js';
import { f32, result } from '../test-support/layers.js';
import { createDpStrategy } from './dp-strategy.js';
import { createGaussian, createSeededRandom } from './random.js';

const seeded = (seed: number) => createGaussian(createSeededRandom(seed));

describe('createDpStrategy', () => {
  it('clips each delta on the server and averages uniformly (noise 0)', () => {
    const dp = createDpStrategy(createStrategy('fedavg'), {
      clipping: 'server',
      noiseMultiplier: 0,
      clipNorm: 1,
    });
    // Deltas (0.3, 0.4) (norm 0.5, kept) and (0, 4) (norm 4, scaled to (0, 1)); example counts ignored.
    const next = dp.aggregate([f32(0, 0)], [result(1, [0.3, 0.4]), result(1000, [0, 4])]);
    expect(next[0]![0]).toBeCloseTo(0.15, 6);
    expect(next[0]![1]).toBeCloseTo(0.7, 6);
    expect(dp.lastRound).toMatchObject({
      clipNorm: 1,
      clients: 2,
      belowClipCount: 1,
      noiseStddev: 0,
      nextClipNorm: 1,
    });
  });

  it('clips the delta, not the weights', () => {
    const dp = createDpStrategy(createStrategy('fedavg'), {
      clipping: 'server',
      noiseMultiplier: 0,
      clipNorm: 1,
    });
    // current (10, 10), client (13, 14): delta (3, 4), clipped to (0.6, 0.8)
    const next = dp.aggregate([f32(10, 10)], [result(1, [13, 14])]);
    expect(next[0]![0]).toBeCloseTo(10.6, 5);
    expect(next[0]![1]).toBeCloseTo(10.8, 5);
  });

  it('adds noise with σ = z·C / n to the mean (statistical, seeded)', () => {
    const size = 100_000;
    const current = [new Float32Array(size)];
    const dp = createDpStrategy(createStrategy('fedavg'), {
      clipping: 'server',
      noiseMultiplier: 1,
      clipNorm: 2,
      gaussian: seeded(21),
    });
    // Four clients with the same delta of norm 4 (≫ C): each clipped to norm 2 (value 2/√size).
    const delta = 4 / Math.sqrt(size);
    const results = Array.from({ length: 4 }, () => ({
      weights: [new Float32Array(size).fill(delta)],
      numExamples: 1,
    }));
    const next = dp.aggregate(current, results);
    const expectedMean = 2 / Math.sqrt(size);
    let sum = 0;
    let squares = 0;
    for (const x of next[0]!) {
      sum += x - expectedMean;
      squares += (x - expectedMean) ** 2;
    }
    const std = Math.sqrt(squares / size);
    expect(dp.lastRound!.noiseStddev).toBeCloseTo(0.5, 12); // 1 · 2 / 4
    expect(Math.abs(std - 0.5) / 0.5).toBeLessThan(0.01);
    expect(Math.abs(sum / size)).toBeLessThan(0.01);
  });

  it('divides by expectedClients when given (fixed denominator)', () => {
    const dp = createDpStrategy(createStrategy('fedavg'), {
      clipping: 'server',
      noiseMultiplier: 0,
      clipNorm: 10,
      expectedClients: 4,
    });
    expect(Array.from(dp.aggregate([f32(0)], [result(1, [2]), result(1, [2])])[0]!)).toEqual([1]);
  });

  it('adapts C from the server-side bits and uses the new C from the next round on', () => {
    const dp = createDpStrategy(createStrategy('fedavg'), {
      clipping: 'server',
      noiseMultiplier: 0,
      adaptive: { initialClipNorm: 1, targetQuantile: 0.5, clipLearningRate: 0.2, countNoiseStddev: 0 },
    });
    expect(dp.clipNorm).toBe(1);
    // Norms 0.5 and 0.1 both <= 1: b̄ = 1 > 0.5, so C shrinks by exp(−0.1).
    dp.aggregate([f32(0)], [result(1, [0.5]), result(1, [0.1])]);
    expect(dp.lastRound).toMatchObject({ clipNorm: 1, belowClipCount: 2 });
    expect(dp.clipNorm).toBeCloseTo(Math.exp(-0.1), 12);
    // Next round clips at 0.9048: delta 2 becomes 0.9048.
    const next = dp.aggregate([f32(0)], [result(1, [2])]);
    expect(next[0]![0]).toBeCloseTo(Math.exp(-0.1), 6);
  });

  it('with client-side clipping takes the bits from the clients and re-clips defensively', () => {
    const dp = createDpStrategy(createStrategy('fedavgm', { serverMomentum: 0 }), {
      clipping: 'client',
      noiseMultiplier: 0,
      adaptive: { initialClipNorm: 1, countNoiseStddev: 0 },
    });
    // Both clients say their unclipped norm was above C (b = 0): C grows by exp(0.1).
    const next = dp.aggregate(
      [f32(0)],
      [
        { ...result(1, [1]), normBelowClip: false },
        { ...result(1, [3]), normBelowClip: false }, // a buggy client that did not clip: re-clipped to 1
      ],
    );
    expect(Array.from(next[0]!)).toEqual([1]);
    expect(dp.clipNorm).toBeCloseTo(Math.exp(0.1), 12);
    expect(() => dp.aggregate([f32(0)], [result(1, [0.5])])).toThrow(/normBelowClip/);
  });

  it('raises the update noise under adaptive clipping to pay for the noisy count', () => {
    const dp = createDpStrategy(createStrategy('fedavg'), {
      clipping: 'server',
      noiseMultiplier: 1,
      adaptive: { initialClipNorm: 1, countNoiseStddev: 5, gaussian: seeded(1) },
      gaussian: seeded(2),
    });
    dp.aggregate([f32(0)], [result(1, [0.5])]);
    expect(dp.lastRound!.effectiveNoiseMultiplier).toBeCloseTo(1 / Math.sqrt(0.99), 12);
    expect(dp.lastRound!.noiseStddev).toBeCloseTo(1 / Math.sqrt(0.99), 12);
  });

  it('exports and imports the adaptive clip norm (a fixed one has no state)', () => {
    const options = {
      clipping: 'server',
      noiseMultiplier: 0,
      adaptive: { initialClipNorm: 1, targetQuantile: 0.5, countNoiseStddev: 0 },
    } as const;
    const first = createDpStrategy(createStrategy('fedavg'), options);
    // Both deltas are far below C = 1: C shrinks.
    first.aggregate([f32(0, 0)], [result(1, [0.01, 0]), result(1, [0, 0.02])]);
    const saved = first.exportState();
    expect(saved?.clipNorm).toBeLessThan(1);
    const second = createDpStrategy(createStrategy('fedavg'), options);
    expect(second.clipNorm).toBe(1);
    second.importState(saved!);
    expect(second.clipNorm).toBe(first.clipNorm);
    const round = [result(1, [3, 4]), result(1, [0.001, 0])];
    first.aggregate([f32(0, 0)], round);
    second.aggregate([f32(0, 0)], round);
    expect(second.lastRound).toEqual(first.lastRound);

    const fixed = createDpStrategy(createStrategy('fedavg'), {
      clipping: 'server',
      noiseMultiplier: 0,
      clipNorm: 1,
    });
    expect(fixed.exportState()).toBeUndefined();
    expect(() => fixed.importState({ clipNorm: 2 })).toThrow(
      expect.objectContaining({ code: 'INVALID_INPUT' }),
    );
  });

  it('validates its options', () => {
    const inner = createStrategy('fedavg');
    const expectInvalid = (fn: () => unknown) =>
      expect(fn).toThrow(expect.objectContaining({ code: 'INVALID_INPUT' }));
    expectInvalid(() => createDpStrategy(inner, { clipping: 'server', noiseMultiplier: 1 }));
    expectInvalid(() =>
      createDpStrategy(inner, { clipping: 'server', noiseMultiplier: 1, clipNorm: 1, adaptive: {} }),
    );
    expectInvalid(() => createDpStrategy(inner, { clipping: 'server', noiseMultiplier: -1, clipNorm: 1 }));
    expectInvalid(() =>
      createDpStrategy(inner, { clipping: 'both' as never, noiseMultiplier: 1, clipNorm: 1 }),
    );
    const dp = createDpStrategy(inner, { clipping: 'server', noiseMultiplier: 0, clipNorm: 1 });
    expectInvalid(() => dp.aggregate([f32(0)], [result(1, [Number.NaN])]));
  });
});

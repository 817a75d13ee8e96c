import { describe, expect, it } from 'vitest';
import { AdaptiveClipNorm, adaptiveNoiseMultiplier } from './adaptive-clip.js';
import { createGaussian, createSeededRandom } from './random.js';

/** Runs adaptive clipping for `rounds` rounds over fixed unclipped norms; returns C. */
function converge(
  norms: readonly number[],
  targetQuantile: number,
  rounds: number,
  countNoiseStddev = 0,
): number {
  const clip = new AdaptiveClipNorm({
    initialClipNorm: 0.1,
    targetQuantile,
    clipLearningRate: 0.2,
    countNoiseStddev,
    gaussian: createGaussian(createSeededRandom(5)),
  });
  for (let round = 0; round < rounds; round += 1) {
    const below = norms.filter((norm) => norm <= clip.clipNorm).length; // bᵢ on the unclipped norm
    clip.update(below, norms.length);
  }
  return clip.clipNorm;
}

describe('AdaptiveClipNorm (Andrew et al. 2021)', () => {
  it('shrinks C when more than the target fraction of updates fit under it', () => {
    const clip = new AdaptiveClipNorm({
      initialClipNorm: 1,
      targetQuantile: 0.5,
      clipLearningRate: 0.2,
      countNoiseStddev: 0,
    });
    // All 10 below: b̄ = 1, C = exp(−0.2·(1 − 0.5)) = 0.904837
    expect(clip.update(10, 10)).toBeCloseTo(Math.exp(-0.1), 12);
  });

  it('grows C when fewer than the target fraction fit under it', () => {
    const clip = new AdaptiveClipNorm({
      initialClipNorm: 1,
      targetQuantile: 0.5,
      clipLearningRate: 0.2,
      countNoiseStddev: 0,
    });
    // None below: b̄ = 0, C = exp(0.1) = 1.105171
    expect(clip.update(0, 10)).toBeCloseTo(Math.exp(0.1), 12);
  });

  it('moves C to the target quantile of the unclipped norms', () => {
    const norms = Array.from({ length: 100 }, (_, i) => i + 1); // 1..100
    // From C0 = 0.1, about ln(500)/0.1 ≈ 62 rounds to climb to the median; then it hovers there.
    expect(converge(norms, 0.5, 600)).toBeGreaterThan(48);
    expect(converge(norms, 0.5, 600)).toBeLessThan(53);
    expect(converge(norms, 0.9, 600)).toBeGreaterThan(88);
    expect(converge(norms, 0.9, 600)).toBeLessThan(93);
    expect(converge(norms, 0.1, 600)).toBeGreaterThan(8);
    expect(converge(norms, 0.1, 600)).toBeLessThan(13);
  });

  it('still finds the quantile with noise on the count (σ_b = n / 20)', () => {
    const norms = Array.from({ length: 100 }, (_, i) => i + 1);
    const finals = [300, 310, 320, 330, 340].map((rounds) => converge(norms, 0.5, rounds, 5));
    for (const c of finals) {
      expect(c).toBeGreaterThan(35);
      expect(c).toBeLessThan(65);
    }
  });

  it('splits the noise multiplier with the count: z_Δ = (z⁻² − (2σ_b)⁻²)^(−1/2)', () => {
    // z = 1, σ_b = 5: (1 − 0.01)^(−1/2) = 1.0050378
    expect(adaptiveNoiseMultiplier(1, 5)).toBeCloseTo(1 / Math.sqrt(0.99), 12);
    expect(adaptiveNoiseMultiplier(0, 5)).toBe(0);
    expect(() => adaptiveNoiseMultiplier(1, 0.5)).toThrow(expect.objectContaining({ code: 'INVALID_INPUT' }));
  });

  it('continues from a restored clip norm exactly as the original instance does', () => {
    const options = { initialClipNorm: 1, targetQuantile: 0.5, clipLearningRate: 0.2, countNoiseStddev: 0 };
    const original = new AdaptiveClipNorm(options);
    original.update(9, 10);
    original.update(8, 10);
    const restored = new AdaptiveClipNorm(options);
    expect(restored.clipNorm).toBe(1);
    restored.restore(original.clipNorm);
    expect(restored.clipNorm).toBe(original.clipNorm);
    expect(restored.update(2, 10)).toBe(original.update(2, 10));
    for (const bad of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => restored.restore(bad)).toThrow(expect.objectContaining({ code: 'INVALID_INPUT' }));
    }
  });

  it('validates its options and inputs', () => {
    expect(() => new AdaptiveClipNorm({ targetQuantile: 1.5 })).toThrow(
      expect.objectContaining({ code: 'INVALID_INPUT' }),
    );
    expect(() => new AdaptiveClipNorm({ initialClipNorm: 0 })).toThrow(
      expect.objectContaining({ code: 'INVALID_INPUT' }),
    );
    expect(() => new AdaptiveClipNorm().update(11, 10)).toThrow(
      expect.objectContaining({ code: 'INVALID_INPUT' }),
    );
  });
});

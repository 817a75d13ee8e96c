/**
 * Adaptive clip norm (Andrew, Thakkar, McMahan and Ramaswamy 2021, "Differentially Private
 * Learning with Adaptive Clipping"). Each round every client reports bᵢ = 1 when its *unclipped*
 * update norm is <= C. The server averages the bits with Gaussian noise on the count,
 * b̄ = (Σ bᵢ + N(0, σ_b²)) / n, and takes a geometric step
 *
 *   C ← C · exp(−η_C · (b̄ − γ)).
 *
 * Sign check: b̄ > γ means more than the target fraction γ of updates already fit under C, so C
 * is larger than the γ-quantile of the norms and must shrink — exp of a negative number does
 * that. At the fixed point b̄ = γ, C is the γ-quantile of the unclipped norms.
 *
 * The noisy count costs privacy too: for a total noise multiplier z, the updates get
 * z_Δ = (z⁻² − (2σ_b)⁻²)^(−1/2) (the paper's Theorem 1), so σ_b must exceed z / 2.
 * @module
 */
import { invalidInput } from '@infermesh/protocols';
import type { GaussianRandom } from './random.js';
import { createGaussian } from './random.js';

/** The paper's recommended starting point and step: C₀ = 0.1, γ = 0.5, η_C = 0.2. */
export const ADAPTIVE_CLIP_DEFAULTS = {
  initialClipNorm: 0.1,
  targetQuantile: 0.5,
  clipLearningRate: 0.2,
} as const;

/** The paper recommends σ_b = (expected clients per round) / 20. */
export const COUNT_NOISE_CLIENTS_DIVISOR = 20;

export interface AdaptiveClipOptions {
  /** C₀. Default 0.1. */
  readonly initialClipNorm?: number;
  /** γ: the fraction of updates that should end up unclipped. Default 0.5 (the median norm). */
  readonly targetQuantile?: number;
  /** η_C of the geometric update. Default 0.2. */
  readonly clipLearningRate?: number;
  /** σ_b, noise on the count of bits. Default: clients / 20 at each update. 0 for no noise. */
  readonly countNoiseStddev?: number;
  /** Normal source for the count noise; cryptographic by default. */
  readonly gaussian?: GaussianRandom;
}

/** z_Δ for the updates when a total noise multiplier z is split with the count's σ_b. */
export function adaptiveNoiseMultiplier(noiseMultiplier: number, countNoiseStddev: number): number {
  if (noiseMultiplier === 0) return 0;
  if (!(countNoiseStddev > noiseMultiplier / 2)) {
    throw invalidInput(
      `adaptive clipping with noise multiplier ${noiseMultiplier} needs a count noise stddev > ${noiseMultiplier / 2}, ` +
        `got ${countNoiseStddev} (use more clients per round or set countNoiseStddev)`,
    );
  }
  return (noiseMultiplier ** -2 - (2 * countNoiseStddev) ** -2) ** -0.5;
}

function checkRange(name: string, value: number, ok: boolean): void {
  if (!ok) throw invalidInput(`adaptive clipping ${name} is out of range: ${value}`, { option: name });
}

/** The clip norm C and its update rule. */
export class AdaptiveClipNorm {
  readonly targetQuantile: number;
  readonly clipLearningRate: number;
  readonly #countNoiseStddev: number | undefined;
  readonly #gaussian: GaussianRandom;
  #clipNorm: number;

  constructor(options: AdaptiveClipOptions = {}) {
    const { initialClipNorm, targetQuantile, clipLearningRate } = { ...ADAPTIVE_CLIP_DEFAULTS, ...options };
    checkRange('initialClipNorm', initialClipNorm, Number.isFinite(initialClipNorm) && initialClipNorm > 0);
    checkRange('targetQuantile', targetQuantile, targetQuantile >= 0 && targetQuantile <= 1);
    checkRange(
      'clipLearningRate',
      clipLearningRate,
      Number.isFinite(clipLearningRate) && clipLearningRate > 0,
    );
    const sigma = options.countNoiseStddev;
    if (sigma !== undefined) checkRange('countNoiseStddev', sigma, Number.isFinite(sigma) && sigma >= 0);
    this.#clipNorm = initialClipNorm;
    this.targetQuantile = targetQuantile;
    this.clipLearningRate = clipLearningRate;
    this.#countNoiseStddev = sigma;
    this.#gaussian = options.gaussian ?? createGaussian();
  }

  /** The clip norm C to use this round. */
  get clipNorm(): number {
    return this.#clipNorm;
  }

  /**
   * Sets C to a value saved from an earlier instance ({@link clipNorm} after its last update), so
   * a run continued elsewhere (a coordinator taking over) keeps adapting from where it was.
   */
  restore(clipNorm: number): void {
    checkRange('clipNorm', clipNorm, Number.isFinite(clipNorm) && clipNorm > 0);
    this.#clipNorm = clipNorm;
  }

  /** σ_b for a round of `clients` clients. */
  countNoiseStddev(clients: number): number {
    return this.#countNoiseStddev ?? clients / COUNT_NOISE_CLIENTS_DIVISOR;
  }

  /**
   * Takes one round's bits — `belowClipCount` of `clients` had an unclipped norm <= C — and
   * returns the new C.
   */
  update(belowClipCount: number, clients: number): number {
    if (!Number.isInteger(clients) || clients < 1)
      throw invalidInput(`clients must be an integer >= 1, got ${clients}`);
    if (!Number.isInteger(belowClipCount) || belowClipCount < 0 || belowClipCount > clients) {
      throw invalidInput(`belowClipCount must be an integer in [0, ${clients}], got ${belowClipCount}`);
    }
    const noisyFraction = (belowClipCount + this.countNoiseStddev(clients) * this.#gaussian()) / clients;
    this.#clipNorm *= Math.exp(-this.clipLearningRate * (noisyFraction - this.targetQuantile));
    return this.#clipNorm;
  }
}

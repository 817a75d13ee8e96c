/**
 * Central differential privacy around a streaming strategy (DP-FedAvg, McMahan et al. 2018, with
 * the clip norm fixed or adaptive as in Andrew et al. 2021): every client's delta is clipped to
 * L2 norm C, the clipped deltas are averaged *uniformly* (example counts are client-reported and
 * would break the C / n sensitivity bound), Gaussian noise σ = z·C / n is added to the mean, and
 * the inner strategy's server step (FedAvg, FedAvgM, FedOpt — post-processing, no privacy cost)
 * turns the noisy mean into the new model. Memory stays O(model size): deltas are clipped and
 * folded in one at a time.
 *
 * - `clipping: 'server'`: clients send raw weights; the server clips and computes the bits.
 * - `clipping: 'client'`: clients clip with {@link clipUpdate} (C from `strategy.clipNorm`) and
 *   report `normBelowClip`; the server never sees an unclipped update. It re-clips anyway, a
 *   no-op for honest clients that keeps the sensitivity bound against buggy ones.
 *
 * Local DP (each client adds its own noise with {@link privatizeUpdate}) needs no wrapper: use
 * the plain strategy, or this one with `noiseMultiplier: 0`.
 * @module
 */
import { invalidInput } from '@infermesh/protocols';
import { createStreamingAggregator } from '../streaming.js';
import type { StreamingStrategy } from '../strategy.js';
import type { ClientResult, Layers } from '../types.js';
import { assertSomeResults, validateModel, validateResultShape } from '../vector.js';
import type { AdaptiveClipOptions } from './adaptive-clip.js';
import { AdaptiveClipNorm, adaptiveNoiseMultiplier } from './adaptive-clip.js';
import { clipScale } from './clipping.js';
import { addGaussianNoise, meanNoiseStddev } from './gaussian.js';
import type { GaussianRandom } from './random.js';
import { createGaussian } from './random.js';

/** A client result with the adaptive-clipping bit (needed with `clipping: 'client'` and `adaptive`). */
export interface DpClientResult extends ClientResult {
  /** Whether the client's unclipped delta norm was <= the round's clip norm. */
  readonly normBelowClip?: boolean;
}

export interface DpOptions {
  /** Where updates are clipped. */
  readonly clipping: 'server' | 'client';
  /** z: noise σ = z·C / n on the mean. */
  readonly noiseMultiplier: number;
  /** Fixed clip norm C. Exactly one of `clipNorm` and `adaptive`. */
  readonly clipNorm?: number;
  /** Adaptive clip norm (Andrew et al. 2021); the count noise is taken from z as the paper does. */
  readonly adaptive?: AdaptiveClipOptions;
  /**
   * Divide the sum by this many clients instead of the round's actual count (the fixed-denominator
   * estimator of DP-FedAvg, when the count itself should not depend on who answered).
   */
  readonly expectedClients?: number;
  /** Normal source for the update noise; cryptographic by default, seeded in tests. */
  readonly gaussian?: GaussianRandom;
}

/** What one DP round did. */
export interface DpRoundReport {
  readonly clipNorm: number;
  readonly clients: number;
  /** Clients whose unclipped norm was <= clipNorm. */
  readonly belowClipCount: number;
  /** z actually applied to the updates (z_Δ under adaptive clipping). */
  readonly effectiveNoiseMultiplier: number;
  /** σ of the noise added to each coordinate of the mean delta. */
  readonly noiseStddev: number;
  /** C for the next round. */
  readonly nextClipNorm: number;
}

export interface DpRoundAggregator {
  add(result: DpClientResult): void;
  readonly count: number;
  finish(): Float32Array[];
}

/** What a DP strategy carries from round to round, to persist across restarts. */
export interface DpState {
  /** The adaptive clip norm C for the next round. */
  readonly clipNorm: number;
}

export interface DpStrategy {
  readonly name: string;
  readonly inner: StreamingStrategy;
  /** C for the next round (send it to clients when they clip). */
  readonly clipNorm: number;
  readonly lastRound: DpRoundReport | undefined;
  aggregate(current: Layers, results: readonly DpClientResult[]): Float32Array[];
  begin(current: Layers): DpRoundAggregator;
  /** The adaptive clip norm's state; undefined with a fixed clip norm (nothing to carry). */
  exportState(): DpState | undefined;
  /** Restores {@link exportState}'s state; INVALID_INPUT without adaptive clipping or for a bad C. */
  importState(state: DpState): void;
}

/** Norm of (weights − current) over all layers, NaN if any value is not finite. */
function deltaNorm(weights: Layers, current: Layers): number {
  let sum = 0;
  for (let l = 0; l < weights.length; l += 1) {
    const w = weights[l]!;
    const c = current[l]!;
    for (let i = 0; i < w.length; i += 1) {
      const d = w[i]! - c[i]!;
      sum += d * d;
    }
  }
  return Math.sqrt(sum);
}

/**
 * Wraps a streaming strategy with central DP.
 *
 * @example
 * const dp = createDpStrategy(createStrategy('fedavg'), { clipping: 'server', noiseMultiplier: 1, adaptive: {} });
 * const next = dp.aggregate(globalLayers, results);
 */
export function createDpStrategy(inner: StreamingStrategy, options: DpOptions): DpStrategy {
  const { clipping, noiseMultiplier, expectedClients } = options;
  if (clipping !== 'server' && clipping !== 'client')
    throw invalidInput(`clipping must be 'server' or 'client'`);
  if (!Number.isFinite(noiseMultiplier) || noiseMultiplier < 0) {
    throw invalidInput(`noiseMultiplier must be finite and >= 0, got ${noiseMultiplier}`);
  }
  if ((options.clipNorm === undefined) === (options.adaptive === undefined)) {
    throw invalidInput('give exactly one of clipNorm (fixed) and adaptive');
  }
  if (options.clipNorm !== undefined && !(options.clipNorm > 0 && Number.isFinite(options.clipNorm))) {
    throw invalidInput(`clipNorm must be finite and > 0, got ${options.clipNorm}`);
  }
  if (expectedClients !== undefined && !(Number.isInteger(expectedClients) && expectedClients >= 1)) {
    throw invalidInput(`expectedClients must be an integer >= 1, got ${expectedClients}`);
  }
  const adaptive = options.adaptive ? new AdaptiveClipNorm(options.adaptive) : undefined;
  const gaussian = options.gaussian ?? createGaussian();
  const fixedClipNorm = options.clipNorm ?? 0;
  let lastRound: DpRoundReport | undefined;
  const currentClipNorm = (): number => adaptive?.clipNorm ?? fixedClipNorm;

  const begin = (current: Layers): DpRoundAggregator => {
    validateModel(current);
    const clipNorm = currentClipNorm();
    const sums = createStreamingAggregator(current);
    let belowClipCount = 0;
    return {
      add(result: DpClientResult): void {
        const what = `result ${sums.count}`;
        validateResultShape(result, current, what);
        const norm = deltaNorm(result.weights, current);
        if (!Number.isFinite(norm)) throw invalidInput(`${what} has a non-finite value`, { what });
        let below = norm <= clipNorm;
        if (clipping === 'client' && adaptive) {
          if (typeof result.normBelowClip !== 'boolean') {
            throw invalidInput(`${what}: client-side adaptive clipping needs the normBelowClip bit`, {
              what,
            });
          }
          below = result.normBelowClip;
        }
        // Σ sᵢ·xᵢ with weight sᵢ = min(1, C/‖Δᵢ‖); finishMeanDelta subtracts (Σ sᵢ)·current,
        // leaving Σ sᵢ·Δᵢ: the sum of the clipped deltas.
        sums.addWeighted(result.weights, clipScale(norm, clipNorm), what);
        if (below) belowClipCount += 1;
      },
      get count() {
        return sums.count;
      },
      finish(): Float32Array[] {
        const clients = sums.count;
        if (clients === 0) throw invalidInput('no client results to aggregate');
        const divisor = expectedClients ?? clients;
        const meanDelta = sums.finishMeanDelta(divisor);
        const effectiveNoiseMultiplier = adaptive
          ? adaptiveNoiseMultiplier(noiseMultiplier, adaptive.countNoiseStddev(clients))
          : noiseMultiplier;
        const noiseStddev = meanNoiseStddev(effectiveNoiseMultiplier, clipNorm, divisor);
        addGaussianNoise(meanDelta, noiseStddev, gaussian);
        const next = inner.applyMeanDelta(current, meanDelta);
        // The bits were counted against this round's C; the new C applies from the next round.
        const nextClipNorm = adaptive ? adaptive.update(belowClipCount, clients) : clipNorm;
        lastRound = {
          clipNorm,
          clients,
          belowClipCount,
          effectiveNoiseMultiplier,
          noiseStddev,
          nextClipNorm,
        };
        return next;
      },
    };
  };

  return {
    name: `dp-${inner.name}`,
    inner,
    get clipNorm() {
      return currentClipNorm();
    },
    get lastRound() {
      return lastRound;
    },
    begin,
    exportState(): DpState | undefined {
      return adaptive ? { clipNorm: adaptive.clipNorm } : undefined;
    },
    importState(state: DpState): void {
      if (!adaptive) throw invalidInput('a fixed clip norm has no state to restore');
      adaptive.restore(state.clipNorm);
    },
    aggregate(current: Layers, results: readonly DpClientResult[]): Float32Array[] {
      assertSomeResults(results);
      const round = begin(current);
      for (const result of results) round.add(result);
      return round.finish();
    },
  };
}

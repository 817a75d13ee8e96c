/**
 * The coordinator's policy for secure-aggregation rounds: which runs may use it (checked when a
 * run starts), the threshold t and fixed-point resolution every client of a round is told, the
 * per-phase timeouts inside the round deadline, and the masked vector's layout (protocols'
 * `federated.ts`: `delta * numExamples` per tensor, concatenated, then `numExamples`) read back
 * from the unmasked sum as the mean delta.
 * @module
 */
import { invalidInput } from '@infermesh/protocols';
import type { FlPrivacy } from '@infermesh/protocols';
import type { TensorShape } from './global-weights.js';

/**
 * Fixed-point fractional bits of secure rounds. The vector holds `delta * numExamples`, so range
 * matters more than resolution: with 12 bits a client may send |x| <= 524288 / n, and the sum's
 * rounding error (n * 2^-13 per value) shrinks again when it is divided by the summed counts.
 */
export const SECURE_FRACTIONAL_BITS = 12;
/** Bounds of one secure phase's timeout (the round timeout / {@link SECURE_PHASE_FRACTION}). */
export const SECURE_PHASE_MIN_MS = 1_000;
export const SECURE_PHASE_MAX_MS = 15_000;
export const SECURE_PHASE_FRACTION = 6;

/**
 * t for a round of `clients` clients: a strict majority, and at least 2. Below t survivors the
 * round cannot be unmasked; a majority means no minority of clients can help the server unmask
 * anyone, and up to n - t clients may drop after sharing and be recovered.
 */
export function secureThreshold(clients: number): number {
  return Math.max(2, Math.floor(clients / 2) + 1);
}

/** How long each of the advertise, share and unmask phases may wait for the stragglers. */
export function securePhaseTimeoutMs(roundTimeoutMs: number): number {
  return Math.min(
    SECURE_PHASE_MAX_MS,
    Math.max(SECURE_PHASE_MIN_MS, Math.floor(roundTimeoutMs / SECURE_PHASE_FRACTION)),
  );
}

/** What a secure run's start request must allow. */
export interface SecureRunSettings {
  readonly secure: boolean;
  readonly clientsPerRound: number;
  readonly privacy?: FlPrivacy | undefined;
}

/**
 * INVALID_INPUT for settings secure aggregation cannot serve. (The strategy check — linear,
 * streaming strategies only — is `createRunAggregation`'s.) Server-side DP clips each update,
 * which the server never sees under secure aggregation: client-side DP is the way to combine them.
 */
export function checkSecureRun(settings: SecureRunSettings): void {
  if (!settings.secure) return;
  if (settings.clientsPerRound < 2) {
    throw invalidInput('secure aggregation needs clientsPerRound >= 2: the sum of one client is its update');
  }
  if (settings.privacy?.mode === 'server') {
    throw invalidInput(
      "server-side differential privacy clips each update, which secure aggregation hides from the server; use privacy.mode 'client'",
    );
  }
}

/** Length of a round's masked vector: every trainable value, then the example count. */
export function secureVectorLength(shapes: readonly TensorShape[]): number {
  return shapes.reduce((n, s) => n + s.dims.reduce((a, b) => a * b, 1), 0) + 1;
}

/** The unmasked sum read back: the example-weighted mean delta per tensor, and the summed count. */
export interface SecureMean {
  readonly delta: Float32Array[];
  readonly numExamples: number;
}

/** Divides the unmasked sum by its last element (the summed counts) and splits it into tensors. */
export function meanOfSecureSum(sum: Float32Array, shapes: readonly TensorShape[]): SecureMean {
  if (sum.length !== secureVectorLength(shapes)) {
    throw invalidInput(`the unmasked sum has ${sum.length} values, expected ${secureVectorLength(shapes)}`);
  }
  const numExamples = Math.round(sum[sum.length - 1]!);
  if (!(numExamples >= 1)) throw invalidInput(`the unmasked example count is ${sum[sum.length - 1]}`);
  const delta: Float32Array[] = [];
  let offset = 0;
  for (const shape of shapes) {
    const size = shape.dims.reduce((a, b) => a * b, 1);
    const layer = new Float32Array(size);
    for (let k = 0; k < size; k += 1) layer[k] = sum[offset + k]! / numExamples;
    delta.push(layer);
    offset += size;
  }
  return { delta, numExamples };
}

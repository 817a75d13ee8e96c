/**
 * The p95 gate's memory of a bake, kept where it survives its driver: the latency samples a
 * coordinator collects from heartbeats (in memory, one per heartbeat) are folded into the step's
 * `bakeLatency` in the rollout record as the bake goes. A sample is a heartbeat's p95 weighted by
 * the requests it covers, and the gate judges the request-weighted mean, so a whole run of samples
 * folds into one `{ p95Ms, requests }` total with no loss: the gate over the saved total plus the
 * samples not saved yet equals the gate over every sample. A coordinator taking over mid-bake thus
 * judges the bake its predecessor saved plus what it saw itself; only the samples since the last
 * save (at most {@link DEFAULT_LATENCY_SAVE_INTERVAL_MS}) die with the predecessor.
 * @module
 */
import type { BakeLatency, LatencyTotal } from '@infermesh/protocols';
import type { LatencySample } from './health-gates.js';

/** Longest time samples stay in memory only while a step bakes, ms (each save is one KV write). */
export const DEFAULT_LATENCY_SAVE_INTERVAL_MS = 5_000;

/** Latency samples of a rollout's cohort and of the rest. */
export interface GroupSamples {
  readonly cohort: readonly LatencySample[];
  readonly rest: readonly LatencySample[];
}

/** Folds samples into a total (the request-weighted mean of every p95 and the requests it weighs). */
export function foldLatency(
  total: LatencyTotal | undefined,
  samples: readonly LatencySample[],
): LatencyTotal {
  let requests = total?.requests ?? 0;
  let sum = (total?.p95Ms ?? 0) * requests;
  for (const s of samples) {
    if (s.requests <= 0) continue;
    requests += s.requests;
    sum += s.p95Ms * s.requests;
  }
  return { p95Ms: requests === 0 ? 0 : sum / requests, requests };
}

/** The saved latency of a bake with `unsaved` folded in, as of `now`. */
export function saveBakeLatency(
  saved: BakeLatency | undefined,
  unsaved: GroupSamples,
  now: number,
): BakeLatency {
  return {
    cohort: foldLatency(saved?.cohort, unsaved.cohort),
    rest: foldLatency(saved?.rest, unsaved.rest),
    savedAt: now,
  };
}

/** Every sample of the bake for the gate: the saved total (as one sample) and the unsaved ones. */
export function bakeSamples(saved: BakeLatency | undefined, unsaved: GroupSamples): GroupSamples {
  const withSaved = (total: LatencyTotal | undefined, samples: readonly LatencySample[]): LatencySample[] =>
    total !== undefined && total.requests > 0 ? [total, ...samples] : [...samples];
  return { cohort: withSaved(saved?.cohort, unsaved.cohort), rest: withSaved(saved?.rest, unsaved.rest) };
}

/** True when the unsaved samples of a bake are due to be saved. */
export function latencySaveDue(
  saved: BakeLatency | undefined,
  bakeStartedAt: number,
  unsaved: GroupSamples,
  now: number,
  intervalMs: number,
): boolean {
  if (unsaved.cohort.length === 0 && unsaved.rest.length === 0) return false;
  return now - (saved?.savedAt ?? bakeStartedAt) >= intervalMs;
}

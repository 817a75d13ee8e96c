/**
 * The aggregation of a run: the strategy named in the start request (`createStrategy`), wrapped in
 * central differential privacy (`createDpStrategy`, server-side clipping and noise) when the run
 * asks for `privacy.mode: 'server'`. Client-side DP needs no wrapper: clients clip and noise their
 * own deltas. Robust strategies keep every update of a round in memory, so their `maxClients`
 * must cover `clientsPerRound` (checked when the run starts).
 * @module
 */
import { createDpStrategy, createStrategy } from '@infermesh/federated';
import type { ClientResult, Layers, Strategy } from '@infermesh/federated';
import { invalidInput } from '@infermesh/protocols';
import type { FlPrivacy } from '@infermesh/protocols';

/** The settings a run's aggregation is built from. */
export interface RunAggregationSettings {
  readonly strategy: string;
  readonly strategyOptions: Readonly<Record<string, number>>;
  readonly clientsPerRound: number;
  readonly privacy?: FlPrivacy | undefined;
  readonly secure: boolean;
}

/** One round's aggregation, fed update by update. */
export interface RoundAggregation {
  add(result: ClientResult): void;
  readonly count: number;
  finish(): Float32Array[];
}

/** A run's aggregation across rounds. */
export interface RunAggregation {
  readonly strategy: Strategy;
  begin(current: Layers): RoundAggregation;
}

/** Builds the run's aggregation; INVALID_INPUT for an unusable combination of settings. */
export function createRunAggregation(settings: RunAggregationSettings): RunAggregation {
  const strategy = createStrategy(settings.strategy, settings.strategyOptions);
  if (!strategy.streaming && strategy.maxClients < settings.clientsPerRound) {
    throw invalidInput(
      `${strategy.name} keeps every update of a round in memory and takes at most ${strategy.maxClients} ` +
        `clients (strategy option maxClients); clientsPerRound is ${settings.clientsPerRound}`,
    );
  }
  if (settings.secure && !strategy.streaming) {
    throw invalidInput(`secure aggregation only reveals the sum: ${strategy.name} needs each update`);
  }
  const privacy = settings.privacy;
  if (privacy?.mode !== 'server') return { strategy, begin: (current) => strategy.begin(current) };
  if (!strategy.streaming) {
    throw invalidInput(`server-side differential privacy wraps a streaming strategy, not ${strategy.name}`);
  }
  const dp = createDpStrategy(strategy, {
    clipping: 'server',
    noiseMultiplier: privacy.noiseMultiplier,
    ...(privacy.targetQuantile === undefined
      ? { clipNorm: privacy.clipNorm }
      : { adaptive: { initialClipNorm: privacy.clipNorm, targetQuantile: privacy.targetQuantile } }),
  });
  return { strategy, begin: (current) => dp.begin(current) };
}

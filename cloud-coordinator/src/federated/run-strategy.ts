/**
 * The aggregation of a run: the strategy named in the start request (`createStrategy`), wrapped in
 * central differential privacy (`createDpStrategy`, server-side clipping and noise) when the run
 * asks for `privacy.mode: 'server'`. Client-side DP needs no wrapper: clients clip and noise their
 * own deltas. Robust strategies keep every update of a round in memory, so their `maxClients`
 * must cover `clientsPerRound` (checked when the run starts). The server state a run carries
 * between rounds — the streaming strategy's buffers and, with an adaptive DP clip norm, C — is
 * exported and imported as one {@link RunServerState}, so a coordinator taking the run over
 * continues with both.
 * @module
 */
import { createDpStrategy, createStrategy } from '@infermesh/federated';
import type { ClientResult, DpRoundReport, Layers, ServerState, Strategy } from '@infermesh/federated';
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

/** What a run carries from one round to the next besides the weights. */
export interface RunServerState extends ServerState {
  /** The adaptive DP clip norm C for the next round (server-side DP with `targetQuantile`). */
  readonly adaptiveClipNorm?: number | undefined;
}

/** A run's aggregation across rounds. */
export interface RunAggregation {
  readonly strategy: Strategy;
  begin(current: Layers): RoundAggregation;
  /** The state to store after a closed round; undefined when there is none (robust strategies). */
  exportState(): RunServerState | undefined;
  /** Restores {@link exportState}'s state. */
  importState(state: RunServerState): void;
  /** Server-side DP: what the last round did (clip norm, noise); undefined otherwise. */
  readonly lastDpRound: DpRoundReport | undefined;
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
  const strategyState = (): ServerState | undefined =>
    strategy.streaming ? strategy.exportState() : undefined;
  if (privacy?.mode !== 'server') {
    return {
      strategy,
      begin: (current) => strategy.begin(current),
      exportState: strategyState,
      importState: (state) => {
        if (strategy.streaming) strategy.importState(state);
      },
      lastDpRound: undefined,
    };
  }
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
  return {
    strategy,
    begin: (current) => dp.begin(current),
    exportState: () => ({ ...strategy.exportState(), adaptiveClipNorm: dp.exportState()?.clipNorm }),
    importState: (state) => {
      strategy.importState(state);
      if (state.adaptiveClipNorm !== undefined && privacy.targetQuantile !== undefined) {
        dp.importState({ clipNorm: state.adaptiveClipNorm });
      }
    },
    get lastDpRound() {
      return dp.lastRound;
    },
  };
}

/**
 * Drives one federated run while this coordinator holds its lease: loads the base model, the
 * held-out data and the global weights of the last closed round, evaluates the base once, then
 * runs the remaining rounds (retrying a round that gets too few clients, then failing the run),
 * evaluates and records each closed round, and at the end registers the trained version. The
 * lease is renewed in the background; losing it, or the operator's stop, ends the drive at once
 * (a stopped run keeps the weights of its last closed round and registers them only when asked).
 * A closed round is recorded only while the lease is still this driver's and the record does not
 * count the round yet; a driver whose round was not recorded (another closed it) goes on from the
 * weights and server state the record names, never from its own, so no round is applied twice.
 * NATS outages (a restarted server) do not fail a run: every read and write of the run's state,
 * weights and version is retried with back-off (`transient-retry.ts`); one that outlasts its budget
 * ends the drive with the run left as it is, and the coordinators' scan drives it again from its
 * record once NATS answers (resuming the round in progress from the durable updates stream).
 * @module
 */
import type { Logger } from 'pino';
import { ErrorCode, isInferMeshError } from '@infermesh/protocols';
import type { FlEvaluation, FlRoundRecord, FlRunRecord, LabelledExample } from '@infermesh/protocols';
import type { ArtifactStore, MeshConnection } from '@infermesh/mesh-client';
import type { ModelRegistry } from '../registry/model-registry.js';
import type { BaseModel } from './base-model.js';
import { loadBaseModel, modelWithWeights, resultVersionRequest } from './base-model.js';
import type { FleetView } from './client-selection.js';
import { loadEvaluationData } from './evaluation-data.js';
import type { GlobalWeights } from './global-weights.js';
import {
  changeNorm,
  loadServerState,
  loadWeights,
  storeServerState,
  storeWeights,
} from './global-weights.js';
import { evaluateOnHeldout } from './heldout-evaluation.js';
import { runRoundAttempt } from './round-runner.js';
import { runSecureRoundAttempt } from './secure-round.js';
import { DEFAULT_TRANSIENT_RETRY_BUDGET_MS, isTransientError, retryTransient } from './transient-retry.js';
import type { RunLease } from './run-lease.js';
import type { RunStore } from './run-store.js';
import type { RunAggregation } from './run-strategy.js';
import { createRunAggregation } from './run-strategy.js';

/** Attempts of one round before the run fails. */
export const DEFAULT_MAX_ROUND_ATTEMPTS = 3;
/** Pause between two attempts of a round. */
export const DEFAULT_ROUND_RETRY_DELAY_MS = 1_000;

/** What a driver uses. */
export interface RunDriverDeps {
  readonly connection: MeshConnection;
  readonly store: RunStore;
  readonly artifacts: ArtifactStore;
  readonly registry: ModelRegistry;
  readonly fleet: FleetView;
  readonly logger: Logger;
  readonly taskReplyTimeoutMs: number;
  readonly leaseRenewMs: number;
  readonly maxRoundAttempts: number;
  readonly roundRetryDelayMs: number;
  /** How long one step outside a round retries NATS failures before the drive lets the run go. */
  readonly transientRetryMs?: number;
}

interface Loaded {
  readonly base: BaseModel;
  readonly examples: LabelledExample[];
  aggregation: RunAggregation;
  global: GlobalWeights;
  /** The digest `global` was loaded from or stored under. */
  weightsSha: string;
  /** The server-state digest `aggregation` holds (undefined: as created). */
  stateSha: string | undefined;
}

/** The drive of one run; `done` settles when it ends for any reason. */
export class RunDriver {
  readonly done: Promise<void>;
  readonly #abort = new AbortController();
  readonly #log: Logger;

  constructor(
    private readonly deps: RunDriverDeps,
    private readonly runId: string,
    private readonly lease: RunLease,
  ) {
    this.#log = deps.logger.child({ component: 'coordinator.federated', runId });
    this.done = this.#drive();
  }

  /** Ends the drive without changing the run's state (coordinator shutdown); releases the lease. */
  async abort(): Promise<void> {
    this.#abort.abort();
    await this.done;
  }

  async #drive(): Promise<void> {
    const watch = setInterval(() => void this.#watch(), this.deps.leaseRenewMs);
    try {
      await this.#run();
    } catch (err) {
      if (this.#abort.signal.aborted) return;
      if (isTransientError(err)) {
        // NATS is unreachable: nothing about the run is known to be wrong, and its record cannot be
        // written anyway. The scan drives it again from its record once NATS answers.
        this.#log.warn({ err }, 'NATS unreachable for too long; leaving the run to be driven again');
        return;
      }
      this.#log.error({ err }, 'federated run failed');
      await this.#retry('record the failure', () =>
        this.deps.store.mutate(this.runId, (r) =>
          r.state === 'running' || r.state === 'stopping'
            ? { ...r, state: 'failed', error: (err as Error).message.slice(0, 4000), finishedAt: Date.now() }
            : undefined,
        ),
      ).catch((e: unknown) => this.#log.error({ err: e }, 'could not record the failure'));
    } finally {
      clearInterval(watch);
      await this.lease
        .release()
        .catch((err: unknown) => this.#log.warn({ err }, 'could not release the run lease'));
    }
  }

  /** Runs one step of the drive, retrying NATS failures within the transient budget. */
  #retry<T>(what: string, operation: () => Promise<T>): Promise<T> {
    return retryTransient(operation, {
      what,
      until: Date.now() + (this.deps.transientRetryMs ?? DEFAULT_TRANSIENT_RETRY_BUDGET_MS),
      logger: this.#log,
      signal: this.#abort.signal,
    });
  }

  /** Renews the lease and notices a stop; either ends the drive at once. */
  async #watch(): Promise<void> {
    if (this.#abort.signal.aborted) return;
    try {
      if (!(await this.lease.renew())) {
        this.#log.warn('lost the run lease; another coordinator drives the run now');
        this.#abort.abort();
        return;
      }
      const found = await this.deps.store.read(this.runId);
      if (found?.record.state !== 'running') this.#stopRequested.abort();
    } catch (err) {
      this.#log.warn({ err }, 'lease renewal failed');
    }
  }

  readonly #stopRequested = new AbortController();

  async #load(record: FlRunRecord): Promise<Loaded> {
    const { artifacts } = this.deps;
    const manifest = await this.#retry('read the base manifest', () =>
      this.deps.registry.getManifest(record.model, record.baseVersion),
    );
    const base = await this.#retry('load the base model', () => loadBaseModel(artifacts, manifest));
    const examples = await this.#retry('load the held-out data', () =>
      loadEvaluationData(artifacts, record.evaluationData.sha256),
    );
    return { base, examples, ...(await this.#loadRoundState(record)) };
  }

  /** The global weights and the server state the record names (what the last closed round left). */
  async #loadRoundState(
    record: FlRunRecord,
  ): Promise<Pick<Loaded, 'aggregation' | 'global' | 'weightsSha' | 'stateSha'>> {
    const { artifacts } = this.deps;
    const aggregation = createRunAggregation(record);
    const global = await this.#retry('load the global weights', () =>
      loadWeights(artifacts, record.globalWeightsSha256),
    );
    const stateSha = record.strategyStateSha256;
    if (stateSha !== undefined) {
      aggregation.importState(
        await this.#retry('load the server state', () => loadServerState(artifacts, stateSha)),
      );
    }
    return { aggregation, global, weightsSha: record.globalWeightsSha256, stateSha };
  }

  async #evaluate(loaded: Loaded, weights: GlobalWeights): Promise<FlEvaluation> {
    return evaluateOnHeldout(modelWithWeights(loaded.base, weights), loaded.examples);
  }

  async #run(): Promise<void> {
    const { store } = this.deps;
    let record = await this.#retry('read the run', () => store.get(this.runId));
    const loaded = await this.#load(record);
    if (record.baseline === undefined) {
      const baseline = await this.#evaluate(loaded, loaded.global);
      this.#log.info({ accuracy: baseline.accuracy, loss: baseline.loss }, 'base model evaluated');
      record = await this.#retry('record the baseline', () =>
        store.mutate(this.runId, (r) => ({ ...r, baseline, driver: this.lease.holder })),
      );
    }
    const signal = AbortSignal.any([this.#abort.signal, this.#stopRequested.signal]);
    for (;;) {
      if (this.#abort.signal.aborted) return;
      record = await this.#retry('read the run', () => store.get(this.runId));
      if (record.state === 'stopping') return this.#finish(record, loaded, 'stopped');
      if (record.state !== 'running') return;
      if (
        record.globalWeightsSha256 !== loaded.weightsSha ||
        record.strategyStateSha256 !== loaded.stateSha
      ) {
        // Another driver closed a round this one also computed (its write was refused): go on from
        // the record's weights and server state, never from this driver's own.
        this.#log.warn({ roundsDone: record.roundsDone }, 'the run moved on without this driver; reloading');
        Object.assign(loaded, await this.#loadRoundState(record));
      }
      if (record.roundsDone >= record.rounds) return this.#finish(record, loaded, 'succeeded');
      const round = record.roundsDone + 1;
      const outcome = await (record.secure ? runSecureRoundAttempt : runRoundAttempt)(
        {
          connection: this.deps.connection,
          store,
          fleet: this.deps.fleet,
          logger: this.#log,
          taskReplyTimeoutMs: this.deps.taskReplyTimeoutMs,
          signal,
        },
        record,
        round,
        loaded.global,
        loaded.aggregation,
      );
      if (this.#abort.signal.aborted) return;
      if ('failed' in outcome) {
        if (this.#stopRequested.signal.aborted) continue; // the loop's next read sees `stopping`
        const attempt =
          (await this.#retry('read the run', () => store.get(this.runId))).current?.attempt ?? 1;
        this.#log.warn({ round, attempt, reason: outcome.failed }, 'round attempt failed');
        if (attempt >= this.deps.maxRoundAttempts) {
          throw new Error(`round ${round} failed ${attempt} times; last: ${outcome.failed}`);
        }
        await this.#retry('record the failed attempt', () =>
          store.mutate(this.runId, (r) =>
            r.current
              ? { ...r, current: { ...r.current, phase: 'failed', failure: outcome.failed } }
              : undefined,
          ),
        );
        await new Promise((resolve) => setTimeout(resolve, this.deps.roundRetryDelayMs));
        continue;
      }
      const evaluateStart = Date.now();
      const next: GlobalWeights = { shapes: loaded.global.shapes, layers: outcome.next };
      const evaluation = await this.#evaluate(loaded, next);
      const evaluateMs = Date.now() - evaluateStart;
      const weightsSha = await this.#retry('store the global weights', () =>
        storeWeights(this.deps.artifacts, next),
      );
      const serverState = loaded.aggregation.exportState();
      const stateSha =
        serverState === undefined
          ? undefined
          : await this.#retry('store the server state', () =>
              storeServerState(this.deps.artifacts, serverState),
            );
      const updateNorm = changeNorm(loaded.global.layers, next.layers);
      const dp = loaded.aggregation.lastDpRound;
      const privacy = dp && {
        clipNorm: dp.clipNorm,
        nextClipNorm: dp.nextClipNorm,
        belowClipCount: dp.belowClipCount,
        noiseStddev: dp.noiseStddev,
      };
      const closed: FlRoundRecord = {
        ...outcome.record,
        updateNorm,
        ...(privacy ? { privacy } : {}),
        evaluation,
        closedAt: Date.now(),
        durationsMs: { ...outcome.record.durationsMs, evaluate: evaluateMs },
      };
      const recorded = await this.#recordClosedRound(closed, weightsSha, stateSha);
      if (this.#abort.signal.aborted) return;
      if (!recorded) {
        this.#log.warn({ round }, 'round closed by another driver; this one is not recorded');
        continue; // the loop's next read reloads the record's weights
      }
      loaded.global = next;
      loaded.weightsSha = weightsSha;
      loaded.stateSha = stateSha;
      this.#log.info(
        { round, received: outcome.record.received.length, accuracy: evaluation.accuracy, updateNorm },
        'round closed',
      );
    }
  }

  /**
   * Records a closed round: its full record under its own key first, then the run record's count,
   * weights and state in one compare-and-set. False when the round is not this driver's to record
   * (the lease is lost, or the record counts the round already: another driver closed it).
   */
  async #recordClosedRound(
    closed: FlRoundRecord,
    weightsSha: string,
    stateSha: string | undefined,
  ): Promise<boolean> {
    const { store } = this.deps;
    if (!(await this.#retry('renew the run lease', () => this.lease.renew()))) {
      this.#log.warn('lost the run lease before recording the round; another coordinator drives the run now');
      this.#abort.abort();
      return false;
    }
    return this.#retry('record the closed round', () =>
      store.recordClosedRound(this.runId, closed, (r) => {
        const { current: _current, strategyStateSha256: _state, ...rest } = r;
        return {
          ...rest,
          globalWeightsSha256: weightsSha,
          ...(stateSha === undefined ? {} : { strategyStateSha256: stateSha }),
          driver: this.lease.holder,
        };
      }),
    );
  }

  /** Ends the run: registers the trained version (always on success, on a stop when asked). */
  async #finish(record: FlRunRecord, loaded: Loaded, state: 'succeeded' | 'stopped'): Promise<void> {
    const register = state === 'succeeded' || (record.registerOnStop && record.roundsDone > 0);
    let registeredVersion: string | undefined;
    if (register)
      registeredVersion = await this.#retry('register the trained version', () =>
        this.#register(record, loaded),
      );
    await this.#retry('record the end of the run', () =>
      this.deps.store.mutate(this.runId, (r) => {
        if (r.state !== 'running' && r.state !== 'stopping') return undefined;
        const { current: _current, ...rest } = r;
        return {
          ...rest,
          state,
          finishedAt: Date.now(),
          ...(registeredVersion === undefined ? {} : { registeredVersion }),
        };
      }),
    );
    this.#log.info({ state, registeredVersion }, 'federated run finished');
  }

  async #register(record: FlRunRecord, loaded: Loaded): Promise<string> {
    const request = await resultVersionRequest(
      this.deps.artifacts,
      loaded.base,
      loaded.global,
      record.resultVersion,
    );
    const createdBy = `fl:${record.id}`;
    try {
      await this.deps.registry.createVersion(record.model, request, createdBy);
    } catch (err) {
      // Registered before a restart interrupted the write of the run's state: keep that version.
      if (!isInferMeshError(err) || err.code !== ErrorCode.CONFLICT) throw err;
      const existing = await this.deps.registry.getManifest(record.model, record.resultVersion);
      if (existing.createdBy !== createdBy) throw err;
    }
    return record.resultVersion;
  }
}

/**
 * The coordinator's federated-learning service: starts runs (validating the request, the base
 * version and the strategy up front, storing the held-out data and the initial weights), answers
 * for them, stops them, and drives them: every coordinator scans `roundsBucket()` for active runs
 * and takes the lease of any run nobody drives, so a run survives the death of its coordinator.
 * @module
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { ErrorCode, InferMeshError, flRunStartRequestSchema, parseOrThrow } from '@infermesh/protocols';
import type {
  FlRoundRecord,
  FlRunDetail,
  FlRunRecord,
  FlRunStartRequest,
  FlRunSummary,
} from '@infermesh/protocols';
import { ArtifactStore } from '@infermesh/mesh-client';
import type { MeshConnection } from '@infermesh/mesh-client';
import type { ModelRegistry } from '../registry/model-registry.js';
import { loadBaseModel } from './base-model.js';
import type { FleetView } from './client-selection.js';
import { DEFAULT_TASK_REPLY_TIMEOUT_MS } from './client-selection.js';
import { storeEvaluationData } from './evaluation-data.js';
import { storeWeights } from './global-weights.js';
import { DEFAULT_MAX_ROUND_ATTEMPTS, DEFAULT_ROUND_RETRY_DELAY_MS, RunDriver } from './run-driver.js';
import { DEFAULT_FL_LEASE_TTL_MS, RunLease } from './run-lease.js';
import { RunStore } from './run-store.js';
import { createRunAggregation } from './run-strategy.js';
import { checkPrivacyRun } from './privacy-settings.js';
import { checkSecureRun } from './secure-settings.js';
import { ensureUpdatesStream } from './updates-stream.js';

/** How often a coordinator looks for runs nobody drives. */
export const DEFAULT_FL_SCAN_INTERVAL_MS = 2_000;

/** Options of {@link FederatedService}. */
export interface FederatedServiceOptions {
  readonly connection: MeshConnection;
  readonly registry: ModelRegistry;
  readonly fleet: FleetView;
  readonly logger: Logger;
  /** This coordinator's id: its lease holder id is `<coordinatorId>/<random>` (one per instance). */
  readonly coordinatorId: string;
  readonly replicas?: number;
  readonly leaseTtlMs?: number;
  readonly scanIntervalMs?: number;
  readonly taskReplyTimeoutMs?: number;
  readonly maxRoundAttempts?: number;
  readonly roundRetryDelayMs?: number;
  /** How long a driver retries a step across a NATS outage before it lets the run go (ms). */
  readonly transientRetryMs?: number;
}

/** A run summary with its progress, as `GET /api/v1/fl/runs` lists it. */
export type FlRunRow = FlRunSummary & { roundsDone: number };

interface Stores {
  readonly runs: RunStore;
  readonly artifacts: ArtifactStore;
}

/** Starts, lists, stops and drives federated runs. */
export class FederatedService {
  readonly #options: FederatedServiceOptions;
  readonly #log: Logger;
  readonly #drivers = new Map<string, RunDriver>();
  #stores: Promise<Stores> | undefined;
  #timer: NodeJS.Timeout | undefined;
  /** The scan in progress: `stop()` waits for it, so no driver starts after shutdown. */
  #scanning: Promise<void> | undefined;
  #stopped = false;
  /**
   * This instance's lease holder id. Coordinator ids can repeat (the default is per host, and a
   * restarted coordinator keeps its id): with the bare id two instances would both "hold" a run,
   * so a restarted coordinator instead waits for its previous life's lease to expire.
   */
  readonly holder: string;

  constructor(options: FederatedServiceOptions) {
    this.#options = options;
    this.holder = `${options.coordinatorId}/${randomBytes(6).toString('hex')}`;
    this.#log = options.logger.child({ component: 'coordinator.federated', holder: this.holder });
  }

  /** Opens the bucket and the updates stream, then takes over runs nobody drives. */
  async start(): Promise<void> {
    try {
      await this.#open();
    } catch (err) {
      this.#log.warn({ err }, 'federated stores are not reachable yet; will retry');
    }
    this.#timer = setInterval(
      () => void this.#scan(),
      this.#options.scanIntervalMs ?? DEFAULT_FL_SCAN_INTERVAL_MS,
    );
    void this.#scan();
  }

  /** Stops driving (runs stay as they are; another coordinator takes them over). */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#timer);
    await this.#scanning;
    await Promise.all([...this.#drivers.values()].map((d) => d.abort()));
  }

  /** Starts a run; resolves with its record. INVALID_INPUT / MODEL_NOT_FOUND / CONFLICT up front. */
  async startRun(input: FlRunStartRequest, createdBy: string): Promise<FlRunDetail> {
    const request = parseOrThrow(flRunStartRequestSchema, input, 'federated run');
    checkPrivacyRun(request);
    const { runs, artifacts } = await this.#open();
    const registry = this.#options.registry;
    const manifest = await registry.getManifest(request.model, request.baseVersion);
    createRunAggregation({ ...request, privacy: request.privacy });
    checkSecureRun(request);
    const base = await loadBaseModel(artifacts, manifest);
    for (const example of request.evaluationExamples.slice(0, 1)) {
      for (const input of manifest.signature.inputs) {
        if (example.inputs[input.name] === undefined) {
          throw new InferMeshError(ErrorCode.INVALID_INPUT, `held-out examples need input '${input.name}'`);
        }
      }
    }
    const existing = new Set((await registry.getModel(request.model)).versions.map((v) => v.version));
    let resultVersion = request.resultVersion;
    if (resultVersion !== undefined && existing.has(resultVersion)) {
      throw new InferMeshError(
        ErrorCode.CONFLICT,
        `${request.model}@${resultVersion} exists; choose another resultVersion`,
      );
    }
    for (let n = 1; resultVersion === undefined; n += 1) {
      const candidate = `${manifest.version}-fl-${n}`;
      if (!existing.has(candidate)) resultVersion = candidate;
    }
    const now = Date.now();
    const record: FlRunRecord = {
      id: `fl-${now.toString(36)}-${randomBytes(3).toString('hex')}`,
      model: request.model,
      baseVersion: manifest.version,
      rounds: request.rounds,
      clientsPerRound: request.clientsPerRound,
      minClients: request.minClients,
      roundTimeoutMs: request.roundTimeoutMs,
      strategy: request.strategy,
      strategyOptions: request.strategyOptions,
      hyperparameters: request.hyperparameters,
      ...(request.privacy ? { privacy: request.privacy } : {}),
      secure: request.secure,
      seed: request.seed ?? randomBytes(4).readUInt32LE() >>> 1,
      evaluationData: {
        sha256: await storeEvaluationData(artifacts, request.evaluationExamples),
        examples: request.evaluationExamples.length,
      },
      resultVersion,
      trainable: base.weights.shapes.map((s) => s.name),
      state: 'running',
      registerOnStop: false,
      createdBy,
      createdAt: now,
      updatedAt: now,
      globalWeightsSha256: await storeWeights(artifacts, base.weights),
      roundsDone: 0,
      recentRounds: [],
    };
    await runs.create(record);
    this.#log.info(
      { runId: record.id, model: record.model, baseVersion: record.baseVersion },
      'federated run started',
    );
    void this.#scan();
    return { ...record, history: [] };
  }

  /** A run's record with its last closed rounds in full; NOT_FOUND when absent. */
  async getRun(id: string): Promise<FlRunDetail> {
    return (await this.#open()).runs.detail(id);
  }

  /** One closed round's full record; NOT_FOUND when the run or the round is unknown. */
  async getRound(id: string, round: number): Promise<FlRoundRecord> {
    return (await this.#open()).runs.getRound(id, round);
  }

  /** Every run, oldest first. */
  async listRuns(): Promise<FlRunRow[]> {
    const records = await (await this.#open()).runs.list();
    return records.map((r) => ({
      id: r.id,
      model: r.model,
      baseVersion: r.baseVersion,
      rounds: r.rounds,
      strategy: r.strategy,
      state: r.state,
      createdAt: r.createdAt,
      resultVersion: r.resultVersion,
      ...(r.registeredVersion === undefined ? {} : { registeredVersion: r.registeredVersion }),
      roundsDone: r.roundsDone,
    }));
  }

  /**
   * Asks a run to stop: its driver ends the round in progress at once (its updates are discarded)
   * and registers the last closed round's weights only with `register`. CONFLICT once it ended.
   */
  async stopRun(id: string, register: boolean): Promise<FlRunDetail> {
    const { runs } = await this.#open();
    await runs.mutate(id, (r) => {
      if (r.state !== 'running' && r.state !== 'stopping') {
        throw new InferMeshError(ErrorCode.CONFLICT, `federated run ${id} has ended (${r.state})`);
      }
      return { ...r, state: 'stopping', registerOnStop: register };
    });
    void this.#scan();
    return runs.detail(id);
  }

  /** Takes the lease of every active run that no live coordinator drives (one scan at a time). */
  #scan(): Promise<void> {
    if (this.#scanning || this.#stopped) return this.#scanning ?? Promise.resolve();
    this.#scanning = this.#scanRuns().finally(() => {
      this.#scanning = undefined;
    });
    return this.#scanning;
  }

  async #scanRuns(): Promise<void> {
    try {
      const { runs, artifacts } = await this.#open();
      for (const record of await runs.list()) {
        if (record.state !== 'running' && record.state !== 'stopping') continue;
        if (this.#stopped) return;
        if (this.#drivers.has(record.id)) continue;
        const ttl = this.#options.leaseTtlMs ?? DEFAULT_FL_LEASE_TTL_MS;
        const lease = new RunLease(runs.kv, record.id, this.holder, ttl);
        if (!(await lease.acquire())) continue;
        if (this.#stopped) {
          // Stopped while taking the lease: give it back rather than drive after shutdown.
          await lease.release();
          return;
        }
        this.#log.info({ runId: record.id, round: record.roundsDone + 1 }, 'driving federated run');
        const driver = new RunDriver(
          {
            connection: this.#options.connection,
            store: runs,
            artifacts,
            registry: this.#options.registry,
            fleet: this.#options.fleet,
            logger: this.#options.logger,
            taskReplyTimeoutMs: this.#options.taskReplyTimeoutMs ?? DEFAULT_TASK_REPLY_TIMEOUT_MS,
            leaseRenewMs: Math.max(100, Math.floor(ttl / 3)),
            maxRoundAttempts: this.#options.maxRoundAttempts ?? DEFAULT_MAX_ROUND_ATTEMPTS,
            roundRetryDelayMs: this.#options.roundRetryDelayMs ?? DEFAULT_ROUND_RETRY_DELAY_MS,
            ...(this.#options.transientRetryMs === undefined
              ? {}
              : { transientRetryMs: this.#options.transientRetryMs }),
          },
          record.id,
          lease,
        );
        this.#drivers.set(record.id, driver);
        void driver.done.finally(() => this.#drivers.delete(record.id));
      }
    } catch (err) {
      this.#log.warn({ err }, 'federated run scan failed');
    }
  }

  #open(): Promise<Stores> {
    this.#stores ??= (async () => {
      const replicas = this.#options.replicas ?? 1;
      const [runs, artifacts] = await Promise.all([
        RunStore.open(this.#options.connection, replicas),
        ArtifactStore.open(this.#options.connection, { create: true, replicas }),
        ensureUpdatesStream(this.#options.connection, replicas),
      ]);
      return { runs, artifacts };
    })().catch((err: unknown) => {
      this.#stores = undefined;
      throw err;
    });
    return this.#stores;
  }
}

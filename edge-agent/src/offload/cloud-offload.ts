/**
 * The agent's path to the cloud: a NATS connection made in the background (the agent serves
 * locally while it has none, and catches up when the server appears), the offload client, a
 * circuit breaker in front of it, and a short cache of cloud model metadata for models that are
 * not on the device.
 * @module
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { ErrorCode, InferMeshError } from '@infermesh/protocols';
import type { InferenceParameters, ModelManifest, WireTensor } from '@infermesh/protocols';
import { MeshClient, connectMesh, withoutCredentials } from '@infermesh/mesh-client';
import type { MeshConnection } from '@infermesh/mesh-client';
import { CircuitBreaker } from './circuit-breaker.js';
import type { BreakerState } from './circuit-breaker.js';
import type { OffloadPolicy } from './route-decision.js';

const RECONNECT_DELAY_MS = 1_000;
const CONNECT_ATTEMPT_TIMEOUT_MS = 2_000;
const METADATA_CACHE_MS = 5_000;

/** Cloud answers that say the cloud side is unwell (count against the breaker). */
const CLOUD_FAILURE_CODES: ReadonlySet<string> = new Set([
  ErrorCode.UNAVAILABLE,
  ErrorCode.DEADLINE_EXCEEDED,
  ErrorCode.OVERLOADED,
  ErrorCode.INTERNAL,
]);

/**
 * A request given less time than this that misses its deadline says nothing about the cloud (the
 * client asked for the impossible): it does not count against the breaker.
 */
export const MIN_JUDGED_BUDGET_MS = 250;

const notConnected = (): InferMeshError =>
  new InferMeshError(ErrorCode.UNAVAILABLE, 'the cloud is not connected', { retryAfterSeconds: 1 });

export interface CloudOffloadOptions {
  natsUrl: string;
  agentId: string;
  logger: Logger;
  onBreakerChange?: (state: BreakerState) => void;
}

export interface CloudCall {
  model: string;
  version?: string | undefined;
  inputs: Record<string, WireTensor>;
  outputs?: readonly string[] | undefined;
  parameters?: InferenceParameters | undefined;
  policy: OffloadPolicy;
  /** Absolute deadline, epoch ms. */
  deadline: number;
}

export interface CloudResult {
  outputs: Record<string, WireTensor>;
  version: string;
  workerId: string;
}

export class CloudOffload {
  readonly #options: CloudOffloadOptions;
  readonly #log: Logger;
  readonly breaker: CircuitBreaker;
  #client: MeshClient | undefined;
  #connection: MeshConnection | undefined;
  #stopped = false;
  #connecting: Promise<void> | undefined;
  #retryTimer: NodeJS.Timeout | undefined;
  /** Ends the wait before the next connection attempt early (on stop). */
  #wakeRetry: (() => void) | undefined;
  readonly #metadata = new Map<string, { at: number; manifest: Promise<ModelManifest> }>();
  /** Components sharing the connection (model sync, heartbeat), told once it is made. */
  readonly #connectedListeners = new Set<(connection: MeshConnection) => void>();

  constructor(options: CloudOffloadOptions) {
    this.#options = options;
    this.#log = options.logger.child({ component: 'agent.offload' });
    this.breaker = new CircuitBreaker(
      options.onBreakerChange ? { onStateChange: options.onBreakerChange } : {},
    );
  }

  /** Starts connecting in the background; never throws. */
  start(): void {
    this.#connecting = this.#connect();
  }

  /** True while connected to NATS. */
  get connected(): boolean {
    return this.#connection?.state === 'connected';
  }

  /** Connected and the breaker not open: the cloud is worth considering (consumes nothing). */
  get available(): boolean {
    return this.connected && this.breaker.state !== 'open';
  }

  /** Whether a request may go to the cloud now; in half-open state this takes the one probe. */
  tryAcquire(): boolean {
    return this.connected && this.breaker.allowRequest();
  }

  /** Runs a call in the cloud. Caller must have had {@link tryAcquire} say yes. */
  async infer(call: CloudCall): Promise<CloudResult> {
    const client = this.#client;
    if (!client) {
      this.breaker.release();
      throw notConnected();
    }
    const budgetMs = call.deadline - Date.now();
    try {
      const response = await client.infer({
        id: randomUUID(),
        model: call.model,
        ...(call.version !== undefined ? { version: call.version } : {}),
        inputs: call.inputs,
        ...(call.outputs !== undefined ? { outputs: [...call.outputs] } : {}),
        ...(call.parameters !== undefined ? { parameters: call.parameters } : {}),
        deadlineMs: call.deadline,
        origin: { agentId: this.#options.agentId, policy: call.policy },
      });
      this.breaker.recordSuccess();
      return { outputs: response.outputs, version: response.version, workerId: response.servedBy };
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === ErrorCode.DEADLINE_EXCEEDED && budgetMs < MIN_JUDGED_BUDGET_MS) this.breaker.release();
      else if (code === undefined || CLOUD_FAILURE_CODES.has(code)) this.breaker.recordFailure();
      else this.breaker.recordSuccess(); // the cloud answered; the request was at fault
      throw err;
    }
  }

  /** The cloud's manifest of a model that is not on the device (cached briefly). */
  metadata(name: string, version: string | undefined, deadline: number): Promise<ModelManifest> {
    const client = this.#client;
    if (!client || !this.connected) {
      return Promise.reject(notConnected());
    }
    const key = `${name}@${version ?? ''}`;
    const cached = this.#metadata.get(key);
    if (cached && Date.now() - cached.at < METADATA_CACHE_MS) return cached.manifest;
    const manifest = client.requestModelMetadata(name, version, { deadline });
    this.#metadata.set(key, { at: Date.now(), manifest });
    manifest.catch(() => this.#metadata.delete(key));
    return manifest;
  }

  // ---- connection sharing: model sync and the heartbeat use this one connection ----------------

  /** The NATS connection once made (it reconnects on its own afterwards); undefined before. */
  get connection(): MeshConnection | undefined {
    return this.#connection;
  }

  /**
   * Calls `listener` with the connection once it is made (at once when it already is); returns a
   * function that removes the listener.
   */
  onConnected(listener: (connection: MeshConnection) => void): () => void {
    if (this.#connection) {
      listener(this.#connection);
      return () => undefined;
    }
    this.#connectedListeners.add(listener);
    return () => this.#connectedListeners.delete(listener);
  }

  // ----------------------------------------------------------------------------------------------

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#retryTimer);
    this.#wakeRetry?.(); // a cleared timer never resolves its wait: end it, or stop() would hang
    await this.#connecting;
    await this.#connection?.drain().catch(() => undefined);
  }

  async #connect(): Promise<void> {
    while (!this.#stopped) {
      try {
        const connection = await connectMesh(this.#options.natsUrl, {
          name: `agent-${this.#options.agentId}`,
          logger: this.#options.logger,
          waitOnFirstConnect: false,
          connectTimeoutMs: CONNECT_ATTEMPT_TIMEOUT_MS,
        });
        if (this.#stopped) {
          await connection.close();
          return;
        }
        this.#connection = connection;
        this.#client = new MeshClient(connection, { logger: this.#options.logger });
        this.#log.info({ nats: withoutCredentials(this.#options.natsUrl) }, 'connected to the cloud');
        for (const listener of this.#connectedListeners) listener(connection);
        this.#connectedListeners.clear();
        return;
      } catch (err) {
        this.#log.warn({ err: (err as Error).message }, 'cloud not reachable; serving locally and retrying');
        if (this.#stopped) return;
        await new Promise<void>((resolve) => {
          this.#wakeRetry = resolve;
          this.#retryTimer = setTimeout(resolve, RECONNECT_DELAY_MS);
        });
        this.#wakeRetry = undefined;
      }
    }
  }
}

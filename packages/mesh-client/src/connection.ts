/**
 * Mesh connections: one NATS connection per process, configured the same way everywhere (reconnect
 * forever, short reconnect waits, pings that notice a dead server within seconds), with the
 * connection state tracked so callers can fail fast while disconnected instead of letting requests
 * sit in the client's outbound buffer until they time out.
 * @module
 */
import { connect } from '@nats-io/transport-node';
import type { NatsConnection, Status } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import pino from 'pino';
import { ErrorCode, InferMeshError } from '@infermesh/protocols';

/** nats-server's default `max_payload` (1 MB), assumed until the server says otherwise. */
export const DEFAULT_MAX_PAYLOAD_BYTES = 1024 * 1024;
/** Time for one connection attempt (TCP connect + handshake), in ms. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;
/** Wait between reconnect attempts to the same server, in ms (plus up to 100 ms of jitter). */
export const DEFAULT_RECONNECT_TIME_WAIT_MS = 500;
/** Interval of client pings, in ms; two unanswered pings mark the connection stale. */
export const DEFAULT_PING_INTERVAL_MS = 5_000;
const MAX_PINGS_OUT = 2;
const RECONNECT_JITTER_MS = 100;

/** Options of {@link connectMesh}. */
export interface ConnectMeshOptions {
  /** Connection name shown by the server (`worker-gpu-0`, `coordinator`, `agent-edge-7`). */
  name: string;
  logger?: Logger;
  /** Time for one connection attempt, in ms. */
  connectTimeoutMs?: number;
  /** Wait between reconnect attempts, in ms. */
  reconnectTimeWaitMs?: number;
  /** Interval of client pings, in ms. */
  pingIntervalMs?: number;
  /**
   * true (default): keep trying until a server answers, however long that takes; false: reject with
   * UNAVAILABLE when the first attempt fails (after it, the connection reconnects forever either way).
   */
  waitOnFirstConnect?: boolean;
}

/** What a connection is doing, as seen through its status events. */
export type MeshConnectionState = 'connected' | 'disconnected' | 'closed';

/** A connection to the mesh's NATS servers. */
export interface MeshConnection {
  /** The underlying nats.js connection. */
  readonly nc: NatsConnection;
  readonly name: string;
  readonly logger: Logger;
  /** Current state: requests made while not `connected` fail fast with UNAVAILABLE. */
  readonly state: MeshConnectionState;
  /** The connected server's `max_payload` in bytes (the default 1 MB before the first INFO). */
  readonly maxPayload: number;
  /** Calls `listener` whenever the state changes; returns a function that removes it. */
  onStateChange(listener: (state: MeshConnectionState) => void): () => void;
  /** Throws UNAVAILABLE unless connected. */
  assertConnected(what?: string): void;
  /** Drains subscriptions and pending publishes, then closes. Idempotent. */
  drain(): Promise<void>;
  /** Closes at once (requests in flight fail). Idempotent. */
  close(): Promise<void>;
}

class NatsMeshConnection implements MeshConnection {
  readonly logger: Logger;
  readonly #listeners = new Set<(state: MeshConnectionState) => void>();
  #state: MeshConnectionState = 'connected';
  #closing: Promise<void> | undefined;

  constructor(
    readonly nc: NatsConnection,
    readonly name: string,
    logger: Logger,
  ) {
    this.logger = logger;
    void this.#watch();
    void nc.closed().then(() => this.#setState('closed'));
  }

  get state(): MeshConnectionState {
    return this.#state;
  }

  get maxPayload(): number {
    return this.nc.info?.max_payload ?? DEFAULT_MAX_PAYLOAD_BYTES;
  }

  onStateChange(listener: (state: MeshConnectionState) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  assertConnected(what = 'the mesh'): void {
    if (this.#state === 'connected') return;
    throw new InferMeshError(
      ErrorCode.UNAVAILABLE,
      `${what} is unreachable: the NATS connection is ${this.#state}`,
      { retryAfterSeconds: 1 },
    );
  }

  drain(): Promise<void> {
    this.#closing ??= this.nc.isClosed()
      ? Promise.resolve()
      : this.nc.drain().catch((err: unknown) => {
          this.logger.debug({ err }, 'drain failed; closing');
          return this.nc.close();
        });
    return this.#closing;
  }

  close(): Promise<void> {
    this.#closing ??= this.nc.isClosed() ? Promise.resolve() : this.nc.close();
    return this.#closing;
  }

  async #watch(): Promise<void> {
    for await (const status of this.nc.status()) this.#onStatus(status);
  }

  #onStatus(status: Status): void {
    switch (status.type) {
      case 'disconnect':
        this.logger.warn({ server: status.server }, 'disconnected from NATS');
        this.#setState('disconnected');
        return;
      case 'reconnect':
        this.logger.info({ server: status.server }, 'reconnected to NATS');
        this.#setState('connected');
        return;
      case 'close':
        this.#setState('closed');
        return;
      case 'staleConnection':
        this.logger.warn('NATS connection is stale (pings unanswered)');
        return;
      case 'error':
        this.logger.warn({ err: status.error }, 'NATS server error');
        return;
      case 'slowConsumer':
        this.logger.warn({ subject: status.sub.getSubject(), pending: status.pending }, 'slow consumer');
        return;
      case 'reconnecting':
      case 'update':
      case 'ldm':
      case 'ping':
      case 'forceReconnect':
        return;
    }
  }

  #setState(state: MeshConnectionState): void {
    if (this.#state === state || this.#state === 'closed') return;
    this.#state = state;
    for (const listener of this.#listeners) listener(state);
  }
}

/** A NATS URL (or comma-separated list) fit for a log line: any `user:password@` part replaced. */
export function withoutCredentials(url: string): string {
  return url.replace(/\/\/[^/@]*@/g, '//***@');
}

/**
 * Connects to the mesh's NATS server(s) and resolves once connected. Afterwards the connection
 * reconnects forever; {@link MeshConnection.state} says whether it is up.
 * @example
 * const mesh = await connectMesh('nats://127.0.0.1:4222', { name: 'worker-gpu-0', logger });
 * mesh.nc.subscribe(workerInferSubject('gpu-0'), { callback });
 */
export async function connectMesh(
  servers: string | readonly string[],
  options: ConnectMeshOptions,
): Promise<MeshConnection> {
  const logger = (options.logger ?? pino({ enabled: false })).child({ component: 'mesh.connection' });
  const serverList = typeof servers === 'string' ? servers.split(',').map((s) => s.trim()) : [...servers];
  logger.debug({ servers: serverList.map(withoutCredentials) }, 'connecting to NATS');
  let nc: NatsConnection;
  try {
    nc = await connect({
      servers: serverList,
      name: options.name,
      maxReconnectAttempts: -1,
      reconnectTimeWait: options.reconnectTimeWaitMs ?? DEFAULT_RECONNECT_TIME_WAIT_MS,
      reconnectJitter: RECONNECT_JITTER_MS,
      timeout: options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
      pingInterval: options.pingIntervalMs ?? DEFAULT_PING_INTERVAL_MS,
      maxPingOut: MAX_PINGS_OUT,
      waitOnFirstConnect: options.waitOnFirstConnect ?? true,
      // Request stacks cost an Error per request; our errors carry their own context.
      noAsyncTraces: true,
    });
  } catch (cause) {
    throw new InferMeshError(
      ErrorCode.UNAVAILABLE,
      `cannot connect to NATS at ${serverList.join(', ')}: ${(cause as Error).message}`,
      { cause, retryAfterSeconds: 1 },
    );
  }
  logger.info({ server: nc.getServer(), maxPayload: nc.info?.max_payload }, 'connected to NATS');
  return new NatsMeshConnection(nc, options.name, logger);
}

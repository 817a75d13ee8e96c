/**
 * Publishes the agent's heartbeat on `agentHeartbeatSubject(agentId)` every `intervalMs`, msgpack
 * encoded and validated by protocols' codec, over the agent's one NATS connection: the first at
 * once when the connection is made, then on the interval. While disconnected nothing is queued (a
 * stale heartbeat says nothing); the next one goes out when the connection is back.
 * @module
 */
import type { Logger } from 'pino';
import { agentHeartbeatSchema, agentHeartbeatSubject, encode } from '@infermesh/protocols';
import type { AgentHeartbeat } from '@infermesh/protocols';
import type { MeshConnection } from '@infermesh/mesh-client';
import { signatureHeaders } from '../fleet/message-signer.js';
import type { MessageSigner } from '../fleet/message-signer.js';

/** Options of {@link HeartbeatPublisher}. */
export interface HeartbeatPublisherOptions {
  readonly agentId: string;
  readonly intervalMs: number;
  readonly build: () => Promise<AgentHeartbeat>;
  readonly logger: Logger;
  /** Signs each heartbeat (enrolled agents): the coordinator drops unsigned ones claiming them. */
  readonly signer?: MessageSigner | undefined;
}

/** What the publisher has done, for `/v1/status`. */
export interface HeartbeatStats {
  readonly intervalMs: number;
  readonly sent: number;
  readonly lastSentAt?: string;
  readonly lastError?: string;
}

/** The heartbeat loop. */
export class HeartbeatPublisher {
  readonly #o: HeartbeatPublisherOptions;
  readonly #log: Logger;
  #connection: MeshConnection | undefined;
  #timer: NodeJS.Timeout | undefined;
  #sending: Promise<void> | undefined;
  #sent = 0;
  #lastSentAt: Date | undefined;
  #lastError: string | undefined;
  #stopped = false;

  constructor(options: HeartbeatPublisherOptions) {
    this.#o = options;
    this.#log = options.logger.child({ component: 'agent.heartbeat' });
  }

  /** Starts publishing over `connection` (once; later calls do nothing). */
  attach(connection: MeshConnection): void {
    if (this.#connection || this.#stopped) return;
    this.#connection = connection;
    void this.publishNow();
    this.#timer = setInterval(() => void this.publishNow(), this.#o.intervalMs);
    this.#timer.unref();
  }

  /** Publishes one heartbeat now (skipped while disconnected or while one is being built). */
  publishNow(): Promise<void> {
    this.#sending ??= this.#publish().finally(() => {
      this.#sending = undefined;
    });
    return this.#sending;
  }

  stats(): HeartbeatStats {
    return {
      intervalMs: this.#o.intervalMs,
      sent: this.#sent,
      ...(this.#lastSentAt ? { lastSentAt: this.#lastSentAt.toISOString() } : {}),
      ...(this.#lastError !== undefined ? { lastError: this.#lastError } : {}),
    };
  }

  /** Stops the loop (a heartbeat being sent finishes). */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#timer);
    await this.#sending;
  }

  async #publish(): Promise<void> {
    const connection = this.#connection;
    if (!connection || this.#stopped || connection.state !== 'connected') return;
    try {
      const heartbeat = await this.#o.build();
      const body = encode(agentHeartbeatSchema, heartbeat, 'heartbeat');
      const headers = signatureHeaders(this.#o.signer, body);
      connection.nc.publish(agentHeartbeatSubject(this.#o.agentId), body, headers ? { headers } : undefined);
      this.#sent += 1;
      this.#lastSentAt = new Date();
      this.#lastError = undefined;
    } catch (err) {
      this.#lastError = err instanceof Error ? err.message : String(err);
      this.#log.warn({ err: this.#lastError }, 'heartbeat not sent');
    }
  }
}

/**
 * The coordinator's side of one secure-aggregation round over NATS (the phase order of
 * protocols' `federated.ts`): listens on `flSecureToAggregatorSubject(roundId)` from before the
 * tasks go out, collects the accepted clients' `keys` until all are in or the phase times out,
 * publishes the `roster`, relays `shares` into one `inbox` per client that shared, folds each
 * masked update into the running masked sum, and after masking asks the survivors to `unmask`.
 * Everything update-related it holds is a {@link SecureAggregator}'s: public keys, ciphertexts it
 * cannot read, and the masked sum — never one client's update in the clear.
 * @module
 */
import type { Logger } from 'pino';
import {
  decode,
  encode,
  flSecureDownMessageSchema,
  flSecureToAggregatorSubject,
  flSecureToClientsSubject,
  flSecureUpMessageSchema,
} from '@infermesh/protocols';
import type { FlSecureDownMessage, FlSecureTask, FlSecureUpMessage } from '@infermesh/protocols';
import type { MeshConnection } from '@infermesh/mesh-client';
import { SecureAggregator } from '@infermesh/federated';
import type { AdvertisedKeys, SecureAggregationResult } from '@infermesh/federated';

/** Options of {@link SecureRoundSession}. */
export interface SecureRoundSessionOptions {
  readonly roundId: string;
  /** The selected agents in order: agent `i` is client `i + 1`. */
  readonly selected: readonly string[];
  readonly threshold: number;
  readonly fractionalBits: number;
  readonly vectorLength: number;
  readonly phaseTimeoutMs: number;
  readonly logger: Logger;
  readonly signal?: AbortSignal;
}

/** A secure round that cannot go on (too few clients in a phase, or an unmasking that failed). */
export class SecureRoundFailure extends Error {
  override readonly name = 'SecureRoundFailure';
}

/**
 * One secure round's key exchange, masked sum and unmasking, on the coordinator. What it holds of
 * the round is in TypeScript-private (not `#private`) fields on purpose: tests walk all of it to
 * assert that it never holds a client's update in the clear.
 */
export class SecureRoundSession {
  readonly #connection: MeshConnection;
  readonly #o: SecureRoundSessionOptions;
  readonly #log: Logger;
  private readonly aggregator: SecureAggregator;
  private readonly clientIds = new Map<string, number>();
  private readonly agentIds = new Map<number, string>();
  /** Keys advertised so far (public keys only), until the roster closes. */
  private readonly advertised = new Map<number, AdvertisedKeys>();
  private readonly sharedBy = new Set<number>();
  private readonly revealedBy = new Set<number>();
  #onProgress: (() => void) | undefined;
  #endWait: (() => void) | undefined;
  #subscription: ReturnType<MeshConnection['nc']['subscribe']> | undefined;

  constructor(connection: MeshConnection, options: SecureRoundSessionOptions) {
    this.#connection = connection;
    this.#o = options;
    this.#log = options.logger.child({ component: 'coordinator.fl.secure', roundId: options.roundId });
    this.aggregator = new SecureAggregator({
      roundId: options.roundId,
      threshold: options.threshold,
      vectorLength: options.vectorLength,
      fractionalBits: options.fractionalBits,
    });
    options.selected.forEach((agentId, i) => {
      this.clientIds.set(agentId, i + 1);
      this.agentIds.set(i + 1, agentId);
    });
  }

  /** The `secure` part of `agentId`'s task. */
  taskFor(agentId: string): FlSecureTask {
    const clientId = this.clientIds.get(agentId);
    if (clientId === undefined) throw new Error(`${agentId} was not selected for ${this.#o.roundId}`);
    return { clientId, threshold: this.#o.threshold, fractionalBits: this.#o.fractionalBits };
  }

  /** The client id of `agentId` in this round. */
  clientOf(agentId: string): number | undefined {
    return this.clientIds.get(agentId);
  }

  /** The agent of client `clientId`. */
  agentOf(clientId: number): string {
    return this.agentIds.get(clientId) ?? `client-${clientId}`;
  }

  /** Listens to the clients (before the tasks go out: keys follow the task at once). */
  start(): void {
    this.#subscription = this.#connection.nc.subscribe(flSecureToAggregatorSubject(this.#o.roundId), {
      callback: (err, msg) => {
        if (!err) this.#onMessage(msg.data);
      },
    });
  }

  /**
   * Advertise phase: waits for the keys of every accepted client (or the phase timeout), then
   * publishes the roster. Resolves with the roster's client ids.
   */
  async advertise(accepted: readonly string[]): Promise<number[]> {
    const expected = accepted.map((a) => this.clientIds.get(a)).filter((id) => id !== undefined);
    await this.#waitFor(() => expected.every((id) => this.advertised.has(id)));
    for (const id of expected) {
      const keys = this.advertised.get(id);
      try {
        if (keys) this.aggregator.receiveKeys(keys);
      } catch (err) {
        this.#log.warn({ agentId: this.agentOf(id), err: (err as Error).message }, 'keys refused');
      }
    }
    const roster = this.#close(() => this.aggregator.closeAdvertising());
    this.#send({ phase: 'roster', roster });
    return roster.map((k) => k.clientId);
  }

  /**
   * Share phase: waits for the shares of every roster member (or the phase timeout), then hands
   * each client that shared its inbox. Resolves with those clients (U2: the masks are among them).
   */
  async share(roster: readonly number[]): Promise<number[]> {
    await this.#waitFor(() => roster.every((id) => this.sharedBy.has(id)));
    const shared = this.#close(() => this.aggregator.closeSharing());
    for (const to of shared) this.#send({ phase: 'inbox', to, shares: this.aggregator.inboxFor(to) });
    return shared;
  }

  /** Folds one client's masked vector (uint32 little-endian bytes) into the masked sum. */
  addMasked(clientId: number, masked: Uint8Array): void {
    if (masked.byteLength !== this.#o.vectorLength * 4) {
      throw new Error(`masked vector has ${masked.byteLength} bytes, expected ${this.#o.vectorLength * 4}`);
    }
    const view = new DataView(masked.buffer, masked.byteOffset, masked.byteLength);
    const words = new Uint32Array(this.#o.vectorLength);
    for (let i = 0; i < words.length; i += 1) words[i] = view.getUint32(i * 4, true);
    this.aggregator.receiveMaskedInput({ clientId, masked: words });
  }

  /**
   * Unmask phase: publishes the survivors and the dropped clients, waits for every survivor's
   * shares (or the phase timeout) and removes the remaining masks: the survivors' sum.
   */
  async unmask(): Promise<SecureAggregationResult> {
    const request = this.#close(() => this.aggregator.closeMasking());
    this.#send({ phase: 'unmask', survivors: [...request.survivors], dropped: [...request.dropped] });
    await this.#waitFor(() => request.survivors.every((id) => this.revealedBy.has(id)));
    return this.#close(() => this.aggregator.finish());
  }

  /**
   * Ends the clients' part early: a roster below the threshold, which every client refuses,
   * ending its session (the protocol has no abort message), so they are free for the next attempt.
   */
  abortClients(): void {
    if (this.aggregator.phase === 'advertise' || this.aggregator.phase === 'share') {
      this.#send({ phase: 'roster', roster: [] });
    }
  }

  /** Stops listening; a phase still waiting ends at once. */
  close(): void {
    this.#subscription?.unsubscribe();
    this.#endWait?.();
  }

  #close<T>(step: () => T): T {
    try {
      return step();
    } catch (err) {
      throw new SecureRoundFailure((err as Error).message, { cause: err });
    }
  }

  /** Resolves once `done()` holds after a message, at the phase timeout, or on abort. */
  #waitFor(done: () => boolean): Promise<void> {
    if (done()) return Promise.resolve();
    return new Promise((resolve) => {
      const finish = (): void => {
        clearTimeout(timer);
        this.#o.signal?.removeEventListener('abort', finish);
        this.#onProgress = undefined;
        this.#endWait = undefined;
        resolve();
      };
      this.#endWait = finish;
      const timer = setTimeout(finish, this.#o.phaseTimeoutMs);
      this.#o.signal?.addEventListener('abort', finish, { once: true });
      this.#onProgress = () => {
        if (done()) finish();
      };
    });
  }

  #send(message: FlSecureDownMessage): void {
    this.#connection.nc.publish(
      flSecureToClientsSubject(this.#o.roundId),
      encode(flSecureDownMessageSchema, message, 'secure aggregation message'),
    );
  }

  #onMessage(data: Uint8Array): void {
    let message: FlSecureUpMessage;
    try {
      message = decode(flSecureUpMessageSchema, data, 'secure aggregation message');
    } catch (err) {
      this.#log.warn({ err: (err as Error).message }, 'invalid secure aggregation message');
      return;
    }
    const { agentId, clientId } = message;
    if (this.clientIds.get(agentId) !== clientId) {
      this.#log.warn(
        { agentId, clientId, phase: message.phase },
        'secure message from a client not in the round',
      );
      return;
    }
    try {
      switch (message.phase) {
        case 'keys':
          if (this.aggregator.phase !== 'advertise' || this.advertised.has(clientId)) {
            throw new Error(`keys not taken in phase '${this.aggregator.phase}'`);
          }
          this.advertised.set(clientId, {
            clientId,
            maskPublicKey: message.maskPublicKey,
            encryptionPublicKey: message.encryptionPublicKey,
          });
          break;
        case 'shares':
          this.aggregator.receiveShares(clientId, message.shares);
          this.sharedBy.add(clientId);
          break;
        case 'unmask':
          this.aggregator.receiveUnmaskShares({
            clientId,
            selfMaskShares: message.selfMaskShares,
            maskKeyShares: message.maskKeyShares,
          });
          this.revealedBy.add(clientId);
          break;
      }
    } catch (err) {
      this.#log.warn(
        { agentId, phase: message.phase, err: (err as Error).message },
        'secure message refused',
      );
      return;
    }
    this.#onProgress?.();
  }
}

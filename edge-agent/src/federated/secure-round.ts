/**
 * The agent's part in one secure-aggregation round (the phase order of protocols'
 * `federated.ts`): on start it subscribes to `flSecureToClientsSubject(roundId)` and publishes its
 * `keys`; on the aggregator's `roster` it publishes its encrypted `shares`; its own `inbox` (the
 * shares others sent it) is what masking waits for; after the masked update is sent, the
 * aggregator's `unmask` request is answered with the shares the protocol allows to reveal. The
 * masked vector is `delta * numExamples` per tensor, concatenated, then `numExamples`.
 * @module
 */
import type { Logger } from 'pino';
import type { MeshConnection } from '@infermesh/mesh-client';
import {
  decode,
  encode,
  flSecureDownMessageSchema,
  flSecureToAggregatorSubject,
  flSecureToClientsSubject,
  flSecureUpMessageSchema,
} from '@infermesh/protocols';
import type { FlRoundTask, FlSecureTask, FlSecureUpMessage } from '@infermesh/protocols';
import { SecureAggregationClient } from '@infermesh/federated';
import type { EncryptedShare } from '@infermesh/federated';

/** How long after the round deadline the agent still answers the unmask request. */
export const SECURE_UNMASK_GRACE_MS = 60_000;

/** The vector a secure round sums: `delta * numExamples` per tensor, then `numExamples`. */
export function secureVector(delta: readonly Float32Array[], numExamples: number): Float32Array {
  const length = delta.reduce((n, d) => n + d.length, 0) + 1;
  const out = new Float32Array(length);
  let offset = 0;
  for (const d of delta) {
    for (let k = 0; k < d.length; k += 1) out[offset + k] = d[k]! * numExamples;
    offset += d.length;
  }
  out[length - 1] = numExamples;
  return out;
}

/** Little-endian bytes of a uint32 vector. */
function uint32Bytes(values: Uint32Array): Uint8Array {
  const out = new Uint8Array(values.length * 4);
  const view = new DataView(out.buffer);
  values.forEach((v, i) => view.setUint32(i * 4, v, true));
  return out;
}

/** One secure round's key exchange and unmasking on the agent. */
export class SecureRoundSession {
  readonly #connection: MeshConnection;
  readonly #task: FlRoundTask & { secure: FlSecureTask };
  readonly #agentId: string;
  readonly #log: Logger;
  readonly #client: SecureAggregationClient;
  readonly #inbox: Promise<EncryptedShare[]>;
  #resolveInbox: (shares: EncryptedShare[]) => void = () => undefined;
  #rejectInbox: (err: Error) => void = () => undefined;
  #subscription: ReturnType<MeshConnection['nc']['subscribe']> | undefined;
  #masked = false;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  #onClose: (() => void) | undefined;

  constructor(
    connection: MeshConnection,
    task: FlRoundTask & { secure: FlSecureTask },
    agentId: string,
    vectorLength: number,
    logger: Logger,
  ) {
    this.#connection = connection;
    this.#task = task;
    this.#agentId = agentId;
    this.#log = logger.child({ component: 'agent.fl.secure', roundId: task.roundId });
    this.#client = new SecureAggregationClient(
      {
        roundId: task.roundId,
        threshold: task.secure.threshold,
        vectorLength,
        fractionalBits: task.secure.fractionalBits,
      },
      task.secure.clientId,
    );
    this.#inbox = new Promise<EncryptedShare[]>((resolve, reject) => {
      this.#resolveInbox = resolve;
      this.#rejectInbox = reject;
    });
    this.#inbox.catch(() => undefined); // a session closed before anyone waits is not an error
  }

  /** Subscribes to the aggregator's messages and advertises this client's keys. */
  start(): void {
    this.#subscription = this.#connection.nc.subscribe(flSecureToClientsSubject(this.#task.roundId), {
      callback: (err, msg) => {
        if (!err) this.#onMessage(msg.data);
      },
    });
    this.#timer = setTimeout(
      () => this.close('the unmask request never came'),
      Math.max(0, this.#task.deadlineAt - Date.now()) + SECURE_UNMASK_GRACE_MS,
    );
    this.#timer.unref();
    const keys = this.#client.advertiseKeys();
    this.#send({
      phase: 'keys',
      agentId: this.#agentId,
      clientId: keys.clientId,
      maskPublicKey: keys.maskPublicKey,
      encryptionPublicKey: keys.encryptionPublicKey,
    });
  }

  /** Waits for this client's inbox, then masks `vector`: the `masked` bytes of the update. */
  async mask(vector: Float32Array): Promise<Uint8Array> {
    const inbox = await this.#inbox;
    const { masked } = this.#client.maskInput(vector, inbox);
    this.#masked = true;
    return uint32Bytes(masked);
  }

  /** Calls `listener` once the session has ended. */
  onClose(listener: () => void): void {
    this.#onClose = listener;
  }

  /** Ends the session (unsubscribes); a pending `mask` rejects with `reason`. */
  close(reason = 'closed'): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#subscription?.unsubscribe();
    this.#rejectInbox(new Error(`secure round ended: ${reason}`));
    this.#onClose?.();
  }

  #send(message: FlSecureUpMessage): void {
    this.#connection.nc.publish(
      flSecureToAggregatorSubject(this.#task.roundId),
      encode(flSecureUpMessageSchema, message, 'secure aggregation message'),
    );
  }

  #onMessage(data: Uint8Array): void {
    try {
      const message = decode(flSecureDownMessageSchema, data, 'secure aggregation message');
      const clientId = this.#task.secure.clientId;
      switch (message.phase) {
        case 'roster': {
          const shares = this.#client.shareKeys(message.roster);
          this.#send({ phase: 'shares', agentId: this.#agentId, clientId, shares });
          return;
        }
        case 'inbox':
          if (message.to === clientId) this.#resolveInbox(message.shares);
          return;
        case 'unmask': {
          if (!this.#masked) return; // not a participant of unmasking: nothing sent, nothing to reveal
          const response = this.#client.unmask(message);
          this.#send({
            phase: 'unmask',
            agentId: this.#agentId,
            clientId,
            selfMaskShares: [...response.selfMaskShares],
            maskKeyShares: [...response.maskKeyShares],
          });
          this.close('done');
          return;
        }
      }
    } catch (err) {
      this.#log.warn({ err: (err as Error).message }, 'secure aggregation message refused');
      this.close((err as Error).message);
    }
  }
}

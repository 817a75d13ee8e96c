/**
 * The durable stream of federated updates (`updatesStream()`, subjects `allFlUpdatesSubject()`):
 * created by the coordinator when missing (file storage, a day of retention, messages up to the
 * server's max_payload, de-duplication by the agents' `msgID` `<roundId>.<agentId>.<nonce>`, which
 * drops a re-publish after a lost ack; the coordinator's first-update-per-agent rule does the
 * rest), and read one round at a time from its first message with an ordered consumer filtered on
 * `flUpdateSubject(roundId)`, each message with its signature header. Reading from the stream, not
 * a live subscription, is what lets a coordinator that took a run over mid-round count every
 * update published before the deadline.
 * The reader survives a nats-server restart: a failed fetch is retried with back-off from a new
 * consumer that starts after the last message read, for as long as the caller's budget allows, so
 * an update stored before the deadline is counted even when the server was down at the deadline.
 * @module
 */
import { DeliverPolicy, RetentionPolicy, StorageType, jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { Consumer, JsMsg } from '@nats-io/jetstream';
import type { Logger } from 'pino';
import {
  AGENT_SIGNATURE_HEADER,
  allFlUpdatesSubject,
  flUpdateSubject,
  updatesStream,
} from '@infermesh/protocols';
import type { MeshConnection } from '@infermesh/mesh-client';
import {
  DEFAULT_RETRY_INITIAL_DELAY_MS,
  DEFAULT_RETRY_MAX_DELAY_MS,
  TransientFailure,
  isTransientError,
  pause,
} from './transient-retry.js';

/** Updates are kept a day: long enough for any round, short enough to bound the stream. */
export const UPDATES_MAX_AGE_MS = 24 * 3_600_000;
/** Window in which a re-published update (same msgID) is dropped as a duplicate. */
export const UPDATES_DUPLICATE_WINDOW_MS = 10 * 60_000;
/** Longest single wait for the next batch of updates. */
const FETCH_EXPIRES_MS = 1_000;

/** Creates the updates stream unless it exists. */
export async function ensureUpdatesStream(connection: MeshConnection, replicas: number): Promise<void> {
  const jsm = await jetstreamManager(connection.nc);
  const name = updatesStream();
  try {
    await jsm.streams.info(name);
    return;
  } catch {
    // absent: create it below
  }
  try {
    await jsm.streams.add({
      name,
      subjects: [allFlUpdatesSubject()],
      storage: StorageType.File,
      retention: RetentionPolicy.Limits,
      max_age: UPDATES_MAX_AGE_MS * 1_000_000,
      max_msg_size: connection.maxPayload,
      duplicate_window: UPDATES_DUPLICATE_WINDOW_MS * 1_000_000,
      num_replicas: replicas,
      description: 'InferMesh federated updates',
    });
  } catch (err) {
    // Created by another coordinator meanwhile.
    await jsm.streams.info(name).catch(() => Promise.reject(err as Error));
  }
}

/** Options of {@link readRoundUpdates}. */
export interface ReadRoundOptions {
  readonly roundId: string;
  /** Updates stored after this instant are stragglers: ignored. */
  readonly deadlineAt: number;
  /**
   * Called for each on-time message with its `AGENT_SIGNATURE_HEADER` (the stream keeps headers);
   * return true once every expected update is in.
   */
  readonly onMessage: (data: Uint8Array, storedAt: number, signature: string | undefined) => boolean;
  /** Called for a message stored after the deadline. */
  readonly onLate?: (data: Uint8Array, storedAt: number) => void;
  /**
   * While the stream cannot be read (NATS restarting), keep trying until this instant (epoch
   * ms), then fail with {@link TransientFailure}. Default: the deadline plus {@link DEFAULT_READ_GRACE_MS}.
   */
  readonly retryUntil?: number;
  readonly logger?: Logger;
  readonly signal?: AbortSignal;
  readonly now?: () => number;
}

/** How long after the deadline a reader keeps trying to reach an unreachable stream, by default. */
export const DEFAULT_READ_GRACE_MS = 30_000;

/** An ordered consumer of the round's updates that starts at stream sequence `fromSeq` (1 = all). */
async function roundConsumer(
  connection: MeshConnection,
  roundId: string,
  fromSeq: number,
): Promise<Consumer> {
  const js = jetstream(connection.nc);
  return js.consumers.get(updatesStream(), {
    filter_subjects: flUpdateSubject(roundId),
    ...(fromSeq <= 1
      ? { deliver_policy: DeliverPolicy.All }
      : { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: fromSeq }),
  });
}

/**
 * Reads the round's updates from the start of the stream until `onMessage` says the round is
 * complete, or the deadline has passed and the stream holds nothing more for the round.
 */
export async function readRoundUpdates(connection: MeshConnection, options: ReadRoundOptions): Promise<void> {
  const now = options.now ?? Date.now;
  const retryUntil = options.retryUntil ?? options.deadlineAt + DEFAULT_READ_GRACE_MS;
  /** Stream sequence of the last message handled: a new consumer starts after it. */
  let lastSeq = 0;
  let consumer: Consumer | undefined;
  let failures = 0;
  for (;;) {
    if (options.signal?.aborted) return;
    let seen = 0;
    try {
      consumer ??= await roundConsumer(connection, options.roundId, lastSeq + 1);
      const remaining = options.deadlineAt - now();
      // nats.js refuses a pull that expires in under 1 s (InvalidArgumentError), so never ask for less.
      const expires = Math.max(
        1_000,
        Math.min(FETCH_EXPIRES_MS, remaining > 0 ? remaining : FETCH_EXPIRES_MS),
      );
      const batch = await consumer.fetch({ max_messages: 64, expires });
      for await (const msg of batch as AsyncIterable<JsMsg>) {
        seen += 1;
        lastSeq = msg.seq;
        const storedAt = Math.floor(Number(msg.info.timestampNanos) / 1_000_000);
        if (storedAt > options.deadlineAt) {
          options.onLate?.(msg.data, storedAt);
          continue;
        }
        const signature = msg.headers?.get(AGENT_SIGNATURE_HEADER) || undefined;
        if (options.onMessage(msg.data, storedAt, signature)) return;
      }
      failures = 0;
    } catch (err) {
      if (!isTransientError(err)) throw err;
      failures += 1;
      if (now() > retryUntil)
        throw new TransientFailure(`read the updates of ${options.roundId}`, failures, err);
      const delay = Math.min(
        DEFAULT_RETRY_MAX_DELAY_MS,
        DEFAULT_RETRY_INITIAL_DELAY_MS * 2 ** (failures - 1),
      );
      options.logger?.warn(
        { err: (err as Error).message, failures, lastSeq, retryInMs: delay },
        'updates stream not readable, retrying from the last update read',
      );
      // The server may have lost the ephemeral consumer: start a new one after the last message.
      consumer = undefined;
      await pause(delay, options.signal);
      continue;
    }
    if (seen === 0 && now() > options.deadlineAt) return;
  }
}

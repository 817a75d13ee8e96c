/**
 * The durable stream of federated updates (`updatesStream()`, subjects `allFlUpdatesSubject()`):
 * created by the coordinator when missing (file storage, a day of retention, messages up to the
 * server's max_payload, de-duplication by the agents' `msgID` `<roundId>.<agentId>`), and read one
 * round at a time from its first message with an ordered consumer filtered on
 * `flUpdateSubject(roundId)`. Reading from the stream, not a live subscription, is what lets a
 * coordinator that took a run over mid-round count every update published before the deadline.
 * @module
 */
import { DeliverPolicy, RetentionPolicy, StorageType, jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { JsMsg } from '@nats-io/jetstream';
import { allFlUpdatesSubject, flUpdateSubject, updatesStream } from '@infermesh/protocols';
import type { MeshConnection } from '@infermesh/mesh-client';

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
  /** Called for each on-time message; return true once every expected update is in. */
  readonly onMessage: (data: Uint8Array, storedAt: number) => boolean;
  /** Called for a message stored after the deadline. */
  readonly onLate?: (data: Uint8Array, storedAt: number) => void;
  readonly signal?: AbortSignal;
  readonly now?: () => number;
}

/**
 * Reads the round's updates from the start of the stream until `onMessage` says the round is
 * complete, or the deadline has passed and the stream holds nothing more for the round.
 */
export async function readRoundUpdates(connection: MeshConnection, options: ReadRoundOptions): Promise<void> {
  const now = options.now ?? Date.now;
  const js = jetstream(connection.nc);
  const consumer = await js.consumers.get(updatesStream(), {
    filter_subjects: flUpdateSubject(options.roundId),
    deliver_policy: DeliverPolicy.All,
  });
  for (;;) {
    if (options.signal?.aborted) return;
    const remaining = options.deadlineAt - now();
    // nats.js refuses a pull that expires in under 1 s (InvalidArgumentError), so never ask for less.
    const expires = Math.max(1_000, Math.min(FETCH_EXPIRES_MS, remaining > 0 ? remaining : FETCH_EXPIRES_MS));
    const batch = await consumer.fetch({ max_messages: 64, expires });
    let seen = 0;
    for await (const msg of batch as AsyncIterable<JsMsg>) {
      seen += 1;
      const storedAt = Math.floor(Number(msg.info.timestampNanos) / 1_000_000);
      if (storedAt > options.deadlineAt) {
        options.onLate?.(msg.data, storedAt);
        continue;
      }
      if (options.onMessage(msg.data, storedAt)) return;
    }
    if (seen === 0 && now() > options.deadlineAt) return;
  }
}

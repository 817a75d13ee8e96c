/**
 * The heartbeats stream (`heartbeatsStream()`): it captures every agent's heartbeats and keeps the
 * last one per agent (one subject per agent, `max_msgs_per_subject: 1`), so the fleet's heartbeat
 * state survives any coordinator and a new one rebuilds its view by replaying it.
 * @module
 */
import { DeliverPolicy, RetentionPolicy, StorageType, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { AGENT_SIGNATURE_HEADER, allAgentHeartbeatsSubject, heartbeatsStream } from '@infermesh/protocols';
import { jetstreamCall } from '@infermesh/mesh-client';
import type { MeshConnection } from '@infermesh/mesh-client';

/** How long the stream keeps an agent's last heartbeat: a week of silence forgets it. */
const HEARTBEAT_MAX_AGE_NS = 7 * 24 * 3_600 * 1e9;
/** Heartbeats fetched per batch while replaying. */
const REPLAY_BATCH = 1_000;

/** Creates the stream when it does not exist. */
export async function ensureHeartbeatsStream(connection: MeshConnection, replicas: number): Promise<void> {
  const jsm = await jetstreamManager(connection.nc);
  const name = heartbeatsStream();
  await jetstreamCall('the heartbeats stream', async () => {
    try {
      await jsm.streams.info(name);
    } catch {
      await jsm.streams.add({
        name,
        description: 'InferMesh agent heartbeats: the last one per agent',
        subjects: [allAgentHeartbeatsSubject()],
        retention: RetentionPolicy.Limits,
        storage: StorageType.File,
        max_msgs_per_subject: 1,
        max_age: HEARTBEAT_MAX_AGE_NS,
        num_replicas: replicas,
      });
    }
  });
}

/**
 * Calls `visit` with the last heartbeat of every agent in the stream (subject, raw bytes, when the
 * server stored it in ms since the epoch, and the agent's signature header when it had one). Resolves once all have been visited.
 */
export async function replayLastHeartbeats(
  connection: MeshConnection,
  visit: (subject: string, data: Uint8Array, storedAt: number, signature: string | undefined) => void,
): Promise<void> {
  const js = jetstream(connection.nc);
  const jsm = await jetstreamManager(connection.nc);
  const name = heartbeatsStream();
  const info = await jetstreamCall('the heartbeats stream', () => jsm.streams.info(name));
  if (info.state.messages === 0) return;
  const consumer = await jetstreamCall('the heartbeats stream', () =>
    js.consumers.get(name, { deliver_policy: DeliverPolicy.LastPerSubject }),
  );
  const messages = await consumer.consume({ max_messages: REPLAY_BATCH });
  try {
    for await (const msg of messages) {
      visit(
        msg.subject,
        msg.data,
        Math.floor(msg.info.timestampNanos / 1e6),
        msg.headers?.get(AGENT_SIGNATURE_HEADER) || undefined,
      );
      if (msg.info.pending === 0) break;
    }
  } finally {
    await messages.close();
  }
}

/**
 * Simulated agents for rollout scale tests, without agent processes: each one heartbeats over NATS
 * with the real heartbeat protocol (as `test/bench/suites/fleet-simulator.ts` does) and "syncs"
 * instantly: a watch on the desired-state bucket tells it which version of the model it should
 * run, and its next heartbeat (sent at once on a change) reports that version `synced`. Also
 * records the size of every KV value written on the server, to check that none grows with the
 * fleet.
 * @module
 */
import { Kvm, KvWatchInclude } from '@nats-io/kv';
import type { KvWatchEntry } from '@nats-io/kv';
import {
  agentHeartbeatSchema,
  agentHeartbeatSubject,
  desiredModelSchema,
  desiredStateBucket,
  encode,
  parseDesiredModelKey,
} from '@infermesh/protocols';
import type { AgentHeartbeat } from '@infermesh/protocols';
import type { MeshConnection } from '@infermesh/mesh-client';

/** Options of {@link startSimulatedFleet}. */
export interface SimulatedFleetOptions {
  readonly connection: MeshConnection;
  readonly agentIds: readonly string[];
  readonly model: string;
  /** The version each agent serves while its desired state names none. */
  readonly baseVersion: string;
  readonly intervalMs: number;
}

/** A running simulated fleet. */
export interface SimulatedFleet {
  /** The version each agent serves now. */
  readonly serving: Map<string, string>;
  stop(): Promise<void>;
}

function heartbeatOf(agentId: string, model: string, version: string, startedAt: number): AgentHeartbeat {
  const now = Date.now();
  return {
    agentId,
    at: now,
    uptimeS: Math.floor((now - startedAt) / 1000),
    agentVersion: '0.1.0',
    models: [{ name: model, version, state: 'ready', requests: 0, errors: 0, p50Ms: 2, p95Ms: 8 }],
    health: 'ok',
    labels: { fleet: 'simulated' },
    sync: [
      { name: model, desiredVersion: version, servingVersion: version, state: 'synced', bytesFetched: 1 },
    ],
  };
}

/** Starts heartbeating for every agent and following their desired state of `model`. */
export async function startSimulatedFleet(options: SimulatedFleetOptions): Promise<SimulatedFleet> {
  const { connection, model, baseVersion } = options;
  const startedAt = Date.now();
  const serving = new Map(options.agentIds.map((id) => [id, baseVersion]));
  const beat = (agentId: string): void => {
    const version = serving.get(agentId) ?? baseVersion;
    connection.nc.publish(
      agentHeartbeatSubject(agentId),
      encode(agentHeartbeatSchema, heartbeatOf(agentId, model, version, startedAt), 'heartbeat'),
    );
  };
  const kv = await new Kvm(connection.nc).create(desiredStateBucket());
  const watch = await kv.watch({ key: `*.${model}`, include: KvWatchInclude.LastValue });
  const apply = (entry: KvWatchEntry): void => {
    const ref = parseDesiredModelKey(entry.key);
    if (!ref || !serving.has(ref.agentId)) return;
    const version = entry.operation === 'PUT' ? desiredModelSchema.parse(entry.json()).version : baseVersion;
    if (serving.get(ref.agentId) === version) return;
    serving.set(ref.agentId, version);
    beat(ref.agentId);
  };
  const following = (async () => {
    for await (const entry of watch) apply(entry);
  })();
  // Spread the periodic heartbeats over the interval, a slice every 50 ms.
  const ids = [...options.agentIds];
  const slices = Math.max(1, Math.round(options.intervalMs / 50));
  let slice = 0;
  for (const id of ids) beat(id);
  const timer = setInterval(() => {
    for (let i = slice; i < ids.length; i += slices) beat(ids[i] as string);
    slice = (slice + 1) % slices;
  }, 50);
  return {
    serving,
    async stop() {
      clearInterval(timer);
      watch.stop();
      await following;
    },
  };
}

/** Records the largest value written to each KV bucket (`$KV.<bucket>.<key>` messages). */
export function recordKvValueSizes(connection: MeshConnection): {
  readonly largest: Map<string, { bytes: number; key: string }>;
  stop(): void;
} {
  const largest = new Map<string, { bytes: number; key: string }>();
  const sub = connection.nc.subscribe('$KV.>', {
    callback: (err, msg) => {
      if (err) return;
      const [, bucket = '', ...key] = msg.subject.split('.');
      const top = largest.get(bucket);
      if (!top || msg.data.length > top.bytes)
        largest.set(bucket, { bytes: msg.data.length, key: key.join('.') });
    },
  });
  return { largest, stop: () => sub.unsubscribe() };
}

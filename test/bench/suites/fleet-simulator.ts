/**
 * Simulated edge agents for the fleet benchmark: many lightweight clients speaking the real
 * heartbeat protocol (`agentHeartbeatSchema`, msgpack `encode`, `agentHeartbeatSubject(id)`) over a
 * handful of NATS connections, each agent on its own period with jitter, with realistic content:
 * one or two models with monotonic counters and p50/p95, sync entries, hardware and labels.
 * @module
 */
import { generateKeyPairSync, sign } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import {
  AGENT_SIGNATURE_HEADER,
  agentHeartbeatSchema,
  agentHeartbeatSubject,
  encode,
  fleetBucket,
} from '@infermesh/protocols';
import type { AgentHeartbeat, FleetRecord } from '@infermesh/protocols';
import { connectMesh, openRegistryKv, toMsgHdrs } from '@infermesh/mesh-client';
import type { MeshConnection } from '@infermesh/mesh-client';

/** Sites the simulated agents are spread over (label `site`). */
export const SIMULATED_SITES = 20;
const HARDWARE = ['pi5', 'jetson-orin', 'x86-nuc'] as const;
const TICK_MS = 20;

/** Options of {@link FleetSimulator}. */
export interface FleetSimulatorOptions {
  readonly natsUrl: string;
  readonly agents: number;
  readonly connections: number;
  readonly intervalMs: number;
  /** Each period varies by up to this fraction either way (default 0.1). */
  readonly jitter?: number;
  /**
   * Agents are enrolled (a fleet record with an ed25519 key each) and sign every heartbeat, so the
   * coordinator verifies every signature, as in production. Default true.
   */
  readonly enrolled?: boolean;
}

interface SimulatedAgent {
  readonly id: string;
  readonly subject: string;
  readonly connection: number;
  readonly startedAt: number;
  readonly heartbeat: AgentHeartbeat;
  readonly key: { readonly privateKey: KeyObject; readonly publicKey: KeyObject } | undefined;
  dueAt: number;
}

/** The simulated agent id of index `i` (the enrolled form: `ag-` + 16 hex). */
export function simulatedAgentId(i: number): string {
  return `ag-${i.toString(16).padStart(16, '0')}`;
}

function initialHeartbeat(i: number, now: number): AgentHeartbeat {
  const two = i % 3 === 0;
  const model = (name: string, version: string) => ({
    name,
    version,
    state: 'ready' as const,
    requests: 0,
    errors: 0,
    p50Ms: 2 + (i % 7),
    p95Ms: 8 + (i % 11),
  });
  return {
    agentId: simulatedAgentId(i),
    at: now,
    uptimeS: 0,
    agentVersion: '0.1.0',
    models: two ? [model('spam', '3'), model('vision-tiny', '1')] : [model('spam', '3')],
    health: 'ok',
    hardware: { arch: 'arm64', platform: 'linux', cpus: 4, memoryBytes: 8 * 1024 ** 3 },
    labels: { site: `site-${i % SIMULATED_SITES}`, hw: HARDWARE[i % HARDWARE.length] ?? 'x86-nuc' },
    sync: [
      { name: 'spam', desiredVersion: '3', servingVersion: '3', state: 'synced', bytesFetched: 1_204_311 },
      ...(two ? [{ name: 'vision-tiny', servingVersion: '1', state: 'idle' as const, bytesFetched: 0 }] : []),
    ],
  };
}

/** Simulated agents heartbeating over shared connections. */
export class FleetSimulator {
  readonly #o: FleetSimulatorOptions;
  readonly #agents: SimulatedAgent[] = [];
  #connections: MeshConnection[] = [];
  #timer: NodeJS.Timeout | undefined;
  /** Heartbeats published so far. */
  published = 0;

  constructor(options: FleetSimulatorOptions) {
    this.#o = options;
  }

  async connect(): Promise<void> {
    this.#connections = await Promise.all(
      Array.from({ length: this.#o.connections }, (_, i) =>
        connectMesh(this.#o.natsUrl, { name: `fleet-sim-${i}` }),
      ),
    );
    const now = Date.now();
    const enrolled = this.#o.enrolled ?? true;
    for (let i = 0; i < this.#o.agents; i++) {
      const id = simulatedAgentId(i);
      this.#agents.push({
        id,
        subject: agentHeartbeatSubject(id),
        connection: i % this.#o.connections,
        startedAt: now,
        heartbeat: initialHeartbeat(i, now),
        key: enrolled ? generateKeyPairSync('ed25519') : undefined,
        dueAt: Infinity,
      });
    }
  }

  /**
   * Writes every enrolled agent's fleet record (as the enrollment responder would) into the
   * coordinator's fleet bucket. Call once the coordinator runs.
   */
  async enrollAll(): Promise<void> {
    const connection = this.#connections[0];
    if (!connection) throw new Error('connect() first');
    const kv = await openRegistryKv(connection, fleetBucket(), 'fleet records');
    const now = Date.now();
    const batch = 500;
    const agents = this.#agents.filter((a) => a.key !== undefined);
    for (let start = 0; start < agents.length; start += batch) {
      await Promise.all(
        agents.slice(start, start + batch).map((agent) => {
          const record: FleetRecord = {
            agentId: agent.id,
            publicKey: Buffer.from(
              agent.key!.publicKey.export({ format: 'jwk' }).x as string,
              'base64url',
            ).toString('base64'),
            labels: agent.heartbeat.labels ?? {},
            enrolledAt: now,
            enrollmentTokenId: '0000000000000000',
          };
          return kv.put(agent.id, JSON.stringify(record));
        }),
      );
    }
  }

  /** Every agent heartbeats once, spread over `spreadMs`; resolves when all are sent and flushed. */
  async announceAll(spreadMs: number): Promise<void> {
    const batch = Math.ceil(this.#agents.length / Math.max(1, spreadMs / TICK_MS));
    for (let start = 0; start < this.#agents.length; start += batch) {
      for (const agent of this.#agents.slice(start, start + batch)) this.#publish(agent, Date.now());
      await new Promise((r) => setTimeout(r, TICK_MS));
    }
    await Promise.all(this.#connections.map((c) => c.nc.flush()));
  }

  /** Starts the periodic heartbeats: first ones spread over one interval, then every interval ± jitter. */
  start(): void {
    const now = Date.now();
    for (const agent of this.#agents) agent.dueAt = now + Math.random() * this.#o.intervalMs;
    this.#timer = setInterval(() => this.#tick(), TICK_MS);
  }

  /** Stops the periodic heartbeats (the fleet goes idle). */
  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  async close(): Promise<void> {
    this.stop();
    await Promise.all(this.#connections.map((c) => c.drain()));
  }

  #tick(): void {
    const now = Date.now();
    const jitter = this.#o.jitter ?? 0.1;
    for (const agent of this.#agents) {
      if (agent.dueAt > now) continue;
      this.#publish(agent, now);
      agent.dueAt = now + this.#o.intervalMs * (1 + jitter * (2 * Math.random() - 1));
    }
  }

  #publish(agent: SimulatedAgent, now: number): void {
    const hb = agent.heartbeat;
    hb.at = now;
    hb.uptimeS = (now - agent.startedAt) / 1000;
    for (const model of hb.models) {
      const served = Math.floor(Math.random() * 50);
      model.requests += served;
      if (Math.random() < 0.05) model.errors += 1;
      model.p50Ms = 2 + Math.random() * 3;
      model.p95Ms = 8 + Math.random() * 10;
    }
    const connection = this.#connections[agent.connection];
    const body = encode(agentHeartbeatSchema, hb, 'heartbeat');
    const headers = agent.key
      ? toMsgHdrs({ [AGENT_SIGNATURE_HEADER]: sign(null, body, agent.key.privateKey).toString('base64') })
      : undefined;
    connection?.nc.publish(agent.subject, body, headers ? { headers } : undefined);
    this.published += 1;
  }
}

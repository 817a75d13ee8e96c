/**
 * Shared pieces of the rollout end-to-end tests: a mesh of real processes (nats-server, one or more
 * `infermesh coordinator` processes sharing a publisher key, with short rollout ticks and leases,
 * and `infermesh agent` processes heartbeating every 250 ms, optionally labelled), the history of
 * every desired-state value as the bucket recorded it, the models a rollout moves (a good MLP, one
 * that fails its self-test, one that loads and passes its self-test but fails every batch of two,
 * a slow one), traffic to every agent, and waiting on a rollout through the admin API.
 * @module
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kvm, KvWatchInclude } from '@nats-io/kv';
import { DesiredStateStore, connectMesh } from '@infermesh/mesh-client';
import type { MeshConnection } from '@infermesh/mesh-client';
import { GraphBuilder, buildMlpClassifier, fillUniform, mulberry32 } from '@infermesh/onnx-tools';
import {
  desiredModelSchema,
  desiredStateBucket,
  parseDesiredModelKey,
  tensorFromTypedArray,
} from '@infermesh/protocols';
import type { CreateRolloutRequest, Rollout, RolloutAgent, RolloutAgentPage } from '@infermesh/protocols';
import {
  CLI_ENTRY,
  REPO_ROOT,
  infer,
  inferPath,
  socketTarget,
  startCoordinator,
  startNatsServer,
} from '../harness/index.js';
import type { NatsServer, StartedCoordinator } from '../harness/index.js';
import { waitUntil } from '../harness/registry.js';
import { AdminApi, collectHeartbeats, startAgentProcess } from './sync-support.js';
import type { AgentProcess, HeartbeatCollector } from './sync-support.js';

/** The model every rollout test moves. */
/** True once a rollout has ended (neither running nor paused). */
export const rolloutEnded = (r: Rollout): boolean => r.state !== 'running' && r.state !== 'paused';

export const MODEL = 'ro';
/** Width of its FP32 input `features`. */
const WIDTH = 16;

/** A good version: an MLP [batch, 16] -> 4 that takes any batch. */
export function goodModel(seed: number): Uint8Array {
  return buildMlpClassifier({ inputSize: WIDTH, hiddenSizes: [8], classes: 4, batch: 'dynamic', seed }).bytes;
}

/** Loads, but its self-test (every dynamic dimension 1) fails: [1, 1] x [16, 4]. */
export function failsSelfTestModel(): Uint8Array {
  const g = new GraphBuilder({ name: 'fails-self-test' });
  g.input('features', 'FP32', ['batch', 'width']);
  const weights = new Float32Array(WIDTH * 4);
  fillUniform(weights, mulberry32(7), -1, 1);
  const w = g.initializer('w', 'FP32', [WIDTH, 4], weights);
  g.node('MatMul', ['features', w], ['probabilities']);
  g.output('probabilities', 'FP32', ['batch', 4]);
  return g.toBytes();
}

/**
 * Loads and passes its self-test (a batch of one), but every request with a batch of two fails:
 * the input is reshaped to a fixed [1, 16] before the MatMul.
 */
export function failsBatchOfTwoModel(): Uint8Array {
  const g = new GraphBuilder({ name: 'fixed-batch' });
  g.input('features', 'FP32', ['batch', WIDTH]);
  const shape = g.initializer('shape', 'INT64', [2], new BigInt64Array([1n, BigInt(WIDTH)]));
  const weights = new Float32Array(WIDTH * 4);
  fillUniform(weights, mulberry32(8), -1, 1);
  const w = g.initializer('w', 'FP32', [WIDTH, 4], weights);
  g.node('Reshape', ['features', shape], ['row']);
  g.node('MatMul', ['row', w], ['probabilities']);
  g.output('probabilities', 'FP32', ['batch', 4]);
  return g.toBytes();
}

/**
 * Answers correctly, but slowly: [batch, 16] -> 512, then `depth` MatMuls by one 512 x 512 weight
 * (about `depth` MFLOP per row), then -> 4. Passes its self-test; its p95 is far above the good
 * MLP's.
 */
export function slowModel(depth = 400): Uint8Array {
  const g = new GraphBuilder({ name: 'slow-chain' });
  const random = mulberry32(9);
  const hidden = 512;
  const matrix = (rows: number, cols: number, scale: number): Float32Array => {
    const values = new Float32Array(rows * cols);
    fillUniform(values, random, -scale, scale);
    return values;
  };
  g.input('features', 'FP32', ['batch', WIDTH]);
  const first = g.initializer('w_in', 'FP32', [WIDTH, hidden], matrix(WIDTH, hidden, 0.1));
  const square = g.initializer('w_chain', 'FP32', [hidden, hidden], matrix(hidden, hidden, 1 / hidden));
  const last = g.initializer('w_out', 'FP32', [hidden, 4], matrix(hidden, 4, 0.1));
  g.node('MatMul', ['features', first], ['h0']);
  for (let i = 0; i < depth; i += 1) g.node('MatMul', [`h${i}`, square], [`h${i + 1}`]);
  g.node('MatMul', [`h${depth}`, last], ['probabilities']);
  g.output('probabilities', 'FP32', ['batch', 4]);
  return g.toBytes();
}

/** One desired value of one agent as the bucket recorded it (null: deleted). */
export interface DesiredHistoryEntry {
  readonly version: string | null;
  readonly setBy?: string;
  /** When the server stored it (ms since the epoch). */
  readonly at: number;
}

/** Options of {@link startRolloutMesh}. */
export interface RolloutMeshOptions {
  readonly agents: number;
  readonly coordinators: readonly string[];
  readonly tickIntervalMs?: number;
  readonly leaseTtlMs?: number;
  /** Labels of the agent at an index (`INFERMESH_LABELS`, reported in its heartbeats). */
  readonly labelsOf?: (index: number) => Record<string, string>;
}

/** A mesh for rollout tests. */
export interface RolloutMesh {
  readonly nats: NatsServer;
  readonly coordinators: Map<string, StartedCoordinator>;
  readonly agentIds: string[];
  readonly agents: AgentProcess[];
  readonly connection: MeshConnection;
  readonly desired: DesiredStateStore;
  readonly heartbeats: HeartbeatCollector;
  /** Every value each agent's desired state of {@link MODEL} took, oldest first. */
  readonly history: Map<string, DesiredHistoryEntry[]>;
  /** The admin API of a live coordinator. */
  admin(): AdminApi;
  /** (Re)starts the coordinator `id`. */
  startCoordinator(id: string): Promise<StartedCoordinator>;
  dispose(): Promise<void>;
}

/** Starts nats-server, the coordinators and the agents. */
export async function startRolloutMesh(options: RolloutMeshOptions): Promise<RolloutMesh> {
  const nats = await startNatsServer();
  const dir = await mkdtemp(join(tmpdir(), 'im-rollout-e2e-'));
  const configFile = join(dir, 'coordinator.json');
  await writeFile(
    configFile,
    JSON.stringify({
      rolloutTickIntervalMs: options.tickIntervalMs ?? 200,
      rolloutLeaseTtlMs: options.leaseTtlMs ?? 2_000,
      fleetStaleAfterMs: 2_000,
      fleetOfflineAfterMs: 5_000,
      logLevel: 'info',
    }),
  );
  const coordinators = new Map<string, StartedCoordinator>();
  const start = async (id: string): Promise<StartedCoordinator> => {
    const started = await startCoordinator(nats.url, id, [
      '--config',
      configFile,
      '--publisher-key-file',
      join(dir, 'publisher.pem'),
      '--warmup-ms',
      '0',
    ]);
    coordinators.set(id, started);
    return started;
  };
  for (const id of options.coordinators) await start(id);
  const live = (): AdminApi => {
    for (const c of coordinators.values()) {
      if (c.process.child.exitCode === null && c.process.child.signalCode === null)
        return new AdminApi(c.adminUrl);
    }
    throw new Error('no coordinator is running');
  };
  const { publicKey } = (await live().call('GET', '/publisher-key')) as { publicKey: string };
  const connection = await connectMesh(nats.url, { name: 'e2e-rollout' });
  const desired = await DesiredStateStore.open(connection, { create: true });
  const history = await recordDesiredHistory(connection);
  const agentIds = Array.from({ length: options.agents }, (_, i) => `edge-ro-${i}`);
  const heartbeats = collectHeartbeats(connection, agentIds);
  const agents: AgentProcess[] = [];
  const modelDirs: string[] = [];
  for (let i = 0; i < agentIds.length; i += 5) {
    const batch = agentIds.slice(i, i + 5);
    agents.push(
      ...(await Promise.all(
        batch.map(async (id, j) => {
          const modelsDir = await mkdtemp(join(tmpdir(), 'im-rollout-agent-'));
          modelDirs.push(modelsDir);
          const labels = Object.entries(options.labelsOf?.(i + j) ?? {});
          return startAgentProcess({
            id,
            modelsDir,
            natsUrl: nats.url,
            publicKey,
            env: {
              INFERMESH_HEARTBEAT_INTERVAL_MS: '250',
              ...(labels.length > 0
                ? { INFERMESH_LABELS: labels.map(([key, value]) => `${key}=${value}`).join(',') }
                : {}),
            },
          });
        }),
      )),
    );
  }
  return {
    nats,
    coordinators,
    agentIds,
    agents,
    connection,
    desired,
    heartbeats,
    history: history.entries,
    admin: live,
    startCoordinator: start,
    async dispose() {
      heartbeats.stop();
      history.stop();
      await Promise.all(agents.map((a) => a.process.stop()));
      await connection.close();
      await Promise.all([...coordinators.values()].map((c) => c.process.stop()));
      await nats.dispose();
      await Promise.all([dir, ...modelDirs].map((d) => rm(d, { recursive: true, force: true })));
    },
  };
}

/** Records every value of every agent's desired state of {@link MODEL}. */
async function recordDesiredHistory(
  connection: MeshConnection,
): Promise<{ entries: Map<string, DesiredHistoryEntry[]>; stop(): void }> {
  const kv = await new Kvm(connection.nc).open(desiredStateBucket());
  const entries = new Map<string, DesiredHistoryEntry[]>();
  const watch = await kv.watch({ key: `*.${MODEL}`, include: KvWatchInclude.AllHistory });
  void (async () => {
    for await (const entry of watch) {
      const ref = parseDesiredModelKey(entry.key);
      if (!ref) continue;
      const list = entries.get(ref.agentId) ?? [];
      entries.set(ref.agentId, list);
      if (entry.operation !== 'PUT') {
        list.push({ version: null, at: entry.created.getTime() });
        continue;
      }
      const value = desiredModelSchema.parse(entry.json());
      list.push({ version: value.version, setBy: value.setBy, at: entry.created.getTime() });
    }
  })();
  return { entries, stop: () => watch.stop() };
}

/** Every agent serves `version` of {@link MODEL} (per its heartbeats). */
export function waitServing(
  mesh: RolloutMesh,
  agentIds: readonly string[],
  version: string,
  timeoutMs = 20_000,
): Promise<true> {
  return waitUntil(
    () =>
      agentIds.every((id) =>
        mesh.heartbeats
          .latest(id)
          ?.sync?.some((s) => s.name === MODEL && s.servingVersion === version && s.state === 'synced'),
      ) || undefined,
    timeoutMs,
    `${agentIds.length} agents to serve ${MODEL}@${version}`,
  );
}

/** Pushes the first version and gives it to every agent as an earlier rollout would have. */
export async function seedFirstVersion(mesh: RolloutMesh, version: string, bytes: Uint8Array): Promise<void> {
  await mesh.admin().pushVersion(MODEL, version, bytes);
  for (const agentId of mesh.agentIds) {
    await mesh.desired.set(agentId, {
      model: MODEL,
      version,
      source: 'rollout',
      setBy: 'rollout:seed',
      at: Date.now(),
    });
  }
  await waitServing(mesh, mesh.agentIds, version);
}

/** Starts a rollout through the admin API. */
export async function startRollout(mesh: RolloutMesh, request: CreateRolloutRequest): Promise<Rollout> {
  return (await mesh.admin().call('POST', '/rollouts', request)) as Rollout;
}

/** Every target agent of a rollout in rollout order, paging through `GET /rollouts/{id}/agents`. */
export async function rolloutAgents(mesh: RolloutMesh, id: string): Promise<RolloutAgent[]> {
  const agents: RolloutAgent[] = [];
  let cursor: string | undefined;
  do {
    const query = cursor === undefined ? '' : `?cursor=${cursor}`;
    const page = (await mesh.admin().call('GET', `/rollouts/${id}/agents${query}`)) as RolloutAgentPage;
    agents.push(...page.agents);
    cursor = page.nextCursor;
  } while (cursor !== undefined);
  return agents;
}

/** The agent ids of one step of a rollout. */
export async function stepAgents(mesh: RolloutMesh, id: string, step: number): Promise<string[]> {
  return (await rolloutAgents(mesh, id)).filter((a) => a.step === step).map((a) => a.agentId);
}

/** Waits until the rollout satisfies `done` and returns it. */
export function waitRollout(
  mesh: RolloutMesh,
  id: string,
  done: (rollout: Rollout) => boolean,
  what: string,
  timeoutMs = 40_000,
): Promise<Rollout> {
  return waitUntil(
    async () => {
      const rollout = (await mesh.admin().call('GET', `/rollouts/${id}`)) as Rollout;
      return done(rollout) ? rollout : undefined;
    },
    timeoutMs,
    what,
  );
}

/** Traffic to every agent: one lane each sending batches of two rows, until stopped. */
export function startTraffic(mesh: RolloutMesh, pauseMs = 20): { stop(): Promise<void> } {
  let running = true;
  const features = new Float32Array(2 * WIDTH).fill(0.25);
  const body = { inputs: [{ name: 'features', tensor: tensorFromTypedArray('FP32', [2, WIDTH], features) }] };
  const lanes = mesh.agents.map(async (agent) => {
    const target = socketTarget(agent.url);
    while (running) {
      try {
        const response = await infer(target, inferPath(MODEL), body);
        await response.arrayBuffer();
      } catch {
        // an agent restarting: keep going
      }
      await new Promise((resolve) => setTimeout(resolve, pauseMs));
    }
  });
  return {
    async stop() {
      running = false;
      await Promise.all(lanes);
    },
  };
}

/** Runs `infermesh ...args` to its end; resolves with its exit code and output. */
export function runCli(args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI_ENTRY, ...args],
      { cwd: REPO_ROOT, timeout: 60_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/**
 * Secure aggregation in federated runs, end to end with real processes: nats-server, an
 * `infermesh coordinator` and five `infermesh agent` processes, each with its own training data
 * file. A secure FedAvg round must give the same new weights as a plain round of the same clients
 * from the same global weights and seed (within the fixed-point tolerance), and a client killed
 * (SIGKILL) right after it shared its keys must not stop the round: its masks are recovered from
 * the survivors' shares, and the result equals a plain round of the survivors. A coordinator killed
 * mid key exchange is replaced and the round runs again as a new attempt. Runs a secure round
 * cannot serve are refused when they start.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decode, flSecureToAggregatorSubject, flSecureUpMessageSchema } from '@infermesh/protocols';
import type { FlRunDetail } from '@infermesh/protocols';
import { readFloatInitializers } from '@infermesh/onnx-tools';
import { E2E_ADMIN_TOKEN } from '../harness/index.js';
import { waitUntil } from '../harness/registry.js';
import { startFlAgents } from './federated-agents.js';
import type { FlAgents } from './federated-agents.js';
import type { FlData, FlMesh } from './federated-support.js';
import {
  FL_BASE_VERSION,
  FL_MODEL,
  asLabelled,
  loadFlData,
  startFlMesh,
  waitForRunEnd,
} from './federated-support.js';

const AGENTS = 5;
const TRAINABLE = ['dense1.weight', 'dense1.bias', 'dense2.weight', 'dense2.bias'];
const HYPERPARAMETERS = { localEpochs: 1, batchSize: 32, learningRate: 1 };
/** Secure and plain weights of the same round agree this closely (12 fractional bits, / examples). */
const WEIGHT_TOLERANCE = 1e-4;

let data: FlData;
let mesh: FlMesh;
let fleet: FlAgents;

/** Starts a one-round run of every agent and waits for its end. */
async function runOneRound(options: {
  secure: boolean;
  seed: number;
  resultVersion: string;
  minClients: number;
  roundTimeoutMs: number;
}): Promise<FlRunDetail> {
  const started = (await mesh.admin.call('POST', '/fl/runs', {
    model: FL_MODEL,
    baseVersion: FL_BASE_VERSION,
    rounds: 1,
    clientsPerRound: AGENTS,
    minClients: options.minClients,
    roundTimeoutMs: options.roundTimeoutMs,
    strategy: 'fedavg',
    hyperparameters: HYPERPARAMETERS,
    evaluationExamples: asLabelled(data.heldout),
    resultVersion: options.resultVersion,
    secure: options.secure,
    seed: options.seed,
  })) as FlRunDetail;
  return waitForRunEnd(() => mesh.admin, started.id, 4 * options.roundTimeoutMs);
}

/** The trainable tensors of a registered version, from the registry's artifact. */
async function registeredWeights(version: string): Promise<Float32Array[]> {
  const manifest = (await mesh.admin.call('GET', `/models/${FL_MODEL}/versions/${version}`)) as {
    variants: { cloud: { sha256: string } };
  };
  const res = await fetch(`${mesh.admin.url}/api/v1/artifacts/${manifest.variants.cloud.sha256}`, {
    headers: { authorization: `Bearer ${E2E_ADMIN_TOKEN}` },
  });
  expect(res.status).toBe(200);
  return readFloatInitializers(new Uint8Array(await res.arrayBuffer()), TRAINABLE).map((t) => t.data);
}

function maxGap(a: readonly Float32Array[], b: readonly Float32Array[]): number {
  let gap = 0;
  a.forEach((layer, l) => layer.forEach((v, k) => (gap = Math.max(gap, Math.abs(v - b[l]![k]!)))));
  return gap;
}

beforeAll(async () => {
  data = await loadFlData();
  mesh = await startFlMesh(data.baseBytes);
  // Five agents, each with two shards of different corpus folders.
  const shards = Array.from({ length: AGENTS }, (_, i) => [...data.shards[i]!, ...data.shards[i + AGENTS]!]);
  fleet = await startFlAgents(mesh, shards.map(asLabelled), 'fl-secure');
  await fleet.ready(FL_BASE_VERSION);
}, 90_000);

afterAll(async () => {
  await fleet?.dispose();
  await mesh?.dispose();
});

describe('secure aggregation in federated runs', () => {
  it('refuses runs secure aggregation cannot serve with INVALID_INPUT', async () => {
    const body = {
      model: FL_MODEL,
      rounds: 1,
      clientsPerRound: AGENTS,
      evaluationExamples: asLabelled(data.heldout.slice(0, 5)),
      secure: true,
    };
    for (const extra of [
      { strategy: 'krum', strategyOptions: { f: 1 } },
      { privacy: { mode: 'server', clipNorm: 1, noiseMultiplier: 1 } },
      { clientsPerRound: 1 },
    ]) {
      await expect(mesh.admin.call('POST', '/fl/runs', { ...body, ...extra })).rejects.toThrow(
        /: 400 .*INVALID_INPUT/,
      );
    }
  });

  it('a secure FedAvg round gives the plain weighted mean of the same clients', async () => {
    const secure = await runOneRound({
      secure: true,
      seed: 11,
      resultVersion: 'secure-a',
      minClients: AGENTS,
      roundTimeoutMs: 30_000,
    });
    expect(secure.state, secure.error).toBe('succeeded');
    const round = secure.history[0]!;
    expect(round.received).toHaveLength(AGENTS);
    expect(round.secure).toEqual({ threshold: 3, roster: AGENTS, shared: AGENTS, recovered: [] });

    const plain = await runOneRound({
      secure: false,
      seed: 11,
      resultVersion: 'plain-a',
      minClients: AGENTS,
      roundTimeoutMs: 30_000,
    });
    expect(plain.state, plain.error).toBe('succeeded');
    expect(plain.history[0]!.attempts).toBe(1);
    expect(round.attempts).toBe(1);

    const base = readFloatInitializers(data.baseBytes, TRAINABLE).map((t) => t.data);
    const [secureWeights, plainWeights] = await Promise.all([
      registeredWeights('secure-a'),
      registeredWeights('plain-a'),
    ]);
    const moved = maxGap(plainWeights, base);
    const gap = maxGap(secureWeights, plainWeights);
    console.log(
      `secure vs plain round: largest weight change ${moved.toExponential(3)}, secure-plain gap ${gap.toExponential(3)}, ` +
        `held-out accuracy base ${secure.baseline?.accuracy.toFixed(4)} -> secure ${round.evaluation?.accuracy.toFixed(4)}, plain ${plain.history[0]!.evaluation?.accuracy.toFixed(4)}`,
    );
    expect(moved).toBeGreaterThan(100 * WEIGHT_TOLERANCE);
    expect(gap).toBeLessThan(WEIGHT_TOLERANCE);
    expect(round.evaluation!.accuracy).toBeCloseTo(plain.history[0]!.evaluation!.accuracy, 2);
  });

  it('recovers a client killed after sharing its keys: the round equals the plain mean of the survivors', async () => {
    // Kill the first agent whose shares go by: the inboxes leave only once every client shared,
    // so it cannot have masked and published yet.
    const subject = flSecureToAggregatorSubject('ROUND').replace('.ROUND.', '.*.');
    let victim: string | undefined;
    const watch = mesh.connection.nc.subscribe(subject, {
      callback: (_err, msg) => {
        const message = decode(flSecureUpMessageSchema, msg.data);
        if (message.phase !== 'shares' || victim !== undefined) return;
        victim = message.agentId;
        void fleet.agents[fleet.ids.indexOf(victim)]!.process.kill();
      },
    });
    await mesh.connection.nc.flush();
    let secure: FlRunDetail;
    try {
      secure = await runOneRound({
        secure: true,
        seed: 13,
        resultVersion: 'secure-b',
        minClients: 3,
        roundTimeoutMs: 15_000,
      });
    } finally {
      watch.unsubscribe();
    }
    expect(victim).toBeDefined();
    expect(secure.state, secure.error).toBe('succeeded');
    const round = secure.history[0]!;
    const survivors = fleet.ids.filter((id) => id !== victim);
    expect(round.secure).toEqual({ threshold: 3, roster: AGENTS, shared: AGENTS, recovered: [victim] });
    expect(round.received).toEqual(survivors);
    expect(round.dropped).toEqual([victim]);

    // The same round in the clear: the dead agent is still selected but cannot accept.
    const plain = await runOneRound({
      secure: false,
      seed: 13,
      resultVersion: 'plain-b',
      minClients: AGENTS - 1,
      roundTimeoutMs: 15_000,
    });
    expect(plain.state, plain.error).toBe('succeeded');
    expect(plain.history[0]!.received).toEqual(survivors);
    const gap = maxGap(await registeredWeights('secure-b'), await registeredWeights('plain-b'));
    console.log(`secure round with ${victim} killed after sharing: secure-plain gap ${gap.toExponential(3)}`);
    expect(gap).toBeLessThan(WEIGHT_TOLERANCE);
  });
  it('runs a secure round again as a new attempt when its coordinator is killed mid key exchange', async () => {
    const subject = flSecureToAggregatorSubject('ROUND').replace('.ROUND.', '.*.');
    let killed: Promise<void> | undefined;
    const watch = mesh.connection.nc.subscribe(subject, {
      callback: (_err, msg) => {
        if (killed || decode(flSecureUpMessageSchema, msg.data).phase !== 'shares') return;
        killed = mesh.coordinator.process.kill();
      },
    });
    await mesh.connection.nc.flush();
    const roundTimeoutMs = 10_000;
    let runId: string;
    try {
      const started = (await mesh.admin.call('POST', '/fl/runs', {
        model: FL_MODEL,
        baseVersion: FL_BASE_VERSION,
        rounds: 1,
        clientsPerRound: AGENTS,
        minClients: 3,
        roundTimeoutMs,
        strategy: 'fedavg',
        hyperparameters: HYPERPARAMETERS,
        evaluationExamples: asLabelled(data.heldout),
        resultVersion: 'secure-c',
        secure: true,
        seed: 17,
      })) as FlRunDetail;
      runId = started.id;
      await waitUntil(() => killed !== undefined, roundTimeoutMs, 'the first shares of the round', 20);
      await killed;
    } finally {
      watch.unsubscribe();
    }
    await mesh.restartCoordinator();
    const run = await waitForRunEnd(() => mesh.admin, runId, 4 * roundTimeoutMs);
    expect(run.state, run.error).toBe('succeeded');
    const round = run.history[0]!;
    // The interrupted attempt's key exchange died with its coordinator: the round ran again.
    expect(round.attempts).toBe(2);
    expect(round.roundId).toBe(`${runId}-r1-a2`);
    expect(round.secure?.recovered).toEqual([]);
    expect(round.received.length).toBeGreaterThanOrEqual(3);
  });
});

/**
 * Client-side differential privacy end to end with real `infermesh agent` processes: a run with
 * `privacy: { mode: 'client', clipNorm, noiseMultiplier }` reaches three agents, whose round
 * clients clip their deltas to the clip norm and add Gaussian noise before publishing. The updates
 * the coordinator aggregated are read back from the durable updates stream: each one's norm is
 * within the clip norm plus the noise's high-probability bound (and at least the clip norm less
 * that bound, as the agents' raw deltas are far larger: each agent's status says it clipped), and
 * the run completes. A protocol client that takes part without clipping has its updates refused.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jetstream } from '@nats-io/jetstream';
import type { JsMsg } from '@nats-io/jetstream';
import { decode, flUpdateSchema, flUpdateSubject, updatesStream } from '@infermesh/protocols';
import type { FlRunDetail, FlUpdate } from '@infermesh/protocols';
import { startFlAgents } from './federated-agents.js';
import type { FlAgents } from './federated-agents.js';
import type { FlData, FlMesh } from './federated-support.js';
import {
  FL_BASE_VERSION,
  FL_MODEL,
  ProtocolClient,
  asLabelled,
  loadFlData,
  startFlMesh,
  waitForRunEnd,
} from './federated-support.js';

const AGENTS = 3;
const CLIP_NORM = 0.05;
const NOISE_MULTIPLIER = 0.001;
/** Standard deviations above √d a Gaussian vector's norm stays below, but with probability e^(-t²/2). */
const NOISE_TAIL = 8;

let data: FlData;
let mesh: FlMesh;
let fleet: FlAgents;
/** Trains and publishes its raw delta, ignoring the run's privacy settings. */
let unclipped: ProtocolClient | undefined;
const UNCLIPPED_ID = 'fl-dp-unclipped';

beforeAll(async () => {
  data = await loadFlData();
  mesh = await startFlMesh(data.baseBytes);
  fleet = await startFlAgents(mesh, data.shards.slice(0, AGENTS).map(asLabelled), 'fl-dp-agent');
  await fleet.ready(FL_BASE_VERSION);
  unclipped = new ProtocolClient({
    agentId: UNCLIPPED_ID,
    connection: mesh.connection,
    baseBytes: data.baseBytes,
    examples: data.shards[AGENTS]!,
    behaviour: 'honest',
  });
  await new Promise((resolve) => setTimeout(resolve, 1_000)); // its heartbeat reaches the fleet registry
}, 90_000);

afterAll(async () => {
  unclipped?.stop();
  await fleet?.dispose();
  await mesh?.dispose();
});

/** Every update stored for a round, as the coordinator read them. */
async function roundUpdates(roundId: string): Promise<FlUpdate[]> {
  const consumer = await jetstream(mesh.connection.nc).consumers.get(updatesStream(), {
    filter_subjects: flUpdateSubject(roundId),
  });
  const updates: FlUpdate[] = [];
  const batch = await consumer.fetch({ max_messages: 64, expires: 1_000 });
  for await (const msg of batch as AsyncIterable<JsMsg>) updates.push(decode(flUpdateSchema, msg.data));
  return updates;
}

/** L2 norm and element count of an update's delta. */
function deltaNorm(update: FlUpdate): { norm: number; size: number } {
  let sum = 0;
  let size = 0;
  for (const tensor of update.delta ?? []) {
    const view = new DataView(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength);
    for (let i = 0; i < tensor.data.byteLength; i += 4) {
      const value = view.getFloat32(i, true);
      sum += value * value;
      size += 1;
    }
  }
  return { norm: Math.sqrt(sum), size };
}

describe('client-side differential privacy with agent processes', () => {
  it('aggregates only clipped, noised updates and completes the run', async () => {
    const started = (await mesh.admin.call('POST', '/fl/runs', {
      model: FL_MODEL,
      rounds: 2,
      clientsPerRound: AGENTS + 1,
      minClients: AGENTS,
      roundTimeoutMs: 30_000,
      hyperparameters: { localEpochs: 1, batchSize: 32, learningRate: 1 },
      privacy: { mode: 'client', clipNorm: CLIP_NORM, noiseMultiplier: NOISE_MULTIPLIER },
      evaluationExamples: asLabelled(data.heldout),
      seed: 5,
    })) as FlRunDetail;
    const run = await waitForRunEnd(() => mesh.admin, started.id, 90_000);
    expect(run.state, run.error).toBe('succeeded');
    expect(run.history).toHaveLength(2);
    expect(run.registeredVersion).toBe(run.resultVersion);

    for (const round of run.history) {
      expect(round.accepted).toContain(UNCLIPPED_ID);
      expect(round.received).toEqual([...fleet.ids].sort());
      expect(round.rejected).toEqual([
        { agentId: UNCLIPPED_ID, reason: expect.stringMatching(/not clipped/) },
      ]);
      const updates = (await roundUpdates(round.roundId)).filter((u) => u.agentId !== UNCLIPPED_ID);
      expect(updates.map((u) => u.agentId).sort()).toEqual(round.received);
      let largest = 0;
      for (const update of updates) {
        const { norm, size } = deltaNorm(update);
        const noiseBound = NOISE_MULTIPLIER * CLIP_NORM * (Math.sqrt(size) + NOISE_TAIL);
        expect(norm, update.agentId).toBeLessThanOrEqual(CLIP_NORM + noiseBound);
        expect(norm, update.agentId).toBeGreaterThanOrEqual(CLIP_NORM - noiseBound);
        largest = Math.max(largest, norm);
      }
      // The global model moved by a weighted mean of these deltas: no further than the largest.
      expect(round.updateNorm).toBeLessThanOrEqual(largest + 1e-6);
    }
    // Each agent's own account of its last round: published, and its raw delta was clipped.
    for (const agent of fleet.agents) {
      const body = (await (await fetch(`${agent.url}/v1/status`)).json()) as {
        federated?: { lastRound?: { runId: string; round: number; state: string; clipped?: boolean } };
      };
      expect(body.federated?.lastRound).toMatchObject({
        runId: run.id,
        round: 2,
        state: 'published',
        clipped: true,
      });
    }
  }, 150_000);
});

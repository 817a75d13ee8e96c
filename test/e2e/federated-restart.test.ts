/**
 * A coordinator SIGKILLed in the middle of a federated round: the clients publish their updates
 * while no coordinator runs, a restarted coordinator takes the run's lease over, re-reads the
 * round's updates from the durable stream and finishes the run — no accepted update is lost.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FlRunDetail } from '@infermesh/protocols';
import type { FlData, FlMesh } from './federated-support.js';
import {
  FL_MODEL,
  ProtocolClient,
  asLabelled,
  loadFlData,
  startFlMesh,
  waitForRun,
  waitForRunEnd,
} from './federated-support.js';

let data: FlData;
let mesh: FlMesh;
const clients: ProtocolClient[] = [];

beforeAll(async () => {
  data = await loadFlData();
  mesh = await startFlMesh(data.baseBytes);
}, 60_000);

afterAll(async () => {
  clients.forEach((c) => c.stop());
  await mesh?.dispose();
});

describe('federated run across a coordinator crash', () => {
  it('counts every update published before the deadline after a SIGKILL mid-round', async () => {
    let releaseRound2: () => void = () => undefined;
    const round2Gate = new Promise<void>((resolve) => (releaseRound2 = resolve));
    data.shards.forEach((examples, i) =>
      clients.push(
        new ProtocolClient({
          agentId: `fl-client-${i}`,
          connection: mesh.connection,
          baseBytes: data.baseBytes,
          examples,
          behaviour: 'honest',
          gate: (task) => (task.round === 2 ? round2Gate : Promise.resolve()),
        }),
      ),
    );
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const started = (await mesh.admin.call('POST', '/fl/runs', {
      model: FL_MODEL,
      rounds: 3,
      clientsPerRound: 10,
      minClients: 5,
      roundTimeoutMs: 15_000,
      hyperparameters: { localEpochs: 1, batchSize: 32, learningRate: 0.003 },
      evaluationExamples: asLabelled(data.heldout),
      seed: 3,
    })) as FlRunDetail;
    const collecting = await waitForRun(
      () => mesh.admin,
      started.id,
      (r) => r.current?.round === 2 && r.current.phase === 'collecting',
      30_000,
    );
    expect(collecting.current?.accepted).toHaveLength(10);
    await mesh.coordinator.process.kill();
    releaseRound2(); // updates land in the stream while no coordinator runs
    const roundId = collecting.current!.roundId;
    const until = Date.now() + 5_000;
    while (clients.some((c) => !c.published.has(roundId)) && Date.now() < until) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await mesh.restartCoordinator();
    const run = await waitForRunEnd(() => mesh.admin, started.id, 60_000);
    expect(run.state, run.error).toBe('succeeded');
    const round2 = run.history[1]!;
    expect(round2.roundId).toBe(roundId);
    const publishedInTime = clients.filter(
      (c) => (c.published.get(roundId) ?? Infinity) <= collecting.current!.deadlineAt,
    ).length;
    expect(publishedInTime).toBe(10);
    expect(round2.received).toHaveLength(publishedInTime);
    expect(round2.dropped).toEqual([]);
    expect(run.history).toHaveLength(3);
    expect(run.registeredVersion).toBe('1-fl-1');
  }, 90_000);
});

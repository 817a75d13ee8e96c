/**
 * Federated runs across a nats-server restart (SIGTERM, then the same port and store): the
 * coordinator process and the protocol clients keep running and reconnect. A restart while the
 * round collects, and one that spans the round's deadline, must both leave the run to complete:
 * the coordinator retries its reads and writes with back-off, reads the round's updates again from
 * the durable stream after the restart, and counts every accepted update the stream stored before
 * the deadline — the round is not retried as a new attempt and no update is lost. And a
 * coordinator SIGKILLed mid-run hands over server-side DP with its adaptive clip norm intact.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FlRoundTask, FlRunDetail } from '@infermesh/protocols';
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

const CLIENTS = 5;
const ROUND_TIMEOUT_MS = 10_000;
/** How long nats-server stays down. */
const OUTAGE_MS = 2_500;

let data: FlData;
let mesh: FlMesh;
const clients: ProtocolClient[] = [];
/** Holds a client's publishing for a task until it resolves; set per test. */
let gate: (agentId: string, task: FlRoundTask) => Promise<void> = () => Promise.resolve();

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

beforeAll(async () => {
  data = await loadFlData();
  mesh = await startFlMesh(data.baseBytes);
  for (let i = 0; i < CLIENTS; i += 1) {
    const agentId = `fl-fault-${i}`;
    clients.push(
      new ProtocolClient({
        agentId,
        connection: mesh.connection,
        baseBytes: data.baseBytes,
        examples: data.shards[i]!,
        behaviour: 'honest',
        gate: (task) => gate(agentId, task),
      }),
    );
  }
  await sleep(1_500); // heartbeats reach the fleet registry
}, 60_000);

afterAll(async () => {
  clients.forEach((c) => c.stop());
  await mesh?.dispose();
});

/** Starts a 3-round FedAvg run over every client. */
async function startRun(seed: number): Promise<FlRunDetail> {
  return (await mesh.admin.call('POST', '/fl/runs', {
    model: FL_MODEL,
    rounds: 3,
    clientsPerRound: CLIENTS,
    minClients: 3,
    roundTimeoutMs: ROUND_TIMEOUT_MS,
    hyperparameters: { localEpochs: 1, batchSize: 32, learningRate: 0.003 },
    evaluationExamples: asLabelled(data.heldout),
    seed,
  })) as FlRunDetail;
}

/** Waits for round 2 of the run to collect updates; returns its progress. */
async function round2Collecting(runId: string): Promise<NonNullable<FlRunDetail['current']>> {
  const run = await waitForRun(
    () => mesh.admin,
    runId,
    (r) => r.current?.round === 2 && r.current.phase === 'collecting',
    40_000,
  );
  expect(run.current!.accepted).toHaveLength(CLIENTS);
  return run.current!;
}

/** Ids of the clients whose round update the stream acknowledged by the deadline. */
const publishedInTime = (roundId: string, deadlineAt: number): string[] =>
  clients.flatMap((c, i) => ((c.published.get(roundId) ?? Infinity) <= deadlineAt ? [`fl-fault-${i}`] : []));

describe('federated run across a nats-server restart', () => {
  it('completes when NATS restarts while a round collects, counting every update', async () => {
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => (release = resolve));
    gate = (_agentId, task) => (task.round === 2 ? held : Promise.resolve());
    const started = await startRun(11);
    const progress = await round2Collecting(started.id);

    await mesh.nats.stop();
    release(); // clients publish while the server is down: they retry until acknowledged
    await sleep(OUTAGE_MS);
    await mesh.nats.restart();

    const run = await waitForRunEnd(() => mesh.admin, started.id, 60_000);
    expect(run.state, run.error).toBe('succeeded');
    expect(run.history).toHaveLength(3);
    const round2 = run.history[1]!;
    expect(round2.roundId).toBe(progress.roundId); // the same attempt, not a retry
    expect(round2.attempts).toBe(1);
    expect(publishedInTime(progress.roundId, progress.deadlineAt)).toHaveLength(CLIENTS);
    expect(round2.received).toHaveLength(CLIENTS);
    expect(round2.dropped).toEqual([]);
    expect(run.registeredVersion).toBe(run.resultVersion);
  }, 120_000);

  it('counts the updates stored before the deadline when NATS is down at the deadline', async () => {
    // One client never publishes in round 2, so the round waits for its deadline.
    const straggler = 'fl-fault-4';
    gate = (agentId, task) =>
      task.round === 2 && agentId === straggler ? new Promise(() => undefined) : Promise.resolve();
    const started = await startRun(12);
    const progress = await round2Collecting(started.id);
    const onTime = clients.filter((_, i) => `fl-fault-${i}` !== straggler);
    const until = progress.deadlineAt - 2_000;
    while (onTime.some((c) => !c.published.has(progress.roundId)) && Date.now() < until) await sleep(100);
    expect(onTime.every((c) => c.published.has(progress.roundId))).toBe(true);

    // Down from before the deadline to after it.
    await sleep(Math.max(0, progress.deadlineAt - 1_000 - Date.now()));
    await mesh.nats.stop();
    await sleep(OUTAGE_MS);
    await mesh.nats.restart();
    expect(Date.now()).toBeGreaterThan(progress.deadlineAt);

    const run = await waitForRunEnd(() => mesh.admin, started.id, 60_000);
    expect(run.state, run.error).toBe('succeeded');
    const round2 = run.history[1]!;
    expect(round2.roundId).toBe(progress.roundId);
    expect(round2.received).toEqual(publishedInTime(progress.roundId, progress.deadlineAt).sort());
    expect(round2.received).toHaveLength(CLIENTS - 1);
    expect(round2.dropped).toEqual([straggler]);
    expect(run.history).toHaveLength(3);
  }, 120_000);

  it('keeps the adaptive DP clip norm when a restarted coordinator takes the run over', async () => {
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => (release = resolve));
    gate = (_agentId, task) => (task.round === 2 ? held : Promise.resolve());
    const started = (await mesh.admin.call('POST', '/fl/runs', {
      model: FL_MODEL,
      rounds: 3,
      clientsPerRound: CLIENTS,
      minClients: 3,
      roundTimeoutMs: ROUND_TIMEOUT_MS,
      hyperparameters: { localEpochs: 1, batchSize: 32, learningRate: 0.003 },
      // σ_b = 5 clients / 20 = 0.25 must exceed z / 2.
      privacy: { mode: 'server', clipNorm: 0.5, noiseMultiplier: 0.1, targetQuantile: 0.5 },
      evaluationExamples: asLabelled(data.heldout),
      seed: 13,
    })) as FlRunDetail;
    const progress = await round2Collecting(started.id);
    await mesh.coordinator.process.kill();
    release();
    await mesh.restartCoordinator();

    const run = await waitForRunEnd(() => mesh.admin, started.id, 60_000);
    expect(run.state, run.error).toBe('succeeded');
    const [round1, round2, round3] = run.history;
    expect(round2!.roundId).toBe(progress.roundId);
    expect(round1!.privacy!.clipNorm).toBe(0.5);
    expect(round1!.privacy!.nextClipNorm).not.toBe(0.5); // C adapted after round 1...
    expect(round2!.privacy!.clipNorm).toBe(round1!.privacy!.nextClipNorm); // ...and survived the takeover
    expect(round3!.privacy!.clipNorm).toBe(round2!.privacy!.nextClipNorm);
    expect(round2!.privacy!.noiseStddev).toBeGreaterThan(0);
  }, 120_000);
});

/**
 * `infermesh fl stop` on a running federated run, through the CLI against a coordinator process:
 * the run ends in `stopped` while its second round still collects (that round's updates are
 * discarded), registering no version — or, with `--register`, the weights of its last closed
 * round as the run's result version. Stopping a run that has ended is a CONFLICT.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FlRunDetail, ModelManifest } from '@infermesh/protocols';
import { E2E_ADMIN_TOKEN } from '../harness/index.js';
import type { FlData, FlMesh } from './federated-support.js';
import {
  FL_MODEL,
  ProtocolClient,
  asLabelled,
  loadFlData,
  startFlMesh,
  waitForRun,
} from './federated-support.js';
import { runCli } from './rollout-support.js';

const CLIENTS = 3;

let data: FlData;
let mesh: FlMesh;
const clients: ProtocolClient[] = [];

beforeAll(async () => {
  data = await loadFlData();
  mesh = await startFlMesh(data.baseBytes);
  for (let i = 0; i < CLIENTS; i += 1) {
    clients.push(
      new ProtocolClient({
        agentId: `fl-stop-${i}`,
        connection: mesh.connection,
        baseBytes: data.baseBytes,
        examples: data.shards[i]!,
        behaviour: 'honest',
        // Round 2 never gets its updates: the run is stopped while it collects.
        gate: (task) => (task.round >= 2 ? new Promise(() => undefined) : Promise.resolve()),
      }),
    );
  }
  await new Promise((resolve) => setTimeout(resolve, 1_500)); // heartbeats reach the fleet registry
}, 60_000);

afterAll(async () => {
  clients.forEach((c) => c.stop());
  await mesh?.dispose();
});

const adminFlags = (): string[] => ['--url', mesh.admin.url, '--token', E2E_ADMIN_TOKEN];

/** Starts a 4-round run and waits until round 1 closed and round 2 collects. */
async function runInRound2(seed: number): Promise<FlRunDetail> {
  const started = (await mesh.admin.call('POST', '/fl/runs', {
    model: FL_MODEL,
    rounds: 4,
    clientsPerRound: CLIENTS,
    minClients: CLIENTS,
    roundTimeoutMs: 60_000,
    hyperparameters: { localEpochs: 1, batchSize: 32, learningRate: 0.003 },
    evaluationExamples: asLabelled(data.heldout),
    seed,
  })) as FlRunDetail;
  return waitForRun(
    () => mesh.admin,
    started.id,
    (r) => r.history.length === 1 && r.current?.round === 2 && r.current.phase === 'collecting',
    40_000,
  );
}

/** The registry's manifest of a version, or undefined when it has none. */
async function manifestOf(version: string): Promise<ModelManifest | undefined> {
  try {
    return (await mesh.admin.call('GET', `/models/${FL_MODEL}/versions/${version}`)) as ModelManifest;
  } catch (err) {
    expect((err as Error).message).toMatch(/ 404 /);
    return undefined;
  }
}

describe('infermesh fl stop', () => {
  it('stops a running run mid-round and registers no version', async () => {
    const running = await runInRound2(21);
    const stop = await runCli(['fl', 'stop', running.id, ...adminFlags()]);
    expect(stop.code, stop.stderr).toBe(0);
    expect(stop.stdout).toBe(`${running.id}: stopping\n`);

    const run = await waitForRun(
      () => mesh.admin,
      running.id,
      (r) => r.state !== 'running' && r.state !== 'stopping',
      20_000,
    );
    expect(run.state).toBe('stopped');
    expect(run.history).toHaveLength(1);
    expect(run.current).toBeUndefined();
    expect(run.registeredVersion).toBeUndefined();
    expect(run.finishedAt).toBeGreaterThan(running.updatedAt);
    expect(await manifestOf(run.resultVersion)).toBeUndefined();

    const status = await runCli(['fl', 'status', running.id, '--json', ...adminFlags()]);
    expect(status.code, status.stderr).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ state: 'stopped', history: [{ round: 1 }] });
    // Each closed round is also served on its own; an unclosed one is NOT_FOUND.
    expect(await mesh.admin.call('GET', `/fl/runs/${running.id}/rounds/1`)).toEqual(run.history[0]);
    await expect(mesh.admin.call('GET', `/fl/runs/${running.id}/rounds/2`)).rejects.toThrow(/404/);

    // An ended run cannot be stopped again.
    const again = await runCli(['fl', 'stop', running.id, ...adminFlags()]);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toMatch(/CONFLICT|has ended/);
  }, 90_000);

  it('registers the last closed round with --register', async () => {
    const running = await runInRound2(22);
    const stop = await runCli(['fl', 'stop', running.id, '--register', ...adminFlags()]);
    expect(stop.code, stop.stderr).toBe(0);
    const run = await waitForRun(
      () => mesh.admin,
      running.id,
      (r) => r.state !== 'running' && r.state !== 'stopping',
      20_000,
    );
    expect(run.state).toBe('stopped');
    expect(run.history).toHaveLength(1);
    expect(run.registeredVersion).toBe(run.resultVersion);
    const manifest = await manifestOf(run.resultVersion);
    expect(manifest?.createdBy).toBe(`fl:${run.id}`);
  }, 90_000);
});

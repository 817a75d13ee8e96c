/**
 * Federated training end to end with real processes: nats-server, an `infermesh coordinator` and
 * ten `infermesh agent` processes, each holding one non-IID shard of the spam corpus (two per
 * corpus folder, mostly one label each) as its local training data file, with the deliberately
 * weak base version pinned and synced. The operator's `infermesh fl start` drives ten FedAvg rounds
 * and follows them to the end; the version the run registers is fetched from the registry and
 * evaluated on the held-out split with ONNX Runtime. Then one agent is replaced by a poisoning
 * protocol client: trimmed mean stays accurate while FedAvg degrades.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { flRunDetailSchema } from '@infermesh/protocols';
import type { FlRunDetail } from '@infermesh/protocols';
import { evaluateSpamModel } from '@infermesh/demo-models';
import { E2E_ADMIN_TOKEN, startCli } from '../harness/index.js';
import { sha256Hex } from '../harness/registry.js';
import { startFlAgents, writeExamplesFile } from './federated-agents.js';
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
import { modelStatus } from './sync-support.js';
import { runCli } from './rollout-support.js';

/** Local SGD settings of the agents' trainer (plain SGD: a large rate suits it). */
const HYPERPARAMETERS = { localEpochs: 1, batchSize: 32, learningRate: 1 };
const ROUND_TIMEOUT_MS = 30_000;

let data: FlData;
let mesh: FlMesh;
let fleet: FlAgents;
let heldoutFile: string;
let baseAccuracy = 0;
let poisoner: ProtocolClient | undefined;

const adminFlags = (): string[] => ['--url', mesh.admin.url, '--token', E2E_ADMIN_TOKEN];

/** Downloads a registered version's cloud variant and measures its held-out accuracy. */
async function registeredAccuracy(version: string): Promise<number> {
  const manifest = (await mesh.admin.call('GET', `/models/${FL_MODEL}/versions/${version}`)) as {
    variants: { cloud: { sha256: string } };
  };
  const res = await fetch(`${mesh.admin.url}/api/v1/artifacts/${manifest.variants.cloud.sha256}`, {
    headers: { authorization: `Bearer ${E2E_ADMIN_TOKEN}` },
  });
  const bytes = new Uint8Array(await res.arrayBuffer());
  expect(sha256Hex(bytes)).toBe(manifest.variants.cloud.sha256);
  return (await evaluateSpamModel(bytes, data.heldout)).accuracy;
}

/** A run through the admin API, from the base version, waited for to its end. */
async function runTraining(
  strategy: string,
  strategyOptions: Record<string, number>,
  resultVersion: string,
  rounds: number,
): Promise<FlRunDetail> {
  const started = (await mesh.admin.call('POST', '/fl/runs', {
    model: FL_MODEL,
    baseVersion: FL_BASE_VERSION,
    rounds,
    // Every eligible client: the stopped agent may still count as online for a while.
    clientsPerRound: fleet.ids.length + 1,
    minClients: fleet.ids.length,
    roundTimeoutMs: ROUND_TIMEOUT_MS,
    strategy,
    strategyOptions,
    hyperparameters: HYPERPARAMETERS,
    evaluationExamples: asLabelled(data.heldout),
    resultVersion,
    seed: 7,
  })) as FlRunDetail;
  return waitForRunEnd(() => mesh.admin, started.id, rounds * ROUND_TIMEOUT_MS);
}

beforeAll(async () => {
  data = await loadFlData();
  mesh = await startFlMesh(data.baseBytes);
  fleet = await startFlAgents(mesh, data.shards.map(asLabelled));
  await fleet.ready(FL_BASE_VERSION);
  heldoutFile = join(mesh.dir, 'heldout.jsonl');
  await writeExamplesFile(heldoutFile, asLabelled(data.heldout));
  baseAccuracy = (await evaluateSpamModel(data.baseBytes, data.heldout)).accuracy;
}, 90_000);

afterAll(async () => {
  poisoner?.stop();
  await fleet?.dispose();
  await mesh?.dispose();
});

describe('federated rounds with agent processes', () => {
  it('trains the weak spam model with FedAvg across ten agents into a clearly better version (fl CLI)', async () => {
    const cli = await startCli([
      'fl',
      'start',
      ...adminFlags(),
      '--model',
      FL_MODEL,
      '--rounds',
      '10',
      '--clients-per-round',
      '10',
      '--min-clients',
      '10',
      '--round-timeout',
      `${ROUND_TIMEOUT_MS / 1000}s`,
      '--strategy',
      'fedavg',
      '--eval-data',
      heldoutFile,
      '--local-epochs',
      String(HYPERPARAMETERS.localEpochs),
      '--batch-size',
      String(HYPERPARAMETERS.batchSize),
      '--learning-rate',
      String(HYPERPARAMETERS.learningRate),
      '--result-version',
      '1-fedavg',
      '--seed',
      '7',
    ]);
    const code = await cli.exited;
    const output = cli.output();
    expect(code, output).toBe(0);
    const runId = /^started (\S+):/m.exec(output)?.[1];
    expect(runId, output).toBeDefined();
    // Not a terminal: one progress line per change, ending with the registered version.
    const progress = new Set([...output.matchAll(/ running \| round (\d+)\/10 /g)].map((m) => m[1]));
    expect(progress.size, output).toBeGreaterThanOrEqual(3);
    expect(output).toMatch(/succeeded \| round 10\/10/);
    expect(output).toMatch(/registered spam@1-fedavg/);

    const status = await runCli(['fl', 'status', runId!, '--json', ...adminFlags()]);
    expect(status.code, status.stderr).toBe(0);
    const run = flRunDetailSchema.parse(JSON.parse(status.stdout));
    expect(run.state, run.error).toBe('succeeded');
    expect(run.history).toHaveLength(10);
    for (const round of run.history) expect(round.received).toEqual([...fleet.ids].sort());
    expect(run.registeredVersion).toBe('1-fedavg');
    const list = await runCli(['fl', 'list', ...adminFlags()]);
    expect(list.stdout).toMatch(
      new RegExp(`${runId!}\\s+spam@1\\s+fedavg\\s+succeeded\\s+10/10\\s+-> 1-fedavg`),
    );

    // Every agent trained the last round itself and published its update.
    for (const agent of fleet.agents) {
      const body = (await (await fetch(`${agent.url}/v1/status`)).json()) as {
        federated?: { lastRound?: { runId: string; round: number; state: string; examples?: number } };
      };
      expect(body.federated?.lastRound).toMatchObject({ runId, round: 10, state: 'published' });
    }
    expect((await modelStatus(fleet.agents[0]!.url, FL_MODEL))?.servingVersion).toBe(FL_BASE_VERSION);

    const accuracy = await registeredAccuracy('1-fedavg');
    console.log(
      `fedavg, 10 agents: base ${baseAccuracy.toFixed(4)} -> registered ${accuracy.toFixed(4)}; per round ` +
        run.history.map((r) => r.evaluation?.accuracy.toFixed(4)).join(' '),
    );
    expect(run.baseline?.accuracy).toBeCloseTo(baseAccuracy, 2);
    expect(accuracy).toBeGreaterThan(baseAccuracy + 0.08);
    expect(run.history.at(-1)?.evaluation?.accuracy).toBeCloseTo(accuracy, 2);
  }, 150_000);

  it('stays accurate with trimmed mean under a poisoning client while FedAvg degrades', async () => {
    await fleet.stop(0);
    poisoner = new ProtocolClient({
      agentId: 'fl-poisoner',
      connection: mesh.connection,
      baseBytes: data.baseBytes,
      examples: data.shards[0]!,
      behaviour: 'poison',
    });
    const clients = ['fl-poisoner', ...fleet.ids.slice(1)].sort();
    const trimmed = await runTraining('fedtrimmedavg', { beta: 0.2 }, '1-trimmed', 4);
    expect(trimmed.state, trimmed.error).toBe('succeeded');
    for (const round of trimmed.history) expect(round.received).toEqual(clients);
    const fedavg = await runTraining('fedavg', {}, '1-poisoned-fedavg', 4);
    expect(fedavg.state, fedavg.error).toBe('succeeded');
    for (const round of fedavg.history) expect(round.received).toEqual(clients);
    const trimmedAccuracy = await registeredAccuracy('1-trimmed');
    const fedavgAccuracy = await registeredAccuracy('1-poisoned-fedavg');
    console.log(
      `poisoned (9 agents + 1 poisoner): trimmed mean ${trimmedAccuracy.toFixed(4)}, ` +
        `fedavg ${fedavgAccuracy.toFixed(4)}, base ${baseAccuracy.toFixed(4)}`,
    );
    expect(trimmedAccuracy).toBeGreaterThan(baseAccuracy + 0.05);
    expect(fedavgAccuracy).toBeLessThan(baseAccuracy - 0.05);
    expect(fedavgAccuracy).toBeLessThan(trimmedAccuracy - 0.2);
  }, 120_000);
});

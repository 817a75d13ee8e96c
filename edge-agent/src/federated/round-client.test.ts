/**
 * The federated round client in a real agent against a real nats-server with JetStream: a
 * test-side aggregator stand-in sends real round tasks built from the model's initializers and
 * reads the updates from the real updates stream (created here with the coordinator's settings).
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RetentionPolicy, StorageType, jetstreamManager } from '@nats-io/jetstream';
import type { JetStreamManager } from '@nats-io/jetstream';
import { connectMesh } from '@infermesh/mesh-client';
import type { MeshConnection } from '@infermesh/mesh-client';
import {
  allFlUpdatesSubject,
  decode,
  encode,
  flRoundTaskSchema,
  flRoundTaskSubject,
  flSecureDownMessageSchema,
  flSecureToAggregatorSubject,
  flSecureToClientsSubject,
  flSecureUpMessageSchema,
  flTaskReplySchema,
  flUpdateSchema,
  flUpdateSubject,
  updatesStream,
} from '@infermesh/protocols';
import type {
  FlRoundTask,
  FlSecureDownMessage,
  FlSecureUpMessage,
  FlTaskReply,
  FlUpdate,
  LabelledExample,
} from '@infermesh/protocols';
import { SecureAggregationClient, SecureAggregator } from '@infermesh/federated';
import { readFloatInitializers } from '@infermesh/onnx-tools';
import { buildWeakSpamModel, loadSpamCorpus, splitCorpus } from '@infermesh/demo-models';
import type { SpamModelBuild } from '@infermesh/demo-models';
import { LocalTrainer } from '@infermesh/trainer';
import { TEST_AGENT_SETTINGS, createModelsDir, startNatsServer } from '../../../test/harness/index.js';
import type { ModelsDir, NatsServer } from '../../../test/harness/index.js';
import { waitUntil } from '../../../test/harness/registry.js';
import { Agent } from '../agent.js';
import { agentConfigSchema } from '../config/agent-config.js';
import { float32, littleEndianBytes, supersedes } from './round-client.js';

const AGENT_ID = 'fl-agent-1';
const EXAMPLES = 120;
const HYPERPARAMETERS = { localEpochs: 2, batchSize: 16, learningRate: 0.5, proximalMu: 0 };

async function createUpdatesStream(jsm: JetStreamManager): Promise<void> {
  // The coordinator's settings (cloud-coordinator/src/federated/updates-stream.ts).
  await jsm.streams.add({
    name: updatesStream(),
    subjects: [allFlUpdatesSubject()],
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    max_age: 24 * 3_600_000 * 1_000_000,
    duplicate_window: 10 * 60_000 * 1_000_000,
  });
}

describe('federated round client', () => {
  let nats: NatsServer;
  let models: ModelsDir;
  let weak: SpamModelBuild;
  let agent: Agent;
  let mesh: MeshConnection;
  let jsm: JetStreamManager;
  let examples: LabelledExample[];
  let rounds = 0;

  function task(overrides: Partial<FlRoundTask> = {}): FlRoundTask {
    rounds += 1;
    return {
      runId: 'run-1',
      roundId: `run-1-r${rounds}`,
      round: rounds,
      model: 'spam',
      baseVersion: '1',
      weights: readFloatInitializers(weak.bytes, weak.trainable).map((w) => ({
        name: w.name,
        dims: [...w.dims],
        data: littleEndianBytes(w.data),
      })),
      hyperparameters: HYPERPARAMETERS,
      deadlineAt: Date.now() + 30_000,
      seed: 7,
      ...overrides,
    };
  }

  async function send(t: FlRoundTask): Promise<FlTaskReply> {
    const reply = await mesh.nc.request(flRoundTaskSubject(AGENT_ID), encode(flRoundTaskSchema, t), {
      timeout: 10_000,
    });
    return decode(flTaskReplySchema, reply.data);
  }

  async function storedUpdate(roundId: string): Promise<FlUpdate | undefined> {
    try {
      const message = await jsm.streams.getMessage(updatesStream(), {
        last_by_subj: flUpdateSubject(roundId),
      });
      return message ? decode(flUpdateSchema, message.data) : undefined;
    } catch {
      return undefined;
    }
  }

  async function expectedDelta(t: FlRoundTask): Promise<Float32Array[]> {
    const trainer = await LocalTrainer.create({ modelBytes: weak.bytes, trainable: weak.trainable });
    try {
      const weights = t.weights.map((w) => ({ name: w.name, data: float32(w.data) }));
      const result = await trainer.train(examples, weights, { ...t.hyperparameters, seed: t.seed ?? 0 });
      return result.delta;
    } finally {
      await trainer.release();
    }
  }

  beforeAll(async () => {
    nats = await startNatsServer();
    weak = await buildWeakSpamModel();
    models = await createModelsDir({ spam: { '1': weak.bytes } });
    examples = splitCorpus(loadSpamCorpus())
      .train.filter((_, i) => i % 37 === 0)
      .slice(0, EXAMPLES)
      .map((e) => ({ inputs: { text: e.text }, label: e.label }));
    const shard = join(models.path, 'spam-shard.jsonl');
    await writeFile(shard, examples.map((e) => JSON.stringify(e)).join('\n') + '\n');
    agent = new Agent(
      agentConfigSchema.parse({
        ...TEST_AGENT_SETTINGS,
        id: AGENT_ID,
        modelsDir: models.path,
        nats: nats.url,
        heartbeatIntervalMs: 60_000,
        trainingData: { spam: shard },
      }),
      pino({ level: 'silent' }),
    );
    await agent.start();
    mesh = await connectMesh(nats.url, { name: 'fl-aggregator-stand-in' });
    jsm = await jetstreamManager(mesh.nc);
    await createUpdatesStream(jsm);
    // The agent subscribes once its NATS connection is up.
    await waitUntil(
      async () => (await send(task({ model: 'absent-model' }))).accepted === false,
      10_000,
      'the agent to answer round tasks',
      100,
    );
  });
  afterAll(async () => {
    await agent?.stop();
    await mesh?.close();
    await nats?.dispose();
    await models?.dispose();
  });

  it('trains on its local data and publishes the delta the trainer computes for the same data and seed', async () => {
    const t = task();
    const reply = await send(t);
    expect(reply).toEqual({ accepted: true, examples: EXAMPLES });
    const update = await waitUntil(() => storedUpdate(t.roundId), 20_000, 'the update in the stream', 50);
    expect(update).toMatchObject({
      runId: 'run-1',
      roundId: t.roundId,
      agentId: AGENT_ID,
      numExamples: EXAMPLES,
    });
    expect(update.privacy).toBeUndefined();
    expect(update.metrics.accuracy).toBeGreaterThan(0.5);
    const expected = await expectedDelta(t);
    expect(update.delta!.map((d) => d.name)).toEqual(weak.trainable);
    update.delta!.forEach((d, i) => expect(float32(d.data)).toEqual(expected[i]));
    expect(expected.some((d) => d.some((v) => v !== 0))).toBe(true);
    const status = (await (await agent.app.request('/v1/status')).json()) as { federated: unknown };
    expect(status.federated).toMatchObject({
      training: false,
      lastRound: { roundId: t.roundId, state: 'published' },
    });
  });

  it('clips the delta to clipNorm with client-side differential privacy', async () => {
    const clipNorm = 0.05;
    const t = task({ privacy: { mode: 'client', clipNorm, noiseMultiplier: 0 } });
    expect((await send(t)).accepted).toBe(true);
    const update = await waitUntil(() => storedUpdate(t.roundId), 20_000, 'the clipped update', 50);
    const expected = await expectedDelta(t);
    const unclipped = Math.hypot(...expected.flatMap((d) => Array.from(d)));
    expect(unclipped).toBeGreaterThan(clipNorm);
    // The unclipped norm is a function of the local data: it never leaves the device.
    expect(update.privacy).toBeUndefined();
    const sent = update.delta!.map((d) => float32(d.data));
    expect(Math.hypot(...sent.flatMap((d) => Array.from(d)))).toBeCloseTo(clipNorm, 5);
    // Clipping scales, it does not change the direction.
    const scale = clipNorm / unclipped;
    expect(sent[0]![0]).toBeCloseTo(expected[0]![0]! * scale, 6);
  });

  it('drops a diverging round without an update and keeps the agent serving', async () => {
    // Weights near the float32 limit overflow in the first step: loss and delta are not finite.
    const base = task();
    const t = task({
      weights: base.weights.map((w) => ({
        ...w,
        data: littleEndianBytes(float32(w.data).map((v) => (v >= 0 ? 3e38 : -3e38))),
      })),
    });
    expect((await send(t)).accepted).toBe(true);
    const status = await waitUntil(
      async () => {
        const body = (await (await agent.app.request('/v1/status')).json()) as {
          federated: { training: boolean; lastRound?: { roundId: string; state: string; reason?: string } };
        };
        return body.federated.lastRound?.roundId === t.roundId && !body.federated.training ? body : undefined;
      },
      20_000,
      'the diverged round in the status',
      50,
    );
    expect(status.federated.lastRound).toMatchObject({
      state: 'failed',
      reason: expect.stringMatching(/diverged/),
    });
    expect(await storedUpdate(t.roundId)).toBeUndefined();
    const live = await agent.app.request('/v2/health/ready');
    expect(live.status).toBe(200);
  });

  it('refuses tasks for a missing model, for weights of another shape, and while training', async () => {
    const missing = await send(task({ model: 'not-here' }));
    expect(missing.accepted).toBe(false);
    expect(missing.reason).toMatch(/^model-missing/);

    const wrong = task();
    wrong.weights[0] = { name: wrong.weights[0]!.name, dims: [2, 2], data: new Uint8Array(16) };
    const incompatible = await send(wrong);
    expect(incompatible).toMatchObject({ accepted: false, examples: 0 });
    expect(incompatible.reason).toMatch(/^incompatible-weights/);
  });

  it('retries until acknowledged, refuses a second task meanwhile, and drops an update past the deadline', async () => {
    await jsm.streams.delete(updatesStream());
    try {
      // Acknowledged late: the stream comes back before the deadline.
      const late = task({ deadlineAt: Date.now() + 20_000 });
      expect((await send(late)).accepted).toBe(true);
      // Another run's task waits its turn (a newer attempt of the same run would supersede instead).
      const busy = await send(task({ runId: 'run-2' }));
      expect(busy.accepted).toBe(false);
      expect(busy.reason).toMatch(/^busy/);
      await new Promise((resolve) => setTimeout(resolve, 800));
      await createUpdatesStream(jsm);
      await waitUntil(() => storedUpdate(late.roundId), 20_000, 'the retried update', 50);
      await agent.federated!.idle();

      // Never acknowledged before the deadline: dropped, and not sent once the stream is back.
      await jsm.streams.delete(updatesStream());
      const dropped = task({ deadlineAt: Date.now() + 1_500 });
      expect((await send(dropped)).accepted).toBe(true);
      await agent.federated!.idle();
      expect(agent.federated!.status().lastRound).toMatchObject({
        roundId: dropped.roundId,
        state: 'dropped',
      });
      expect(Date.now()).toBeGreaterThanOrEqual(dropped.deadlineAt);
    } finally {
      await createUpdatesStream(jsm).catch(() => undefined);
    }
    await new Promise((resolve) => setTimeout(resolve, 600));
    const info = await jsm.streams.info(updatesStream());
    expect(info.state.messages).toBe(0);
    const metrics = await (await agent.app.request('/metrics')).text();
    expect(metrics).toMatch(/infermesh_agent_fl_updates_total\{model="spam",outcome="dropped"\} 1/);
    expect(metrics).toMatch(
      /infermesh_agent_fl_rounds_total\{model="spam",outcome="refused",reason="busy"\} 1/,
    );
  });

  it('lets a newer attempt of the same run supersede the round still in progress', async () => {
    await jsm.streams.delete(updatesStream());
    try {
      // The first attempt trains, then waits for the (missing) stream to acknowledge its update.
      const first = task({ deadlineAt: Date.now() + 20_000 });
      expect((await send(first)).accepted).toBe(true);
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      expect(agent.federated!.status()).toMatchObject({
        training: true,
        lastRound: { roundId: first.roundId },
      });
      const retry = task({ deadlineAt: Date.now() + 20_000 });
      expect((await send(retry)).accepted).toBe(true);
      expect(Date.now()).toBeLessThan(first.deadlineAt);
      await createUpdatesStream(jsm);
      await waitUntil(() => storedUpdate(retry.roundId), 20_000, 'the newer attempt’s update', 50);
      await agent.federated!.idle();
      expect(await storedUpdate(first.roundId)).toBeUndefined();
    } finally {
      await createUpdatesStream(jsm).catch(() => undefined);
    }
  });

  it('takes part in secure aggregation: the unmasked sum holds its weighted delta and example count', async () => {
    const t = task({ secure: { clientId: 1, threshold: 2, fractionalBits: 16 } });
    const vectorLength = t.weights.reduce((n, w) => n + w.data.byteLength / 4, 0) + 1;
    const config = { roundId: t.roundId, threshold: 2, vectorLength, fractionalBits: 16 };
    const received: FlSecureUpMessage[] = [];
    const up = mesh.nc.subscribe(flSecureToAggregatorSubject(t.roundId), {
      callback: (err, msg) => {
        if (!err) received.push(decode(flSecureUpMessageSchema, msg.data));
      },
    });
    const down = (message: FlSecureDownMessage): void =>
      mesh.nc.publish(flSecureToClientsSubject(t.roundId), encode(flSecureDownMessageSchema, message));
    const from = <P extends FlSecureUpMessage['phase']>(phase: P) =>
      waitUntil(
        () => received.find((m): m is Extract<FlSecureUpMessage, { phase: P }> => m.phase === phase),
        20_000,
        `the agent's ${phase} message`,
      );
    try {
      const aggregator = new SecureAggregator(config);
      const peer = new SecureAggregationClient(config, 2);
      expect((await send(t)).accepted).toBe(true);
      const keys = await from('keys');
      aggregator.receiveKeys({
        clientId: keys.clientId,
        maskPublicKey: keys.maskPublicKey,
        encryptionPublicKey: keys.encryptionPublicKey,
      });
      aggregator.receiveKeys(peer.advertiseKeys());
      const roster = aggregator.closeAdvertising();
      down({ phase: 'roster', roster });
      aggregator.receiveShares(2, peer.shareKeys(roster));
      aggregator.receiveShares(1, (await from('shares')).shares);
      aggregator.closeSharing();
      down({ phase: 'inbox', to: 1, shares: aggregator.inboxFor(1) });
      const peerVector = new Float32Array(vectorLength).fill(0.25);
      peerVector[vectorLength - 1] = 10;
      aggregator.receiveMaskedInput(peer.maskInput(peerVector, aggregator.inboxFor(2)));

      const update = await waitUntil(() => storedUpdate(t.roundId), 20_000, 'the masked update', 50);
      expect(update.delta).toBeUndefined();
      const masked = update.masked!;
      const words = new Uint32Array(masked.byteLength / 4);
      const view = new DataView(masked.buffer, masked.byteOffset, masked.byteLength);
      words.forEach((_, i) => (words[i] = view.getUint32(i * 4, true)));
      aggregator.receiveMaskedInput({ clientId: 1, masked: words });
      const request = aggregator.closeMasking();
      down({ phase: 'unmask', survivors: [...request.survivors], dropped: [...request.dropped] });
      aggregator.receiveUnmaskShares(peer.unmask(request));
      const reveal = await from('unmask');
      aggregator.receiveUnmaskShares(reveal);
      const { sum } = aggregator.finish();

      const expected = (await expectedDelta(t)).flatMap((d) => Array.from(d, (v) => v * EXAMPLES));
      expect(sum[vectorLength - 1]! - 10).toBeCloseTo(EXAMPLES, 3);
      let gap = 0;
      expected.forEach((v, i) => (gap = Math.max(gap, Math.abs(sum[i]! - 0.25 - v))));
      expect(gap).toBeLessThan(1e-3);
    } finally {
      up.unsubscribe();
    }
  });
});

describe('supersedes', () => {
  const base = { runId: 'r', roundId: 'r-r2', round: 2, deadlineAt: 1_000 } as FlRoundTask;
  it('takes only a later round, or a later attempt of the same round, of the same run', () => {
    expect(supersedes({ ...base, roundId: 'r-r3', round: 3 }, base)).toBe(true);
    expect(supersedes({ ...base, roundId: 'r-r2-a2', deadlineAt: 2_000 }, base)).toBe(true);
    expect(supersedes({ ...base, roundId: 'r-r1', round: 1, deadlineAt: 5_000 }, base)).toBe(false);
    expect(supersedes({ ...base, roundId: 'r-r2-a0', deadlineAt: 500 }, base)).toBe(false);
    expect(supersedes({ ...base, runId: 'other', roundId: 'other-r9', round: 9 }, base)).toBe(false);
    expect(supersedes(base, base)).toBe(false);
  });
});

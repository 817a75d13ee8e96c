import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode } from '@infermesh/protocols';
import type { LabelledExample } from '@infermesh/protocols';
import { mulberry32 } from '@infermesh/onnx-tools';
import {
  buildWeakSpamModel,
  createSpamSession,
  evaluateSpamModel,
  loadSpamCorpus,
  predictWithOnnx,
  splitCorpus,
} from '@infermesh/demo-models';
import type { SpamExample, SpamModelBuild } from '@infermesh/demo-models';
import { LocalTrainer } from './local-trainer.js';

const TRAIN_EXAMPLES = 800;
const SETTINGS = { localEpochs: 3, batchSize: 16, learningRate: 0.5, proximalMu: 0, seed: 42 } as const;

function labelled(examples: readonly SpamExample[]): LabelledExample[] {
  return examples.map((e) => ({ inputs: { text: e.text }, label: e.label }));
}

/** A seeded sample of the train split (not the sliver the weak model saw, most of it). */
function sample(examples: readonly SpamExample[], count: number, seed: number): SpamExample[] {
  const next = mulberry32(seed);
  const pool = [...examples];
  for (let i = pool.length - 1; i > 0; i -= 1) {
    const j = Math.floor(next() * (i + 1));
    [pool[i], pool[j]] = [pool[j]!, pool[i]!];
  }
  return pool.slice(0, count);
}

describe('local trainer on the weak spam model', () => {
  let weak: SpamModelBuild;
  let trainer: LocalTrainer;
  let train: LabelledExample[];
  let heldout: readonly SpamExample[];

  beforeAll(async () => {
    weak = await buildWeakSpamModel();
    const split = splitCorpus(loadSpamCorpus());
    heldout = split.heldout;
    train = labelled(sample(split.train, TRAIN_EXAMPLES, 5));
    trainer = await LocalTrainer.create({ modelBytes: weak.bytes, trainable: weak.trainable });
  });
  afterAll(async () => {
    await trainer?.release();
  });

  it('finds the dense head after the in-graph featurisation', () => {
    expect(trainer.plan.featureName).toBe('features');
    expect(trainer.plan.ops.map((op) => op.type)).toEqual([
      'matmul',
      'add',
      'relu',
      'matmul',
      'add',
      'softmax',
    ]);
    expect(trainer.classes).toBe(2);
    expect(trainer.plan.featureSize).toBe(weak.vocabulary.length);
  });

  it('raises held-out accuracy, and the exported model computes what the trainer does', async () => {
    const result = await trainer.train(train, trainer.initialWeights(), SETTINGS);
    expect(result.numExamples).toBe(TRAIN_EXAMPLES);
    expect(result.delta.map((d) => d.length)).toEqual(trainer.initialWeights().map((w) => w.data.length));
    expect(result.accuracy).toBeGreaterThan(0.9);

    const trained = trainer.exportModel(result.weights);
    const after = await evaluateSpamModel(trained, heldout);
    expect(after.accuracy).toBeGreaterThan(weak.heldoutAccuracy + 0.05);

    // ORT's probabilities from the exported model = the trainer's forward pass with the same weights.
    const probe = heldout.slice(0, 200);
    const session = await createSpamSession(trained);
    try {
      const onnx = await predictWithOnnx(
        session,
        probe.map((e) => e.text),
      );
      const mine = await trainer.predict(labelled(probe), result.weights);
      let gap = 0;
      probe.forEach((_, i) => (gap = Math.max(gap, Math.abs(onnx.spamProbabilities[i]! - mine[i * 2 + 1]!))));
      expect(gap).toBeLessThan(1e-4);
    } finally {
      await session.release();
    }
  });

  it('is reproducible with the same seed and differs with another', async () => {
    const subset = train.slice(0, 120);
    const settings = { ...SETTINGS, localEpochs: 1 };
    const a = await trainer.train(subset, trainer.initialWeights(), settings);
    const b = await trainer.train(subset, trainer.initialWeights(), settings);
    const c = await trainer.train(subset, trainer.initialWeights(), { ...settings, seed: 43 });
    expect(a.delta).toEqual(b.delta);
    expect(a.delta).not.toEqual(c.delta);
  });

  it('moves less from the global weights with a proximal term', async () => {
    const subset = train.slice(0, 200);
    const norm = (delta: Float32Array[]): number => Math.hypot(...delta.flatMap((d) => Array.from(d)));
    const plain = await trainer.train(subset, trainer.initialWeights(), SETTINGS);
    const prox = await trainer.train(subset, trainer.initialWeights(), { ...SETTINGS, proximalMu: 1 });
    expect(norm(prox.delta)).toBeLessThan(norm(plain.delta) * 0.8);
  });

  it('refuses bad examples naming their index, and weights of another model', async () => {
    const bad: LabelledExample[] = [train[0]!, { inputs: { text: 42 }, label: 0 }];
    await expect(trainer.train(bad, trainer.initialWeights(), SETTINGS)).rejects.toMatchObject({
      code: ErrorCode.INVALID_INPUT,
      message: expect.stringContaining('example 1') as unknown,
    });
    const badLabel: LabelledExample[] = [{ inputs: { text: 'hello' }, label: 2 }];
    await expect(trainer.train(badLabel, trainer.initialWeights(), SETTINGS)).rejects.toMatchObject({
      code: ErrorCode.INVALID_INPUT,
      message: expect.stringContaining('2 classes') as unknown,
    });
    const weights = trainer.initialWeights().slice(1);
    await expect(trainer.train(train.slice(0, 4), weights, SETTINGS)).rejects.toMatchObject({
      code: ErrorCode.INVALID_INPUT,
    });
  });
});

import { describe, expect, it } from 'vitest';
import { ErrorCode } from '@infermesh/protocols';
import type { LabelledExample } from '@infermesh/protocols';
import { GraphBuilder, attr, buildMlpClassifier, fillUniform, mulberry32 } from '@infermesh/onnx-tools';
import { analyseHead } from './head-graph.js';
import type { HeadPlan } from './head-graph.js';
import { lossAndGradients } from './head-network.js';
import type { FeatureRow } from './head-network.js';
import { LocalTrainer } from './local-trainer.js';

const INPUT = 4;
const HIDDEN = 5;
const CLASSES = 3;

function uniform(size: number, next: () => number): Float32Array {
  return fillUniform(new Float32Array(size), next, -1, 1);
}

/**
 * x [batch, 4] -> Mul(scale) = features -> MatMul W1 -> Add b1 -> Tanh -> Relu
 * -> Gemm(W2ᵀ, C, alpha, beta) -> Softmax: every supported op but Sigmoid, with a frozen part.
 */
function buildSmallModel(head: 'softmax' | 'sigmoid'): Uint8Array {
  const next = mulberry32(11);
  const g = new GraphBuilder({ name: 'small-head', opset: 17 });
  g.input('x', 'FP32', ['batch', INPUT]);
  g.initializer('scale', 'FP32', [INPUT], Float32Array.of(0.5, 2, -1, 1.5));
  g.node('Mul', ['x', 'scale'], ['features']);
  g.initializer('w1', 'FP32', [INPUT, HIDDEN], uniform(INPUT * HIDDEN, next));
  g.initializer('b1', 'FP32', [HIDDEN], uniform(HIDDEN, next));
  g.node('MatMul', ['features', 'w1'], ['h0']);
  g.node('Add', ['h0', 'b1'], ['h1']);
  g.node('Tanh', ['h1'], ['h2']);
  g.node('Relu', ['h2'], ['h3']);
  const width = head === 'softmax' ? CLASSES : 1;
  g.initializer('w2', 'FP32', [width, HIDDEN], uniform(width * HIDDEN, next));
  g.initializer('c2', 'FP32', [width], uniform(width, next));
  g.node('Gemm', ['h3', 'w2', 'c2'], ['logits'], {
    transB: attr.int(1),
    alpha: attr.float(0.7),
    beta: attr.float(0.5),
  });
  if (head === 'softmax') {
    g.node('Softmax', ['logits'], ['probabilities'], { axis: attr.int(-1) });
    g.output('probabilities', 'FP32', ['batch', CLASSES]);
  } else {
    g.node('Sigmoid', ['logits'], ['probabilities']);
    g.output('probabilities', 'FP32', ['batch', 1]);
  }
  return g.toBytes();
}

function examples(count: number, classes: number, seed: number): LabelledExample[] {
  const next = mulberry32(seed);
  return Array.from({ length: count }, (_, i) => ({
    inputs: { x: Array.from(uniform(INPUT, next)) },
    label: i % classes,
  }));
}

function parametersOf(plan: HeadPlan): Map<string, Float64Array> {
  return new Map([...plan.parameters].map(([name, p]) => [name, Float64Array.from(p.data)]));
}

/** Largest relative gap between analytic gradients and central finite differences. */
function gradientGap(
  plan: HeadPlan,
  params: Map<string, Float64Array>,
  rows: FeatureRow[],
  labels: number[],
  options: Parameters<typeof lossAndGradients>[4],
): number {
  const analytic = lossAndGradients(plan, params, rows, labels, options).gradients;
  const step = 1e-6;
  let worst = 0;
  for (const name of plan.trainable) {
    const w = params.get(name)!;
    for (let k = 0; k < w.length; k += 1) {
      const saved = w[k]!;
      w[k] = saved + step;
      const up = lossAndGradients(plan, params, rows, labels, options).loss;
      w[k] = saved - step;
      const down = lossAndGradients(plan, params, rows, labels, options).loss;
      w[k] = saved;
      const numeric = (up - down) / (2 * step);
      const exact = analytic.get(name)![k]!;
      worst = Math.max(
        worst,
        Math.abs(numeric - exact) / Math.max(1e-4, Math.abs(numeric) + Math.abs(exact)),
      );
    }
  }
  return worst;
}

describe('head gradients', () => {
  it('match finite differences through MatMul, Add, Tanh, Relu, Gemm and Softmax, with the proximal term', async () => {
    const bytes = buildSmallModel('softmax');
    const trainer = await LocalTrainer.create({ modelBytes: bytes, trainable: ['w1', 'b1', 'w2', 'c2'] });
    try {
      expect(trainer.plan.ops.map((op) => op.type)).toEqual([
        'matmul',
        'add',
        'tanh',
        'relu',
        'gemm',
        'softmax',
      ]);
      expect(trainer.plan.featureName).toBe('features');
      const data = examples(12, CLASSES, 3);
      const rows = await trainer.features(data);
      // The featurizer ran the frozen Mul in ONNX Runtime.
      const x0 = data[0]!.inputs['x'] as number[];
      const dense = new Float32Array(INPUT);
      rows[0]!.indices.forEach((i, k) => (dense[i] = rows[0]!.values[k]!));
      expect(Array.from(dense)).toEqual(
        Array.from(Float32Array.from(x0, (v, i) => v * [0.5, 2, -1, 1.5][i]!)),
      );

      const params = parametersOf(trainer.plan);
      const labels = data.map((e) => e.label);
      expect(gradientGap(trainer.plan, params, rows, labels, {})).toBeLessThan(1e-5);
      const globalWeights = new Map([...params].map(([n, w]) => [n, w.map((v) => v + 0.1)]));
      expect(
        gradientGap(trainer.plan, params, rows, labels, { proximalMu: 0.3, globalWeights }),
      ).toBeLessThan(1e-5);
    } finally {
      await trainer.release();
    }
  });

  it('match finite differences for a one-column Sigmoid output (two classes)', async () => {
    const trainer = await LocalTrainer.create({
      modelBytes: buildSmallModel('sigmoid'),
      trainable: ['w1', 'w2', 'c2'],
    });
    try {
      expect(trainer.classes).toBe(2);
      const data = examples(10, 2, 5);
      const rows = await trainer.features(data);
      const gap = gradientGap(
        trainer.plan,
        parametersOf(trainer.plan),
        rows,
        data.map((e) => e.label),
        {},
      );
      expect(gap).toBeLessThan(1e-5);
    } finally {
      await trainer.release();
    }
  });

  it('match finite differences for a logits output fed straight from a graph input', () => {
    const mlp = buildMlpClassifier({ inputSize: 6, hiddenSizes: [4], classes: 3, batch: 'dynamic', seed: 2 });
    const plan = analyseHead(mlp.bytes, ['layer0.weight', 'layer0.bias', 'layer1.weight', 'layer1.bias']);
    expect(plan.featureIsGraphInput).toBe(true);
    expect(plan.outputName).toBe('logits');
    const next = mulberry32(9);
    const rows: FeatureRow[] = Array.from({ length: 8 }, () => ({
      indices: Uint32Array.from([0, 1, 2, 3, 4, 5]),
      values: uniform(6, next),
    }));
    const gap = gradientGap(plan, parametersOf(plan), rows, [0, 1, 2, 0, 1, 2, 0, 1], {});
    expect(gap).toBeLessThan(1e-5);
  });
});

describe('head analysis', () => {
  it('refuses a head with an unsupported op, naming it', () => {
    const g = new GraphBuilder({ name: 'exp-head' });
    g.input('features', 'FP32', ['batch', 2]);
    g.initializer('w', 'FP32', [2, 2], Float32Array.of(1, 0, 0, 1));
    g.node('MatMul', ['features', 'w'], ['z']);
    g.node('Exp', ['z'], ['e']);
    g.node('Softmax', ['e'], ['probabilities'], { axis: attr.int(-1) });
    g.output('probabilities', 'FP32', ['batch', 2]);
    let caught: unknown;
    try {
      analyseHead(g.toBytes(), ['w']);
    } catch (err) {
      caught = err;
    }
    expect(caught).toMatchObject({ code: ErrorCode.INVALID_INPUT, details: { op: 'Exp' } });
    expect((caught as Error).message).toContain('unsupported head op Exp');
  });

  it('refuses trainable names the model does not have', () => {
    const mlp = buildMlpClassifier({ inputSize: 3, hiddenSizes: [], classes: 2, batch: 'dynamic', seed: 1 });
    expect(() => analyseHead(mlp.bytes, ['nope'])).toThrow(
      expect.objectContaining({ code: ErrorCode.INVALID_INPUT }),
    );
  });
});

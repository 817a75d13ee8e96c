/**
 * Forward and backward passes of a model's head ({@link HeadPlan}) in TypeScript, in float64:
 * softmax cross-entropy on class indices (through a final Softmax the gradient with respect to
 * its input is `p - onehot`; for a one-column Sigmoid output it is `s - y`; for a logits output a
 * softmax is applied first), plus FedProx's proximal term `mu/2 ||w - w_global||^2`.
 *
 * Feature rows are sparse (tf-idf features are mostly zeros), so the first layer costs what the
 * non-zero features cost.
 * @module
 */
import type { HeadOp, HeadPlan } from './head-graph.js';

/** One example's features: the non-zero positions and their values. */
export interface FeatureRow {
  readonly indices: Uint32Array;
  readonly values: Float32Array;
}

/** Head parameters by initializer name (trainable and frozen), in float64. */
export type HeadParameters = ReadonlyMap<string, Float64Array>;

/** Options of {@link lossAndGradients}. */
export interface ObjectiveOptions {
  /** FedProx mu; 0 or absent for plain cross-entropy. */
  readonly proximalMu?: number;
  /** The global weights the proximal term pulls towards (by trainable name). */
  readonly globalWeights?: ReadonlyMap<string, ArrayLike<number>>;
}

/** Loss, gradients and outputs of one batch. */
export interface BatchObjective {
  /** Mean cross-entropy over the batch, plus the proximal term. */
  readonly loss: number;
  /** Mean cross-entropy over the batch alone. */
  readonly crossEntropy: number;
  /** Gradient of `loss` per trainable initializer. */
  readonly gradients: Map<string, Float64Array>;
  /** Class probabilities, `[batch, classes]` row-major. */
  readonly probabilities: Float64Array;
}

/** The input of a linear op: the sparse feature rows, or a dense activation. */
type LayerInput =
  | { readonly kind: 'sparse'; readonly rows: readonly FeatureRow[] }
  | { readonly kind: 'dense'; readonly data: Float64Array; readonly width: number };

const PROBABILITY_FLOOR = 1e-12;

function forEachNonZero(input: LayerInput, b: number, visit: (i: number, x: number) => void): void {
  if (input.kind === 'sparse') {
    const row = input.rows[b]!;
    for (let k = 0; k < row.indices.length; k += 1) visit(row.indices[k]!, row.values[k]!);
    return;
  }
  const offset = b * input.width;
  for (let i = 0; i < input.width; i += 1) {
    const x = input.data[offset + i]!;
    if (x !== 0) visit(i, x);
  }
}

/** Linear map geometry: `out[j] = scale * sum_i x[i] * W[index(i, j)]`. */
interface Linear {
  readonly weight: string;
  readonly inner: number;
  readonly outer: number;
  readonly transposed: boolean;
  readonly scale: number;
}

function linearOf(op: HeadOp, params: HeadParameters, inner: number): Linear | undefined {
  if (op.type !== 'matmul' && op.type !== 'gemm') return undefined;
  const size = params.get(op.weight)!.length;
  const transposed = op.type === 'gemm' && op.transB;
  return {
    weight: op.weight,
    inner,
    outer: size / inner,
    transposed,
    scale: op.type === 'gemm' ? op.alpha : 1,
  };
}

function weightIndex(l: Linear, i: number, j: number): number {
  return l.transposed ? j * l.inner + i : i * l.outer + j;
}

function addBias(out: Float64Array, width: number, bias: Float64Array, scale: number): void {
  for (let k = 0; k < out.length; k += 1) out[k]! += scale * bias[bias.length === 1 ? 0 : k % width]!;
}

function softmaxRows(logits: Float64Array, width: number): Float64Array {
  const out = new Float64Array(logits.length);
  for (let offset = 0; offset < logits.length; offset += width) {
    let max = -Infinity;
    for (let j = 0; j < width; j += 1) max = Math.max(max, logits[offset + j]!);
    let sum = 0;
    for (let j = 0; j < width; j += 1) sum += out[offset + j] = Math.exp(logits[offset + j]! - max);
    for (let j = 0; j < width; j += 1) out[offset + j]! /= sum;
  }
  return out;
}

interface ForwardTrace {
  /** The input of each op. */
  readonly inputs: LayerInput[];
  /** The output of each op. */
  readonly outputs: Float64Array[];
  readonly widths: number[];
}

function forward(plan: HeadPlan, params: HeadParameters, rows: readonly FeatureRow[]): ForwardTrace {
  const batch = rows.length;
  let input: LayerInput = { kind: 'sparse', rows };
  let width = plan.featureSize;
  const trace: ForwardTrace = { inputs: [], outputs: [], widths: [] };
  for (const op of plan.ops) {
    trace.inputs.push(input);
    let out: Float64Array;
    const linear = linearOf(op, params, width);
    if (linear) {
      const w = params.get(linear.weight)!;
      out = new Float64Array(batch * linear.outer);
      for (let b = 0; b < batch; b += 1) {
        const offset = b * linear.outer;
        forEachNonZero(input, b, (i, x) => {
          const scaled = x * linear.scale;
          for (let j = 0; j < linear.outer; j += 1)
            out[offset + j]! += scaled * w[weightIndex(linear, i, j)]!;
        });
      }
      width = linear.outer;
      if (op.type === 'gemm' && op.bias !== undefined) addBias(out, width, params.get(op.bias)!, op.beta);
    } else {
      const data = input.kind === 'dense' ? input.data : new Float64Array(0);
      switch (op.type) {
        case 'add':
          out = Float64Array.from(data);
          addBias(out, width, params.get(op.bias)!, 1);
          break;
        case 'relu':
          out = data.map((x) => (x > 0 ? x : 0));
          break;
        case 'sigmoid':
          out = data.map((x) => 1 / (1 + Math.exp(-x)));
          break;
        case 'tanh':
          out = data.map((x) => Math.tanh(x));
          break;
        case 'softmax':
          out = softmaxRows(data, width);
          break;
        case 'matmul':
        case 'gemm':
          throw new Error(`unreachable: ${op.type} is linear`);
      }
    }
    trace.outputs.push(out);
    trace.widths.push(width);
    input = { kind: 'dense', data: out, width };
  }
  return trace;
}

/** Class probabilities and the gradient of the mean cross-entropy at the loss's starting point. */
function lossHead(
  plan: HeadPlan,
  trace: ForwardTrace,
  labels: readonly number[],
): { probabilities: Float64Array; loss: number; grad: Float64Array; from: number } {
  const last = plan.ops.length - 1;
  const output = trace.outputs[last]!;
  const kind = plan.ops[last]!.type;
  const batch = labels.length;
  const classes = plan.classes;
  let probabilities: Float64Array;
  if (kind === 'sigmoid') {
    probabilities = new Float64Array(batch * 2);
    for (let b = 0; b < batch; b += 1) {
      probabilities[b * 2] = 1 - output[b]!;
      probabilities[b * 2 + 1] = output[b]!;
    }
  } else {
    probabilities = kind === 'softmax' ? output : softmaxRows(output, classes);
  }
  let loss = 0;
  // Softmax (given or implied) with cross-entropy: d/dlogits = p - onehot; Sigmoid: d/dz = s - y.
  const grad = new Float64Array(kind === 'sigmoid' ? batch : batch * classes);
  for (let b = 0; b < batch; b += 1) {
    const y = labels[b]!;
    loss -= Math.log(Math.max(probabilities[b * classes + y]!, PROBABILITY_FLOOR));
    if (kind === 'sigmoid') {
      grad[b] = (output[b]! - y) / batch;
      continue;
    }
    for (let j = 0; j < classes; j += 1) {
      grad[b * classes + j] = (probabilities[b * classes + j]! - (j === y ? 1 : 0)) / batch;
    }
  }
  const from = kind === 'softmax' || kind === 'sigmoid' ? last - 1 : last;
  return { probabilities, loss: loss / batch, grad, from };
}

/** Accumulates `sum over the batch of upstream` into a bias gradient (per column, or all in one). */
function biasGradient(upstream: Float64Array, width: number, size: number, scale: number): Float64Array {
  const g = new Float64Array(size);
  for (let k = 0; k < upstream.length; k += 1) g[size === 1 ? 0 : k % width]! += scale * upstream[k]!;
  return g;
}

function backward(
  plan: HeadPlan,
  params: HeadParameters,
  trace: ForwardTrace,
  start: { grad: Float64Array; from: number },
  trainable: ReadonlySet<string>,
): Map<string, Float64Array> {
  const gradients = new Map<string, Float64Array>();
  const batch = trace.outputs[0]!.length / trace.widths[0]!;
  let upstream = start.grad;
  for (let index = start.from; index >= 0; index -= 1) {
    const op = plan.ops[index]!;
    const input = trace.inputs[index]!;
    const out = trace.outputs[index]!;
    const width = trace.widths[index]!;
    const inWidth = input.kind === 'dense' ? input.width : plan.featureSize;
    const linear = linearOf(op, params, inWidth);
    if (linear) {
      const w = params.get(linear.weight)!;
      if (trainable.has(linear.weight)) {
        const g = new Float64Array(w.length);
        for (let b = 0; b < batch; b += 1) {
          const offset = b * linear.outer;
          forEachNonZero(input, b, (i, x) => {
            const scaled = x * linear.scale;
            for (let j = 0; j < linear.outer; j += 1)
              g[weightIndex(linear, i, j)]! += scaled * upstream[offset + j]!;
          });
        }
        gradients.set(linear.weight, g);
      }
      if (op.type === 'gemm' && op.bias !== undefined && trainable.has(op.bias)) {
        gradients.set(op.bias, biasGradient(upstream, width, params.get(op.bias)!.length, op.beta));
      }
      if (index === 0) break; // nothing to train below the features
      const down = new Float64Array(batch * linear.inner);
      for (let b = 0; b < batch; b += 1) {
        for (let i = 0; i < linear.inner; i += 1) {
          let sum = 0;
          for (let j = 0; j < linear.outer; j += 1)
            sum += upstream[b * linear.outer + j]! * w[weightIndex(linear, i, j)]!;
          down[b * linear.inner + i] = sum * linear.scale;
        }
      }
      upstream = down;
      continue;
    }
    switch (op.type) {
      case 'add':
        if (trainable.has(op.bias)) {
          gradients.set(op.bias, biasGradient(upstream, width, params.get(op.bias)!.length, 1));
        }
        break;
      case 'relu':
        upstream = upstream.map((g, k) => (out[k]! > 0 ? g : 0));
        break;
      case 'sigmoid':
        upstream = upstream.map((g, k) => g * out[k]! * (1 - out[k]!));
        break;
      case 'tanh':
        upstream = upstream.map((g, k) => g * (1 - out[k]! * out[k]!));
        break;
      case 'softmax':
        throw new Error('Softmax is only supported as the last op of the head');
      case 'matmul':
      case 'gemm':
        throw new Error(`unreachable: ${op.type} is linear`);
    }
  }
  return gradients;
}

/**
 * Class probabilities of feature rows, `[rows, classes]` row-major, with the given parameters:
 * what the exported model computes from the same features.
 */
export function headProbabilities(
  plan: HeadPlan,
  params: HeadParameters,
  rows: readonly FeatureRow[],
): Float64Array {
  if (rows.length === 0) return new Float64Array(0);
  const trace = forward(plan, params, rows);
  return lossHead(plan, trace, new Array<number>(rows.length).fill(0)).probabilities;
}

/**
 * The objective of one batch and its gradients with respect to every trainable parameter:
 * mean softmax cross-entropy over `labels` (class indices), plus `mu/2 ||w - w_global||^2`.
 */
export function lossAndGradients(
  plan: HeadPlan,
  params: HeadParameters,
  rows: readonly FeatureRow[],
  labels: readonly number[],
  options: ObjectiveOptions = {},
): BatchObjective {
  const trainable = new Set(plan.trainable);
  const trace = forward(plan, params, rows);
  const head = lossHead(plan, trace, labels);
  const gradients = backward(plan, params, trace, head, trainable);
  let loss = head.loss;
  const mu = options.proximalMu ?? 0;
  for (const name of plan.trainable) {
    const w = params.get(name)!;
    const g = gradients.get(name) ?? new Float64Array(w.length);
    gradients.set(name, g);
    const global = options.globalWeights?.get(name);
    if (mu > 0 && global) {
      let squared = 0;
      for (let k = 0; k < w.length; k += 1) {
        const d = w[k]! - global[k]!;
        squared += d * d;
        g[k]! += mu * d;
      }
      loss += (mu / 2) * squared;
    }
  }
  return { loss, crossEntropy: head.loss, gradients, probabilities: head.probabilities };
}

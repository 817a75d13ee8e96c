/**
 * Finding a model's trainable dense head: the chain of nodes from the feature tensor (the
 * non-trainable input of the first node that consumes a trainable initializer) to the model's
 * probability (or logit) output, and a pruned copy of the graph that computes the feature tensor
 * alone (the frozen part, run with ONNX Runtime to featurise examples).
 *
 * Supported head ops: MatMul (activation x constant), Add (activation + constant bias), Gemm
 * (transA = 0, constant B and C), Relu, Sigmoid, Tanh and a final Softmax over the last axis.
 * Anything else in the chain is refused with INVALID_INPUT naming the op.
 * @module
 */
import { invalidInput } from '@infermesh/protocols';
import { onnx, readFloatInitializers, readModel, toNumber, writeModel } from '@infermesh/onnx-tools';
import type { FloatInitializer, OnnxTypes } from '@infermesh/onnx-tools';

/** Ops the head may contain, in the order they are recognised. */
export const SUPPORTED_HEAD_OPS = ['MatMul', 'Add', 'Gemm', 'Relu', 'Sigmoid', 'Tanh', 'Softmax'] as const;

/** One step of the head; parameter fields name initializers. */
export type HeadOp =
  | { readonly type: 'matmul'; readonly weight: string }
  | { readonly type: 'add'; readonly bias: string }
  | {
      readonly type: 'gemm';
      readonly weight: string;
      readonly bias: string | undefined;
      readonly transB: boolean;
      readonly alpha: number;
      readonly beta: number;
    }
  | { readonly type: 'relu' | 'sigmoid' | 'tanh' | 'softmax' };

/** The analysed head of a model. */
export interface HeadPlan {
  /** The tensor the head starts from, FP32 `[batch, features]`. */
  readonly featureName: string;
  /** True when the feature tensor is a graph input (no featurisation to run). */
  readonly featureIsGraphInput: boolean;
  readonly ops: readonly HeadOp[];
  /** The graph output the head ends at. */
  readonly outputName: string;
  /** Every initializer the head reads (trainable or not), by name. */
  readonly parameters: ReadonlyMap<string, FloatInitializer>;
  /** The trainable initializers, in the caller's order. */
  readonly trainable: readonly string[];
  /** Features per example (rows of the first weight). */
  readonly featureSize: number;
  /** Classes of the output (2 for a one-column Sigmoid output). */
  readonly classes: number;
  /** The graph pruned to compute `featureName` only (undefined when it is a graph input). */
  readonly featurizerBytes: Uint8Array | undefined;
}

type NodeProto = OnnxTypes.INodeProto;

function attribute(node: NodeProto, name: string): OnnxTypes.IAttributeProto | undefined {
  return (node.attribute ?? []).find((a) => a.name === name);
}

function intAttribute(node: NodeProto, name: string, fallback: number): number {
  const a = attribute(node, name);
  return a ? toNumber(a.i) : fallback;
}

function floatAttribute(node: NodeProto, name: string, fallback: number): number {
  const a = attribute(node, name);
  return a?.f ?? fallback;
}

function refuse(message: string, op?: string): never {
  throw invalidInput(message, op === undefined ? undefined : { op });
}

/** The constant operand of a node (the input other than `current`), which must be an initializer. */
function constantOperand(node: NodeProto, current: string, initializers: ReadonlySet<string>): string {
  const inputs = (node.input ?? []).filter((name) => name !== '');
  if (inputs.length !== 2 || inputs[0] !== current) {
    if (node.opType === 'Add' && inputs.length === 2 && inputs[1] === current) {
      const other = inputs[0]!;
      if (initializers.has(other)) return other;
    }
    refuse(
      `unsupported head: ${node.opType} node '${node.name ?? ''}' must take the activation first and a constant second`,
      node.opType ?? '',
    );
  }
  const other = inputs[1]!;
  if (!initializers.has(other)) {
    refuse(
      `unsupported head: ${node.opType} node '${node.name ?? ''}' combines two computed tensors (only constant weights are supported)`,
      node.opType ?? '',
    );
  }
  return other;
}

function toHeadOp(
  node: NodeProto,
  current: string,
  initializers: ReadonlySet<string>,
  opset: number,
): HeadOp {
  switch (node.opType ?? '') {
    case 'MatMul':
      return { type: 'matmul', weight: constantOperand(node, current, initializers) };
    case 'Add':
      return { type: 'add', bias: constantOperand(node, current, initializers) };
    case 'Gemm': {
      const [a, b, c] = node.input ?? [];
      if (a !== current || b === undefined || !initializers.has(b)) {
        refuse('unsupported head: Gemm must take the activation as A and a constant B', 'Gemm');
      }
      if (intAttribute(node, 'transA', 0) !== 0) refuse('unsupported head: Gemm with transA = 1', 'Gemm');
      const bias = c === undefined || c === '' ? undefined : c;
      if (bias !== undefined && !initializers.has(bias))
        refuse('unsupported head: Gemm with a computed C', 'Gemm');
      return {
        type: 'gemm',
        weight: b,
        bias,
        transB: intAttribute(node, 'transB', 0) !== 0,
        alpha: floatAttribute(node, 'alpha', 1),
        beta: floatAttribute(node, 'beta', 1),
      };
    }
    case 'Relu':
      return { type: 'relu' };
    case 'Sigmoid':
      return { type: 'sigmoid' };
    case 'Tanh':
      return { type: 'tanh' };
    case 'Softmax': {
      // Before opset 13 the default axis is 1, the last axis of a [batch, classes] tensor too.
      const axis = intAttribute(node, 'axis', opset >= 13 ? -1 : 1);
      if (axis !== -1 && axis !== 1) refuse(`unsupported head: Softmax over axis ${axis}`, 'Softmax');
      return { type: 'softmax' };
    }
    default:
      return refuse(
        `unsupported head op ${node.opType ?? '?'} (node '${node.name ?? ''}'): the trainer supports ${SUPPORTED_HEAD_OPS.join(', ')}`,
        node.opType ?? '',
      );
  }
}

function isSupported(op: string | null | undefined): boolean {
  return (SUPPORTED_HEAD_OPS as readonly string[]).includes(op ?? '');
}

/** Width of the tensor after `op`, given the width before it. */
function widthAfter(op: HeadOp, width: number, parameters: ReadonlyMap<string, FloatInitializer>): number {
  const dims = (name: string): readonly number[] => parameters.get(name)?.dims ?? [];
  switch (op.type) {
    case 'matmul': {
      const [rows, cols] = dims(op.weight);
      if (dims(op.weight).length !== 2 || rows !== width) {
        refuse(
          `MatMul weight '${op.weight}' has dims [${dims(op.weight).join(', ')}], the activation is ${width} wide`,
        );
      }
      return cols!;
    }
    case 'gemm': {
      const d = dims(op.weight);
      const [inner, outer] = op.transB ? [d[1], d[0]] : [d[0], d[1]];
      if (d.length !== 2 || inner !== width) {
        refuse(`Gemm weight '${op.weight}' has dims [${d.join(', ')}], the activation is ${width} wide`);
      }
      if (op.bias !== undefined) checkBias(op.bias, outer!, parameters);
      return outer!;
    }
    case 'add':
      checkBias(op.bias, width, parameters);
      return width;
    case 'relu':
    case 'sigmoid':
    case 'tanh':
    case 'softmax':
      return width;
  }
}

function checkBias(name: string, width: number, parameters: ReadonlyMap<string, FloatInitializer>): void {
  const size = parameters.get(name)?.data.length ?? 0;
  if (size !== width && size !== 1) {
    refuse(
      `bias '${name}' holds ${size} values; the activation is ${width} wide (a bias broadcasts over the last axis)`,
    );
  }
}

function parameterNames(op: HeadOp): string[] {
  switch (op.type) {
    case 'matmul':
      return [op.weight];
    case 'add':
      return [op.bias];
    case 'gemm':
      return op.bias === undefined ? [op.weight] : [op.weight, op.bias];
    case 'relu':
    case 'sigmoid':
    case 'tanh':
    case 'softmax':
      return [];
  }
}

/** The graph pruned to what computes `featureName`, with `featureName` its only output. */
function featurizerGraph(model: OnnxTypes.ModelProto, featureName: string): Uint8Array {
  const graph = model.graph!;
  const needed = new Set([featureName]);
  const kept: NodeProto[] = [];
  for (const node of [...(graph.node ?? [])].reverse()) {
    if (!(node.output ?? []).some((o) => needed.has(o))) continue;
    kept.unshift(node);
    for (const input of node.input ?? []) if (input !== '') needed.add(input);
  }
  const pruned: OnnxTypes.IModelProto = {
    ...model,
    graph: {
      ...graph,
      node: kept,
      initializer: (graph.initializer ?? []).filter((t) => needed.has(t.name ?? '')),
      input: (graph.input ?? []).filter((i) => needed.has(i.name ?? '')),
      output: [{ name: featureName, type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT } } }],
      valueInfo: [],
    },
  };
  return writeModel(pruned);
}

/**
 * Analyses a model's head. `trainable` names the initializers training may change (the
 * manifest's `trainable`). INVALID_INPUT when the head has an unsupported op (named), when a
 * trainable name is missing or outside the head, or when shapes do not chain.
 */
export function analyseHead(modelBytes: Uint8Array, trainable: readonly string[]): HeadPlan {
  if (trainable.length === 0) refuse('the model names no trainable initializers');
  const model = readModel(modelBytes);
  const graph = model.graph!;
  const opset = toNumber(model.opsetImport?.find((o) => (o.domain ?? '') === '')?.version ?? 17);
  const initializers = new Set((graph.initializer ?? []).map((t) => t.name ?? ''));
  for (const name of trainable) {
    if (!initializers.has(name)) refuse(`trainable initializer '${name}' is not in the model`);
  }
  const trainableSet = new Set(trainable);
  const nodes = graph.node ?? [];
  const first = nodes.find((n) => (n.input ?? []).some((i) => trainableSet.has(i)));
  if (!first) refuse('no node consumes a trainable initializer');
  const featureName = (first.input ?? []).find((i) => i !== '' && !initializers.has(i));
  if (featureName === undefined) refuse(`node '${first.name ?? ''}' has no computed input to train from`);

  const outputs = new Set((graph.output ?? []).map((o) => o.name ?? ''));
  const ops: HeadOp[] = [];
  let current = featureName;
  for (;;) {
    const consumers = nodes.filter((n) => (n.input ?? []).includes(current));
    const supported = consumers.filter((n) => isSupported(n.opType));
    const ended = ops.at(-1)?.type === 'softmax';
    if (outputs.has(current) && (ended || supported.length === 0)) break;
    if (supported.length === 0) {
      const op = consumers[0]?.opType;
      if (op === undefined) refuse(`tensor '${current}' leads to no graph output`);
      toHeadOp(consumers[0]!, current, initializers, opset); // throws, naming the op
    }
    if (consumers.length !== 1) {
      refuse(
        `unsupported head: tensor '${current}' feeds ${consumers.length} nodes (the head must be a chain)`,
      );
    }
    if (ended) refuse('unsupported head: Softmax must be the last op of the head', 'Softmax');
    const node = consumers[0]!;
    ops.push(toHeadOp(node, current, initializers, opset));
    const next = (node.output ?? [])[0];
    if (next === undefined || next === '') refuse(`node '${node.name ?? ''}' has no output`);
    current = next;
  }

  const used = [...new Set(ops.flatMap(parameterNames))];
  for (const name of trainable) {
    if (!used.includes(name))
      refuse(`trainable initializer '${name}' is not part of the head after '${featureName}'`);
  }
  const parameters = new Map(readFloatInitializers(modelBytes, used).map((p) => [p.name, p]));
  const firstWeight = ops[0];
  if (!firstWeight || (firstWeight.type !== 'matmul' && firstWeight.type !== 'gemm')) {
    refuse(`unsupported head: it must start with MatMul or Gemm on '${featureName}'`, first.opType ?? '');
  }
  const w = parameters.get(firstWeight.weight)!.dims;
  const featureSize = (firstWeight.type === 'gemm' && firstWeight.transB ? w[1] : w[0]) ?? 0;
  let width = featureSize;
  for (const op of ops) width = widthAfter(op, width, parameters);
  const last = ops.at(-1)!;
  if (last.type === 'sigmoid' && width !== 1) {
    refuse(`a Sigmoid output must be one column wide for a two-class loss, it is ${width}`, 'Sigmoid');
  }
  const featureIsGraphInput = (graph.input ?? []).some((i) => i.name === featureName);
  return {
    featureName,
    featureIsGraphInput,
    ops,
    outputName: current,
    parameters,
    trainable: [...trainable],
    featureSize,
    classes: last.type === 'sigmoid' ? 2 : width,
    featurizerBytes: featureIsGraphInput ? undefined : featurizerGraph(model, featureName),
  };
}

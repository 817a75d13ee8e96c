/**
 * The global model of a run between rounds: its trainable tensors as float32 layers, converted to
 * and from the wire's {@link FlTensor}, and kept in the artifacts object store by sha256 (the run
 * record holds the digest), together with the run's server state (a streaming strategy's buffers,
 * the adaptive DP clip norm), so a coordinator that takes a run over continues from exactly the
 * last closed round.
 * @module
 */
import { z } from 'zod';
import { decode, encode, flTensorSchema } from '@infermesh/protocols';
import type { FlTensor } from '@infermesh/protocols';
import type { ArtifactStore } from '@infermesh/mesh-client';
import type { RunServerState } from './run-strategy.js';

/** Name and dims of one trainable tensor. */
export interface TensorShape {
  readonly name: string;
  readonly dims: readonly number[];
}

/** The global weights: shapes in task order and one float32 layer per tensor. */
export interface GlobalWeights {
  readonly shapes: readonly TensorShape[];
  readonly layers: Float32Array[];
}

/** float32 values of a wire tensor (copied: the bytes may be unaligned views into a message). */
export function tensorValues(tensor: FlTensor): Float32Array {
  const view = new DataView(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength);
  const values = new Float32Array(tensor.data.byteLength / 4);
  for (let i = 0; i < values.length; i += 1) values[i] = view.getFloat32(i * 4, true);
  return values;
}

/** A wire tensor of float32 values. */
export function toFlTensor(shape: TensorShape, values: Float32Array): FlTensor {
  const data = new Uint8Array(values.length * 4);
  const view = new DataView(data.buffer);
  for (let i = 0; i < values.length; i += 1) view.setFloat32(i * 4, values[i]!, true);
  return { name: shape.name, dims: [...shape.dims], data };
}

/** The weights as wire tensors, in task order. */
export function toFlTensors(weights: GlobalWeights): FlTensor[] {
  return weights.shapes.map((shape, i) => toFlTensor(shape, weights.layers[i]!));
}

const storedWeightsSchema = z.object({ tensors: z.array(flTensorSchema) });
const storedStateSchema = z.object({
  round: z.number().int().nonnegative(),
  buffers: z.record(z.string(), z.array(flTensorSchema)),
  /** Absent in states stored before the clip norm was kept, and without adaptive clipping. */
  adaptiveClipNorm: z.number().positive().optional(),
});

/** Stores the weights; resolves with their digest. */
export async function storeWeights(artifacts: ArtifactStore, weights: GlobalWeights): Promise<string> {
  const bytes = encode(storedWeightsSchema, { tensors: toFlTensors(weights) }, 'global weights');
  return (await artifacts.putBytes(bytes)).artifact.sha256;
}

/** Loads weights stored by {@link storeWeights}. */
export async function loadWeights(artifacts: ArtifactStore, sha256: string): Promise<GlobalWeights> {
  const { tensors } = decode(storedWeightsSchema, await artifacts.readAll(sha256), 'global weights');
  return {
    shapes: tensors.map((t) => ({ name: t.name, dims: t.dims })),
    layers: tensors.map(tensorValues),
  };
}

/** The stored bytes of a run's server state. */
export function encodeServerState(state: RunServerState): Uint8Array {
  const buffers: Record<string, FlTensor[]> = {};
  for (const [name, layers] of Object.entries(state.buffers)) {
    buffers[name] = layers.map((layer, i) =>
      toFlTensor({ name: `${name}.${i}`, dims: [layer.length] }, layer),
    );
  }
  const clip = state.adaptiveClipNorm;
  return encode(
    storedStateSchema,
    { round: state.round, buffers, ...(clip === undefined ? {} : { adaptiveClipNorm: clip }) },
    'strategy state',
  );
}

/** A run's server state from {@link encodeServerState}'s bytes. */
export function decodeServerState(bytes: Uint8Array): RunServerState {
  const stored = decode(storedStateSchema, bytes, 'strategy state');
  const buffers: Record<string, Float32Array[]> = {};
  for (const [name, tensors] of Object.entries(stored.buffers)) buffers[name] = tensors.map(tensorValues);
  return {
    round: stored.round,
    buffers,
    ...(stored.adaptiveClipNorm === undefined ? {} : { adaptiveClipNorm: stored.adaptiveClipNorm }),
  };
}

/** Stores a run's server state; resolves with its digest. */
export async function storeServerState(artifacts: ArtifactStore, state: RunServerState): Promise<string> {
  return (await artifacts.putBytes(encodeServerState(state))).artifact.sha256;
}

/** Loads a server state stored by {@link storeServerState}. */
export async function loadServerState(artifacts: ArtifactStore, sha256: string): Promise<RunServerState> {
  return decodeServerState(await artifacts.readAll(sha256));
}

/** L2 norm of (next - current) over all layers. */
export function changeNorm(current: readonly Float32Array[], next: readonly Float32Array[]): number {
  let sum = 0;
  current.forEach((layer, l) => {
    const other = next[l]!;
    for (let i = 0; i < layer.length; i += 1) {
      const d = other[i]! - layer[i]!;
      sum += d * d;
    }
  });
  return Math.sqrt(sum);
}

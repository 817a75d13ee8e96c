/**
 * Reading and replacing float32 initializers by name: how federated learning takes the trainable
 * weights out of a model and writes a new model with updated ones (same graph, same everything
 * else, so the new file differs from the old only in those tensors).
 * @module
 */
import { invalidInput } from '@infermesh/protocols';
import { readModel, writeModel } from './model-io.js';
import { onnx, toNumber } from './onnx-proto.js';
import type { OnnxTypes } from './onnx-proto.js';

const FLOAT = onnx.TensorProto.DataType.FLOAT;

/** A float32 initializer: its name, dims and values. */
export interface FloatInitializer {
  readonly name: string;
  readonly dims: readonly number[];
  readonly data: Float32Array;
}

function floatValues(tensor: OnnxTypes.ITensorProto): Float32Array {
  const raw = tensor.rawData;
  if (raw && raw.length > 0) {
    // Copy: raw data is little-endian and may sit at any offset of the decoded buffer.
    const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    return Float32Array.from({ length: raw.byteLength / 4 }, (_, i) => view.getFloat32(i * 4, true));
  }
  return Float32Array.from(tensor.floatData ?? []);
}

function littleEndianBytes(values: Float32Array): Uint8Array {
  const out = new Uint8Array(values.length * 4);
  const view = new DataView(out.buffer);
  for (let i = 0; i < values.length; i++) view.setFloat32(i * 4, values[i] as number, true);
  return out;
}

function initializerMap(model: OnnxTypes.IModelProto): Map<string, OnnxTypes.ITensorProto> {
  return new Map((model.graph?.initializer ?? []).map((t) => [t.name ?? '', t]));
}

function floatInitializer(tensor: OnnxTypes.ITensorProto | undefined, name: string): FloatInitializer {
  if (!tensor) throw invalidInput(`the model has no initializer ${JSON.stringify(name)}`, { name });
  if (tensor.dataType !== FLOAT) {
    throw invalidInput(`initializer ${JSON.stringify(name)} is not float32`, { name });
  }
  const dims = (tensor.dims ?? []).map((d) => toNumber(d));
  const data = floatValues(tensor);
  const expected = dims.reduce((a, b) => a * b, 1);
  if (data.length !== expected) {
    throw invalidInput(
      `initializer ${JSON.stringify(name)} holds ${data.length} values, dims say ${expected}`,
    );
  }
  return { name, dims, data };
}

/**
 * The float32 initializers `names` of a model, in that order. INVALID_INPUT when one is missing or
 * not float32.
 */
export function readFloatInitializers(modelBytes: Uint8Array, names: readonly string[]): FloatInitializer[] {
  const tensors = initializerMap(readModel(modelBytes));
  return names.map((name) => floatInitializer(tensors.get(name), name));
}

/**
 * The model with the named float32 initializers replaced (stored as raw little-endian data). Each
 * replacement must keep its initializer's dims; INVALID_INPUT otherwise, or when one is missing.
 */
export function replaceFloatInitializers(
  modelBytes: Uint8Array,
  replacements: readonly { name: string; data: Float32Array }[],
): Uint8Array {
  const model = readModel(modelBytes);
  const tensors = initializerMap(model);
  for (const { name, data } of replacements) {
    const tensor = tensors.get(name);
    const current = floatInitializer(tensor, name);
    if (data.length !== current.data.length) {
      throw invalidInput(
        `initializer ${JSON.stringify(name)} needs ${current.data.length} values (dims [${current.dims.join(', ')}]), got ${data.length}`,
        { name },
      );
    }
    tensor!.floatData = [];
    tensor!.rawData = littleEndianBytes(data);
  }
  return writeModel(model);
}

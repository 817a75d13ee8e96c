/**
 * Labelled examples (`{ inputs: { <name>: <value of one example> }, label }`, the format of
 * protocols' `labelledExampleSchema`) against a model's signature: checking one example (every
 * input present, values of the input's datatype, the input's shape without its batch axis, the
 * label within the class count), and stacking examples into batched input tensors.
 * @module
 */
import { invalidInput } from '@infermesh/protocols';
import type { Datatype, ExampleValue, LabelledExample, NumericArray } from '@infermesh/protocols';
import { createTensor } from '@infermesh/runtime';
import type { ModelSignature, Tensor, TensorSpec } from '@infermesh/runtime';

const INTEGER_TYPES: ReadonlySet<Datatype> = new Set([
  'UINT8',
  'UINT16',
  'UINT32',
  'UINT64',
  'INT8',
  'INT16',
  'INT32',
  'INT64',
]);

/** The shape of a nested value (rectangular), or a description of why it has none. */
function shapeOf(value: ExampleValue): number[] | string {
  if (!Array.isArray(value)) return [];
  const items = value as readonly ExampleValue[];
  if (items.length === 0) return [0];
  const inner = shapeOf(items[0]!);
  if (typeof inner === 'string') return inner;
  for (const item of items) {
    const other = shapeOf(item);
    if (typeof other === 'string') return other;
    if (other.join(',') !== inner.join(',')) return 'nested arrays are not rectangular';
  }
  return [items.length, ...inner];
}

function leaves(value: ExampleValue, out: (string | number | boolean)[] = []): (string | number | boolean)[] {
  if (Array.isArray(value)) for (const item of value as readonly ExampleValue[]) leaves(item, out);
  else out.push(value as string | number | boolean);
  return out;
}

function leafProblem(dtype: Datatype, leaf: string | number | boolean): string | undefined {
  if (dtype === 'BYTES') return typeof leaf === 'string' ? undefined : 'a BYTES input takes strings';
  if (dtype === 'BOOL') {
    return typeof leaf === 'boolean' || leaf === 0 || leaf === 1
      ? undefined
      : 'a BOOL input takes true/false';
  }
  if (typeof leaf !== 'number' || !Number.isFinite(leaf)) return `a ${dtype} input takes finite numbers`;
  if (INTEGER_TYPES.has(dtype) && !Number.isInteger(leaf)) return `a ${dtype} input takes integers`;
  return undefined;
}

function checkValue(spec: TensorSpec, value: ExampleValue, where: string): void {
  const shape = shapeOf(value);
  if (typeof shape === 'string') throw invalidInput(`${where}: ${shape}`);
  if (!spec.unknownRank) {
    const expected = spec.shape.slice(1);
    if (shape.length !== expected.length) {
      throw invalidInput(
        `${where}: expected rank ${expected.length} without the batch axis (shape [${expected.map((d) => d ?? '?').join(', ')}]), got [${shape.join(', ')}]`,
      );
    }
    expected.forEach((dim, axis) => {
      if (typeof dim === 'number' && shape[axis] !== dim) {
        throw invalidInput(`${where}: axis ${axis + 1} must be ${dim}, got ${shape[axis]}`);
      }
    });
  }
  for (const leaf of leaves(value)) {
    const problem = leafProblem(spec.datatype, leaf);
    if (problem) throw invalidInput(`${where}: ${problem}, got ${JSON.stringify(leaf)}`);
  }
}

/**
 * Checks one example against `signature` (and the label against `classes` when known).
 * INVALID_INPUT naming the example `index` and the input.
 */
export function validateExample(
  signature: ModelSignature,
  example: LabelledExample,
  index: number,
  classes?: number,
): void {
  const names = new Set(signature.inputs.map((s) => s.name));
  for (const name of Object.keys(example.inputs)) {
    if (!names.has(name)) {
      throw invalidInput(
        `example ${index}: unknown input '${name}' (the model's inputs are ${[...names].join(', ')})`,
        { example: index },
      );
    }
  }
  for (const spec of signature.inputs) {
    const value = example.inputs[spec.name];
    if (value === undefined)
      throw invalidInput(`example ${index}: input '${spec.name}' is missing`, { example: index });
    checkValue(spec, value, `example ${index}, input '${spec.name}'`);
  }
  if (!Number.isInteger(example.label) || example.label < 0) {
    throw invalidInput(`example ${index}: label must be a class index (integer >= 0)`, { example: index });
  }
  if (classes !== undefined && example.label >= classes) {
    throw invalidInput(
      `example ${index}: label ${example.label} is not a class index (the model has ${classes} classes)`,
      {
        example: index,
      },
    );
  }
}

function typedArray(dtype: Datatype, values: readonly (number | boolean)[]): NumericArray {
  const numbers = values.map((v) => (typeof v === 'boolean' ? (v ? 1 : 0) : v));
  switch (dtype) {
    case 'FP32':
      return Float32Array.from(numbers);
    case 'FP64':
      return Float64Array.from(numbers);
    case 'INT8':
      return Int8Array.from(numbers);
    case 'INT16':
      return Int16Array.from(numbers);
    case 'INT32':
      return Int32Array.from(numbers);
    case 'INT64':
      return BigInt64Array.from(numbers.map((n) => BigInt(n)));
    case 'UINT8':
    case 'BOOL':
      return Uint8Array.from(numbers);
    case 'UINT16':
      return Uint16Array.from(numbers);
    case 'UINT32':
      return Uint32Array.from(numbers);
    case 'UINT64':
      return BigUint64Array.from(numbers.map((n) => BigInt(n)));
    case 'FP16':
    case 'BYTES':
      throw invalidInput(`examples cannot feed ${dtype} inputs as numbers`);
  }
}

/**
 * The examples stacked along a new batch axis, one tensor per input of `signature`. The examples
 * must have been validated; INVALID_INPUT when their values differ in shape.
 */
export function batchInputs(
  signature: ModelSignature,
  examples: readonly LabelledExample[],
): Record<string, Tensor> {
  const tensors: Record<string, Tensor> = {};
  for (const spec of signature.inputs) {
    const values = examples.map((e) => e.inputs[spec.name]!);
    const inner = shapeOf(values[0]!);
    if (typeof inner === 'string') throw invalidInput(`input '${spec.name}': ${inner}`);
    values.forEach((value, i) => {
      const shape = shapeOf(value);
      if (typeof shape === 'string' || shape.join(',') !== inner.join(',')) {
        throw invalidInput(`example ${i}, input '${spec.name}': its shape differs from example 0's`);
      }
    });
    const shape = [examples.length, ...inner];
    const flat = values.flatMap((v) => leaves(v));
    tensors[spec.name] =
      spec.datatype === 'BYTES'
        ? createTensor('BYTES', shape, flat as string[])
        : createTensor(spec.datatype, shape, typedArray(spec.datatype, flat as (number | boolean)[]));
  }
  return tensors;
}

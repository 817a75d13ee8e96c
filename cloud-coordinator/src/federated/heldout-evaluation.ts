/**
 * Evaluates a model on the operator's held-out examples (the shared labelled-example format) with
 * ONNX Runtime: examples are batched per model input from the session's signature, the predicted
 * class is the argmax of the class-score output, accuracy counts argmax == label, and the loss is
 * the mean cross-entropy of the probabilities (softmax first when the output holds logits).
 * @module
 */
import { invalidInput } from '@infermesh/protocols';
import type { ExampleValue, FlEvaluation, LabelledExample } from '@infermesh/protocols';
import { createSession, createTensor, tensorArray } from '@infermesh/runtime';
import type { ModelSession, Tensor, TensorSpec } from '@infermesh/runtime';

/** Examples per `session.run`. */
export const EVALUATION_BATCH_SIZE = 64;
/** Output preferred for class scores. */
const PROBABILITIES_OUTPUT = 'probabilities';
const LOG_EPSILON = 1e-12;

function flatten(value: ExampleValue, into: number[]): void {
  if (Array.isArray(value)) for (const v of value as readonly ExampleValue[]) flatten(v, into);
  else into.push(typeof value === 'boolean' ? Number(value) : Number(value));
}

/** One input tensor for a batch of examples. */
function batchTensor(spec: TensorSpec, examples: readonly LabelledExample[]): Tensor {
  const values = examples.map((e) => {
    const value = e.inputs[spec.name];
    if (value === undefined) throw invalidInput(`a held-out example lacks input '${spec.name}'`);
    return value;
  });
  if (spec.datatype === 'BYTES') {
    return createTensor(
      'BYTES',
      [examples.length],
      values.map((v) => (typeof v === 'string' ? v : JSON.stringify(v))),
    );
  }
  const flat: number[] = [];
  for (const v of values) flatten(v, flat);
  const perExample = flat.length / examples.length;
  const inner = spec.shape.slice(1).map((d) => (typeof d === 'number' && d >= 0 ? d : -1));
  const known = inner.filter((d) => d >= 0).reduce((a, b) => a * b, 1);
  const shape = [examples.length, ...inner.map((d) => (d >= 0 ? d : perExample / known))];
  const dtype = spec.datatype;
  const typed =
    dtype === 'FP64'
      ? Float64Array.from(flat)
      : dtype === 'INT64'
        ? BigInt64Array.from(flat.map((n) => BigInt(Math.trunc(n))))
        : dtype === 'INT32'
          ? Int32Array.from(flat)
          : Float32Array.from(flat);
  return createTensor(
    dtype === 'FP64' || dtype === 'INT64' || dtype === 'INT32' ? dtype : 'FP32',
    shape,
    typed,
  );
}

/** The output holding class scores: `probabilities`, else the first rank-2 float output. */
function scoreOutput(session: ModelSession): string {
  const outputs = session.signature.outputs;
  const named = outputs.find((o) => o.name === PROBABILITIES_OUTPUT);
  const chosen =
    named ?? outputs.find((o) => (o.datatype === 'FP32' || o.datatype === 'FP64') && o.shape.length === 2);
  if (!chosen) throw invalidInput('the model has no [batch, classes] float output to evaluate');
  return chosen.name;
}

/** Class probabilities of one row (softmax unless the row already is a distribution). */
function probabilitiesOf(row: readonly number[]): number[] {
  const sum = row.reduce((a, b) => a + b, 0);
  if (row.every((v) => v >= 0 && v <= 1) && Math.abs(sum - 1) < 1e-3) return [...row];
  const max = Math.max(...row);
  const exps = row.map((v) => Math.exp(v - max));
  const total = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => e / total);
}

/** Accuracy and cross-entropy of `model` on `examples`. */
export async function evaluateOnHeldout(
  model: Uint8Array,
  examples: readonly LabelledExample[],
  intraOpNumThreads = 1,
): Promise<FlEvaluation> {
  const session = await createSession(model, { intraOpNumThreads });
  try {
    const output = scoreOutput(session);
    let correct = 0;
    let loss = 0;
    for (let start = 0; start < examples.length; start += EVALUATION_BATCH_SIZE) {
      const batch = examples.slice(start, start + EVALUATION_BATCH_SIZE);
      const inputs: Record<string, Tensor> = {};
      for (const spec of session.signature.inputs) inputs[spec.name] = batchTensor(spec, batch);
      const result = (await session.run(inputs, [output]))[output]!;
      const scores = Array.from(tensorArray(result) as ArrayLike<number>, Number);
      const classes = scores.length / batch.length;
      batch.forEach((example, i) => {
        const p = probabilitiesOf(scores.slice(i * classes, (i + 1) * classes));
        let best = 0;
        for (let c = 1; c < classes; c += 1) if (p[c]! > p[best]!) best = c;
        if (best === example.label) correct += 1;
        loss -= Math.log(Math.max(p[example.label] ?? 0, LOG_EPSILON));
      });
    }
    return { accuracy: correct / examples.length, loss: loss / examples.length, examples: examples.length };
  } finally {
    await session.release();
  }
}

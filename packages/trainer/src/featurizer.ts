/**
 * Featurisation of labelled examples: the frozen part of the model (everything before the head)
 * run with ONNX Runtime on the pruned graph of {@link HeadPlan.featurizerBytes}, giving one sparse
 * feature row per example. Features do not depend on the trainable weights, so they are computed
 * once per example and cached (keyed by a hash of the example's inputs).
 * @module
 */
import { createHash } from 'node:crypto';
import { invalidInput } from '@infermesh/protocols';
import type { LabelledExample } from '@infermesh/protocols';
import { createSession, tensorArray } from '@infermesh/runtime';
import type { ModelSession, ModelSignature, SessionOptions } from '@infermesh/runtime';
import { batchInputs, validateExample } from './example-tensors.js';
import type { HeadPlan } from './head-graph.js';
import type { FeatureRow } from './head-network.js';

/** Examples per featurisation run. */
export const FEATURISE_BATCH_SIZE = 64;
/** Feature rows kept in the cache before the oldest are forgotten. */
export const DEFAULT_MAX_CACHED_FEATURES = 50_000;

export interface FeaturizerOptions {
  readonly session?: SessionOptions;
  readonly maxCachedFeatures?: number;
}

function sparseRow(values: ArrayLike<number>, offset: number, width: number): FeatureRow {
  let nonZero = 0;
  for (let i = 0; i < width; i += 1) if (values[offset + i] !== 0) nonZero += 1;
  const indices = new Uint32Array(nonZero);
  const kept = new Float32Array(nonZero);
  let k = 0;
  for (let i = 0; i < width; i += 1) {
    const v = values[offset + i]!;
    if (v === 0) continue;
    indices[k] = i;
    kept[k] = v;
    k += 1;
  }
  return { indices, values: kept };
}

function exampleKey(example: LabelledExample): string {
  return createHash('sha1').update(JSON.stringify(example.inputs)).digest('base64');
}

/** Turns examples into feature rows, caching them. */
export class Featurizer {
  /** The inputs an example must carry. */
  readonly signature: ModelSignature;
  readonly #plan: HeadPlan;
  readonly #session: ModelSession | undefined;
  readonly #cache = new Map<string, FeatureRow>();
  readonly #maxCached: number;

  private constructor(plan: HeadPlan, session: ModelSession | undefined, maxCached: number) {
    this.#plan = plan;
    this.#session = session;
    this.#maxCached = maxCached;
    this.signature = session?.signature ?? {
      inputs: [{ name: plan.featureName, datatype: 'FP32', shape: ['batch', plan.featureSize] }],
      outputs: [],
    };
  }

  static async create(plan: HeadPlan, options: FeaturizerOptions = {}): Promise<Featurizer> {
    const session = plan.featurizerBytes
      ? await createSession(plan.featurizerBytes, options.session)
      : undefined;
    return new Featurizer(plan, session, options.maxCachedFeatures ?? DEFAULT_MAX_CACHED_FEATURES);
  }

  /** Cached feature rows. */
  get cached(): number {
    return this.#cache.size;
  }

  /** Validates every example (INVALID_INPUT naming its index), then returns its feature row. */
  async featurise(examples: readonly LabelledExample[]): Promise<FeatureRow[]> {
    examples.forEach((example, index) => validateExample(this.signature, example, index, this.#plan.classes));
    const keys = examples.map(exampleKey);
    const rows = new Map<string, FeatureRow>();
    const missing = new Map<string, LabelledExample>();
    keys.forEach((key, i) => {
      const row = this.#cache.get(key);
      if (row) rows.set(key, row);
      else missing.set(key, examples[i]!);
    });
    const pending = [...missing];
    for (let start = 0; start < pending.length; start += FEATURISE_BATCH_SIZE) {
      const batch = pending.slice(start, start + FEATURISE_BATCH_SIZE);
      const computed = await this.#compute(batch.map(([, example]) => example));
      batch.forEach(([key], i) => {
        rows.set(key, computed[i]!);
        this.#remember(key, computed[i]!);
      });
    }
    return keys.map((key) => rows.get(key)!);
  }

  async release(): Promise<void> {
    await this.#session?.release();
  }

  #remember(key: string, row: FeatureRow): void {
    this.#cache.set(key, row);
    while (this.#cache.size > this.#maxCached) {
      const oldest = this.#cache.keys().next().value;
      if (oldest === undefined) break;
      this.#cache.delete(oldest);
    }
  }

  async #compute(examples: readonly LabelledExample[]): Promise<FeatureRow[]> {
    const width = this.#plan.featureSize;
    const inputs = batchInputs(this.signature, examples);
    let values: ArrayLike<number>;
    let shape: readonly number[];
    if (this.#session) {
      const name = this.#plan.featureName;
      const output = (await this.#session.runUnchecked(inputs, [name]))[name];
      if (!output) throw invalidInput(`the featurizer returned no '${name}'`);
      values = tensorArray(output) as ArrayLike<number>;
      shape = output.shape;
    } else {
      const tensor = inputs[this.#plan.featureName]!;
      values = tensorArray(tensor) as ArrayLike<number>;
      shape = tensor.shape;
    }
    if (shape.length !== 2 || shape[0] !== examples.length || shape[1] !== width) {
      throw invalidInput(
        `features '${this.#plan.featureName}' have shape [${shape.join(', ')}], expected [${examples.length}, ${width}]`,
      );
    }
    return examples.map((_, b) => sparseRow(values, b * width, width));
  }
}

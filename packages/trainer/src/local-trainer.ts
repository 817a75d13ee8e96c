/**
 * On-device training of a model's dense head: mini-batch SGD on softmax cross-entropy from the
 * round's global weights, with FedProx's proximal term when `proximalMu > 0`, seeded shuffling,
 * and a yield to the event loop between batches so the process keeps serving while it trains.
 *
 * @example
 * const trainer = await LocalTrainer.create({ modelBytes, trainable: manifest.trainable });
 * const result = await trainer.train(examples, trainer.initialWeights(), {
 *   localEpochs: 1, batchSize: 32, learningRate: 0.5, proximalMu: 0, seed: 7,
 * });
 * const trainedModel = trainer.exportModel(result.weights);
 * @module
 */
import { performance } from 'node:perf_hooks';
import { ErrorCode, InferMeshError, invalidInput } from '@infermesh/protocols';
import type { LabelledExample } from '@infermesh/protocols';
import { mulberry32, replaceFloatInitializers } from '@infermesh/onnx-tools';
import type { FloatInitializer } from '@infermesh/onnx-tools';
import type { SessionOptions } from '@infermesh/runtime';
import { Featurizer } from './featurizer.js';
import { analyseHead } from './head-graph.js';
import type { HeadPlan } from './head-graph.js';
import { headProbabilities, lossAndGradients } from './head-network.js';
import type { FeatureRow } from './head-network.js';

/** Rows per forward pass when measuring accuracy or predicting. */
const PREDICT_CHUNK = 256;

export interface LocalTrainerOptions {
  readonly modelBytes: Uint8Array;
  /** Initializers training may change (the manifest's `trainable`), in the order updates use. */
  readonly trainable: readonly string[];
  /** ONNX Runtime options of the featurisation session. */
  readonly session?: SessionOptions;
  readonly maxCachedFeatures?: number;
}

/** The hyper-parameters of one local training run (a round task's, plus its seed). */
export interface TrainingSettings {
  readonly localEpochs: number;
  readonly batchSize: number;
  readonly learningRate: number;
  /** FedProx mu; 0 for plain SGD. */
  readonly proximalMu: number;
  /** Seed of the shuffling; the same data, weights and seed give the same result. */
  readonly seed?: number;
}

export interface TrainOptions {
  readonly signal?: AbortSignal;
}

/** Global (starting) weights of a run, in trainable order. */
export interface StartingWeight {
  readonly name: string;
  readonly data: Float32Array;
}

export interface TrainingResult {
  /** Trained weights, in trainable order. */
  readonly weights: FloatInitializer[];
  /** `weights - global`, in trainable order. */
  readonly delta: Float32Array[];
  /** Mean cross-entropy over the last epoch's batches (as they were trained). */
  readonly loss: number;
  /** Accuracy on the training examples with the trained weights. */
  readonly accuracy: number;
  readonly numExamples: number;
  readonly steps: number;
  readonly trainMs: number;
}

const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function argmaxRow(probabilities: Float64Array, row: number, classes: number): number {
  let best = 0;
  for (let j = 1; j < classes; j += 1) {
    if (probabilities[row * classes + j]! > probabilities[row * classes + best]!) best = j;
  }
  return best;
}

function shuffle(order: number[], next: () => number): void {
  for (let i = order.length - 1; i > 0; i -= 1) {
    const j = Math.floor(next() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
}

/** Trains one model's head; holds its featurisation session and feature cache. */
export class LocalTrainer {
  readonly plan: HeadPlan;
  readonly #modelBytes: Uint8Array;
  readonly #featurizer: Featurizer;

  private constructor(modelBytes: Uint8Array, plan: HeadPlan, featurizer: Featurizer) {
    this.#modelBytes = modelBytes;
    this.plan = plan;
    this.#featurizer = featurizer;
  }

  /** Analyses the model (INVALID_INPUT for an unsupported head) and opens its featurizer. */
  static async create(options: LocalTrainerOptions): Promise<LocalTrainer> {
    const plan = analyseHead(options.modelBytes, options.trainable);
    const featurizer = await Featurizer.create(plan, {
      ...(options.session ? { session: options.session } : {}),
      ...(options.maxCachedFeatures !== undefined ? { maxCachedFeatures: options.maxCachedFeatures } : {}),
    });
    return new LocalTrainer(options.modelBytes, plan, featurizer);
  }

  /** Classes of the model's output. */
  get classes(): number {
    return this.plan.classes;
  }

  /** Inputs an example must carry. */
  get signature(): Featurizer['signature'] {
    return this.#featurizer.signature;
  }

  /** The model's own trainable weights, in trainable order. */
  initialWeights(): FloatInitializer[] {
    return this.plan.trainable.map((name) => {
      const p = this.plan.parameters.get(name)!;
      return { name, dims: p.dims, data: Float32Array.from(p.data) };
    });
  }

  /** Validates examples and returns their feature rows (cached). */
  features(examples: readonly LabelledExample[]): Promise<FeatureRow[]> {
    return this.#featurizer.featurise(examples);
  }

  /**
   * Trains from `global` on `examples`. INVALID_INPUT for bad examples (naming the index), weights
   * that are not the trainable tensors in order with their sizes, or bad settings.
   */
  async train(
    examples: readonly LabelledExample[],
    global: readonly StartingWeight[],
    settings: TrainingSettings,
    options: TrainOptions = {},
  ): Promise<TrainingResult> {
    const started = performance.now();
    this.#checkSettings(settings);
    if (examples.length === 0) throw invalidInput('no labelled examples to train on');
    const globalParams = this.#parameters(global);
    const params = new Map(this.#frozenParameters());
    for (const [name, data] of globalParams) params.set(name, Float64Array.from(data));
    const rows = await this.features(examples);
    const labels = examples.map((e) => e.label);
    const next = mulberry32(settings.seed ?? 0);
    const order = examples.map((_, i) => i);
    let loss = 0;
    let steps = 0;
    for (let epoch = 0; epoch < settings.localEpochs; epoch += 1) {
      shuffle(order, next);
      let epochLoss = 0;
      for (let start = 0; start < order.length; start += settings.batchSize) {
        if (options.signal?.aborted) {
          throw new InferMeshError(ErrorCode.UNAVAILABLE, 'training aborted', {
            cause: options.signal.reason,
          });
        }
        const batch = order.slice(start, start + settings.batchSize);
        const objective = lossAndGradients(
          this.plan,
          params,
          batch.map((i) => rows[i]!),
          batch.map((i) => labels[i]!),
          { proximalMu: settings.proximalMu, globalWeights: globalParams },
        );
        for (const [name, gradient] of objective.gradients) {
          const w = params.get(name)!;
          for (let k = 0; k < w.length; k += 1) w[k]! -= settings.learningRate * gradient[k]!;
        }
        epochLoss += objective.crossEntropy * batch.length;
        steps += 1;
        await yieldToEventLoop();
      }
      loss = epochLoss / order.length;
    }
    const probabilities = await this.#probabilities(rows, params);
    let correct = 0;
    labels.forEach((label, i) => {
      if (argmaxRow(probabilities, i, this.classes) === label) correct += 1;
    });
    const weights = this.plan.trainable.map((name) => ({
      name,
      dims: this.plan.parameters.get(name)!.dims,
      data: Float32Array.from(params.get(name)!),
    }));
    const delta = weights.map((w, t) => {
      const base = global[t]!.data;
      return w.data.map((v, k) => v - base[k]!);
    });
    return {
      weights,
      delta,
      loss,
      accuracy: correct / examples.length,
      numExamples: examples.length,
      steps,
      trainMs: performance.now() - started,
    };
  }

  /**
   * Class probabilities (`[examples, classes]` row-major) from the trainer's forward pass with
   * `weights` (default: the model's own).
   */
  async predict(
    examples: readonly LabelledExample[],
    weights?: readonly StartingWeight[],
  ): Promise<Float64Array> {
    const params = new Map(this.#frozenParameters());
    for (const [name, data] of this.#parameters(weights ?? this.initialWeights())) {
      params.set(name, Float64Array.from(data));
    }
    return this.#probabilities(await this.features(examples), params);
  }

  /** The model with `weights` written into its trainable initializers. */
  exportModel(weights: readonly StartingWeight[]): Uint8Array {
    this.#parameters(weights);
    return replaceFloatInitializers(this.#modelBytes, weights);
  }

  async release(): Promise<void> {
    await this.#featurizer.release();
  }

  async #probabilities(
    rows: readonly FeatureRow[],
    params: Map<string, Float64Array>,
  ): Promise<Float64Array> {
    const out = new Float64Array(rows.length * this.classes);
    for (let start = 0; start < rows.length; start += PREDICT_CHUNK) {
      out.set(
        headProbabilities(this.plan, params, rows.slice(start, start + PREDICT_CHUNK)),
        start * this.classes,
      );
      await yieldToEventLoop();
    }
    return out;
  }

  /** Every head parameter that training does not change, in float64. */
  #frozenParameters(): [string, Float64Array][] {
    const trainable = new Set(this.plan.trainable);
    return [...this.plan.parameters]
      .filter(([name]) => !trainable.has(name))
      .map(([name, p]) => [name, Float64Array.from(p.data)]);
  }

  /** Checks weights against the trainable tensors (names in order, sizes). */
  #parameters(weights: readonly StartingWeight[]): Map<string, Float32Array> {
    const names = weights.map((w) => w.name);
    if (names.join('\n') !== this.plan.trainable.join('\n')) {
      throw invalidInput(
        `weights [${names.join(', ')}] are not the model's trainable tensors [${this.plan.trainable.join(', ')}]`,
      );
    }
    return new Map(
      weights.map((w) => {
        const size = this.plan.parameters.get(w.name)!.data.length;
        if (w.data.length !== size) {
          throw invalidInput(`weight '${w.name}' holds ${w.data.length} values, the model's has ${size}`);
        }
        for (const v of w.data)
          if (!Number.isFinite(v)) throw invalidInput(`weight '${w.name}' has a non-finite value`);
        return [w.name, w.data];
      }),
    );
  }

  #checkSettings(s: TrainingSettings): void {
    if (!Number.isInteger(s.localEpochs) || s.localEpochs < 1)
      throw invalidInput('localEpochs must be an integer >= 1');
    if (!Number.isInteger(s.batchSize) || s.batchSize < 1)
      throw invalidInput('batchSize must be an integer >= 1');
    if (!(s.learningRate > 0) || !Number.isFinite(s.learningRate))
      throw invalidInput('learningRate must be > 0');
    if (!(s.proximalMu >= 0) || !Number.isFinite(s.proximalMu)) throw invalidInput('proximalMu must be >= 0');
  }
}

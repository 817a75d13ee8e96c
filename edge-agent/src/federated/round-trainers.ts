/**
 * Preparing local training for a round task: the model version to train (the task's base version
 * when this agent has it, else the serving one), a {@link LocalTrainer} for it (kept across rounds
 * so cached features are reused; released when the version changes), the check that the task's
 * weights are this model's trainable tensors (the manifest's `trainable`, else the model's
 * `infermesh.trainable` metadata; same names, order and sizes), and the examples that fit the
 * model's signature.
 * @module
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { invalidInput, isInferMeshError } from '@infermesh/protocols';
import type { FlRoundTask, LabelledExample } from '@infermesh/protocols';
import { readModel } from '@infermesh/onnx-tools';
import { LocalTrainer, validateExample } from '@infermesh/trainer';
import type { SessionOptions } from '@infermesh/runtime';
import { MODEL_FILE, versionDir } from '../models/model-directory.js';
import type { ModelRepository } from '../models/model-repository.js';
import type { ExampleStore } from './example-store.js';

/** Metadata key listing a model's trainable initializers (comma-separated), set by the demo builders. */
export const TRAINABLE_METADATA_KEY = 'infermesh.trainable';

/** Why a task is refused (the `reason` of the reply starts with one of these). */
export type RefusalReason =
  'model-missing' | 'incompatible-weights' | 'no-data' | 'busy' | 'deadline-passed' | 'unsupported';

/** A task this agent can train, or why not. */
export type Preparation =
  | {
      readonly type: 'ready';
      readonly trainer: LocalTrainer;
      readonly version: string;
      readonly examples: readonly LabelledExample[];
    }
  | { readonly type: 'refused'; readonly reason: RefusalReason; readonly detail: string };

export interface RoundTrainersOptions {
  readonly modelsDir: string;
  readonly repository: ModelRepository;
  readonly store: ExampleStore;
  readonly session?: SessionOptions;
  readonly logger: Logger;
}

function refused(reason: RefusalReason, detail: string): Preparation {
  return { type: 'refused', reason, detail };
}

function trainableOf(manifest: unknown, modelBytes: Uint8Array): string[] | undefined {
  const listed = (manifest as { trainable?: unknown } | undefined)?.trainable;
  if (Array.isArray(listed) && listed.every((n) => typeof n === 'string')) return listed;
  const metadata = readModel(modelBytes).metadataProps?.find((p) => p.key === TRAINABLE_METADATA_KEY)?.value;
  return metadata ? metadata.split(',').filter((n) => n !== '') : undefined;
}

/** Trainers per model version, and task preparation. */
export class RoundTrainers {
  readonly #o: RoundTrainersOptions;
  readonly #log: Logger;
  /** model -> the trainer of one version. */
  readonly #trainers = new Map<string, { version: string; trainer: LocalTrainer }>();

  constructor(options: RoundTrainersOptions) {
    this.#o = options;
    this.#log = options.logger.child({ component: 'agent.fl.trainers' });
  }

  /** Checks a task against the local model and data. Never throws for a refusable task. */
  async prepare(task: FlRoundTask): Promise<Preparation> {
    const { repository } = this.#o;
    const version = repository.isReady(task.model, task.baseVersion)
      ? task.baseVersion
      : repository.servingVersion(task.model);
    if (version === undefined) return refused('model-missing', `model '${task.model}' is not served here`);
    const model = repository.resolve(task.model, version);

    let trainer: LocalTrainer;
    try {
      trainer = await this.#trainer(task.model, version, model.manifest);
    } catch (err) {
      if (!isInferMeshError(err)) throw err;
      return refused('incompatible-weights', err.message);
    }
    const expected = trainer.plan.trainable;
    const names = task.weights.map((w) => w.name);
    if (names.join('\n') !== expected.join('\n')) {
      return refused(
        'incompatible-weights',
        `the task's weights [${names.join(', ')}] are not [${expected.join(', ')}]`,
      );
    }
    for (const weight of task.weights) {
      const dims = trainer.plan.parameters.get(weight.name)!.dims;
      if (weight.dims.join(',') !== dims.join(',')) {
        return refused(
          'incompatible-weights',
          `weight '${weight.name}' has dims [${weight.dims.join(', ')}], the model's are [${dims.join(', ')}]`,
        );
      }
    }

    const all = await this.#o.store.load(task.model);
    const examples = all.filter((example, index) => {
      try {
        validateExample(trainer.signature, example, index, trainer.classes);
        return true;
      } catch {
        return false;
      }
    });
    if (examples.length < all.length) {
      this.#log.warn(
        { model: task.model, skipped: all.length - examples.length },
        'examples that do not fit the model skipped',
      );
    }
    if (examples.length === 0) return refused('no-data', `no labelled examples for '${task.model}'`);
    return { type: 'ready', trainer, version, examples };
  }

  /** Releases every trainer. */
  async release(): Promise<void> {
    const trainers = [...this.#trainers.values()];
    this.#trainers.clear();
    await Promise.all(trainers.map((t) => t.trainer.release()));
  }

  async #trainer(model: string, version: string, manifest: unknown): Promise<LocalTrainer> {
    const current = this.#trainers.get(model);
    if (current?.version === version) return current.trainer;
    const modelBytes = new Uint8Array(
      await readFile(join(versionDir(this.#o.modelsDir, model, version), MODEL_FILE)),
    );
    const trainable = trainableOf(manifest, modelBytes);
    if (!trainable || trainable.length === 0) {
      throw invalidInput(
        `model '${model}' names no trainable tensors (manifest 'trainable' or '${TRAINABLE_METADATA_KEY}' metadata)`,
      );
    }
    const trainer = await LocalTrainer.create({
      modelBytes,
      trainable,
      ...(this.#o.session ? { session: this.#o.session } : {}),
    });
    this.#trainers.set(model, { version, trainer });
    if (current) await current.trainer.release();
    return trainer;
  }
}

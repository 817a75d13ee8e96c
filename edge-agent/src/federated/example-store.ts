/**
 * The agent's labelled examples for federated training: one JSONL file per model under the
 * feedback directory (what `POST /v1/feedback` received), plus the operator's own example file per
 * model (`trainingData`, read-only). Examples never leave the device; only updates trained on them
 * do.
 *
 * Durability: an append is written and fsynced before it is acknowledged. The store keeps at most
 * `maxExamplesPerModel` per model; past it the oldest are dropped by writing the kept lines to a
 * temporary file, fsyncing it and renaming it over the old one, so a crash leaves either file
 * whole. A torn last line (a crash mid-append) is skipped when reading.
 * @module
 */
import { createReadStream } from 'node:fs';
import { mkdir, open, readFile, rename, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Logger } from 'pino';
import { formatExampleLine, parseExampleLines } from '@infermesh/protocols';
import type { LabelledExample } from '@infermesh/protocols';

/** Suffix of each model's feedback file. */
export const FEEDBACK_FILE_SUFFIX = '.jsonl';

export interface ExampleStoreOptions {
  /** Directory of `<model>.jsonl` files (created on first write). */
  readonly dir: string;
  readonly maxExamplesPerModel: number;
  /** Operator-provided example files per model (JSONL, read-only). */
  readonly trainingData?: Readonly<Record<string, string>>;
  readonly logger: Logger;
}

/** The outcome of an append. */
export interface AppendResult {
  readonly accepted: number;
  readonly stored: number;
  readonly dropped: number;
}

async function countLines(path: string): Promise<number> {
  try {
    await stat(path);
  } catch {
    return 0;
  }
  let lines = 0;
  const reader = createInterface({ input: createReadStream(path, 'utf8'), crlfDelay: Infinity });
  for await (const line of reader) if (line.trim() !== '') lines += 1;
  return lines;
}

async function readText(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw err;
  }
}

/** Labelled examples per model, on disk. */
export class ExampleStore {
  readonly #o: ExampleStoreOptions;
  readonly #log: Logger;
  readonly #counts = new Map<string, number>();
  /** One write at a time per model. */
  readonly #locks = new Map<string, Promise<unknown>>();

  constructor(options: ExampleStoreOptions) {
    this.#o = options;
    this.#log = options.logger.child({ component: 'agent.examples' });
  }

  /** The feedback file of a model. */
  feedbackFile(model: string): string {
    return join(this.#o.dir, `${model}${FEEDBACK_FILE_SUFFIX}`);
  }

  /** Examples received through feedback for `model` (not counting the training-data file). */
  async storedCount(model: string): Promise<number> {
    return this.#serialised(model, () => this.#count(model));
  }

  /** Appends examples (already validated), dropping the oldest past the cap. */
  append(model: string, examples: readonly LabelledExample[]): Promise<AppendResult> {
    return this.#serialised(model, async () => {
      const cap = this.#o.maxExamplesPerModel;
      const before = await this.#count(model);
      const lines = examples.map(formatExampleLine);
      await mkdir(this.#o.dir, { recursive: true });
      const path = this.feedbackFile(model);
      if (before + lines.length <= cap) {
        const file = await open(path, 'a+');
        try {
          // A crash mid-append can leave a torn last line: start on a fresh line, so the torn
          // line stays one invalid line (skipped on read) instead of swallowing this example.
          const { size } = await file.stat();
          const last = Buffer.alloc(1);
          if (size > 0 && (await file.read(last, 0, 1, size - 1)).bytesRead === 1 && last[0] !== 0x0a) {
            lines[0] = `\n${lines[0] ?? ''}`;
          }
          await file.write(lines.join(''));
          await file.sync();
        } finally {
          await file.close();
        }
        this.#counts.set(model, before + lines.length);
        return { accepted: examples.length, stored: before + lines.length, dropped: 0 };
      }
      const old = (await readText(path)).split('\n').filter((l) => l.trim() !== '');
      const all = [...old.map((l) => `${l}\n`), ...lines];
      const kept = all.slice(all.length - cap);
      const temporary = `${path}.tmp`;
      const file = await open(temporary, 'w');
      try {
        await file.write(kept.join(''));
        await file.sync();
      } finally {
        await file.close();
      }
      await rename(temporary, path);
      await this.#syncDir();
      this.#counts.set(model, kept.length);
      const dropped = all.length - kept.length;
      this.#log.info(
        { model, dropped, stored: kept.length },
        'feedback cap reached: oldest examples dropped',
      );
      return { accepted: examples.length, stored: kept.length, dropped };
    });
  }

  /**
   * Every example for `model`: the training-data file's, then those received through feedback.
   * Invalid lines are skipped (and logged).
   */
  async load(model: string): Promise<LabelledExample[]> {
    const sources = [this.#o.trainingData?.[model], this.feedbackFile(model)].filter(
      (p): p is string => p !== undefined,
    );
    const examples: LabelledExample[] = [];
    for (const path of sources) {
      const parsed = parseExampleLines(await readText(path));
      if (parsed.invalid.length > 0) {
        this.#log.warn(
          { model, path, invalid: parsed.invalid.length, first: parsed.invalid[0] },
          'skipped invalid example lines',
        );
      }
      examples.push(...parsed.examples);
    }
    return examples;
  }

  async #count(model: string): Promise<number> {
    let count = this.#counts.get(model);
    if (count === undefined) {
      count = await countLines(this.feedbackFile(model));
      this.#counts.set(model, count);
    }
    return count;
  }

  async #syncDir(): Promise<void> {
    try {
      const dir = await open(this.#o.dir, 'r');
      try {
        await dir.sync();
      } finally {
        await dir.close();
      }
    } catch {
      // Some platforms cannot fsync a directory; the rename is still atomic.
    }
  }

  #serialised<T>(model: string, work: () => Promise<T>): Promise<T> {
    const previous = this.#locks.get(model) ?? Promise.resolve();
    const next = previous.then(work, work);
    const settled = next.catch(() => undefined);
    this.#locks.set(model, settled);
    void settled.then(() => {
      if (this.#locks.get(model) === settled) this.#locks.delete(model);
    });
    return next;
  }
}

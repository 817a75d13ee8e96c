/**
 * How the CLI shows a rollout: a few lines of progress (state, each step with its cohort and how
 * many serve the version, the last gate, the newest event), redrawn in place on a terminal and
 * printed as one line per change elsewhere; and {@link followRollout}, which polls the admin API
 * until the rollout ends (or pauses), riding out a coordinator restart.
 * @module
 */
import { ErrorCode, isInferMeshError, rolloutCounts } from '@infermesh/protocols';
import type { Rollout } from '@infermesh/protocols';
import type { RolloutClient } from './rollout-client.js';

/** Time between two polls while following a rollout (ms). */
export const DEFAULT_FOLLOW_INTERVAL_MS = 1_000;
/** How long a follow keeps retrying while the admin API is UNAVAILABLE (a coordinator restarting), ms. */
export const DEFAULT_FOLLOW_RETRY_MS = 60_000;
/** First pause after an UNAVAILABLE answer; it doubles up to {@link MAX_FOLLOW_BACKOFF_MS}. */
const FIRST_FOLLOW_BACKOFF_MS = 250;
const MAX_FOLLOW_BACKOFF_MS = 5_000;

const pct = (rate: number | undefined): string => (rate === undefined ? '-' : `${(rate * 100).toFixed(2)}%`);

/** The progress lines of a rollout. */
export function rolloutLines(r: Rollout): string[] {
  const counts = rolloutCounts(r);
  const lines = [
    `${r.id}  ${r.spec.model}@${r.spec.version}  ${r.state}${r.state === 'running' ? ` (${r.phase})` : ''}  ` +
      `${counts.ready}/${r.targets} agents serve it`,
  ];
  for (const [index, step] of r.steps.entries()) {
    const mark =
      step.passedAt !== undefined ? 'passed' : index === r.step && r.state === 'running' ? r.phase : '';
    const other = (['failed', 'restored', 'skipped'] as const)
      .filter((state) => step.counts[state] > 0)
      .map((state) => `${step.counts[state]} ${state}`);
    lines.push(
      `  ${index === r.step ? '>' : ' '} ${step.kind} ${step.percent}%: ${step.counts.ready}/${step.agents} ${mark}${other.length > 0 ? ` (${other.join(', ')})` : ''}`.trimEnd(),
    );
  }
  if (r.lastGate) {
    const g = r.lastGate;
    lines.push(
      `  gate ${g.verdict}: cohort ${g.cohort.requests + g.cohort.errors} req, errors ${pct(g.cohort.errorRate)}` +
        `${g.cohort.p95Ms !== undefined ? `, p95 ${g.cohort.p95Ms.toFixed(1)} ms` : ''}; rest errors ${pct(g.rest.errorRate)}`,
    );
  }
  if (r.reason) lines.push(`  reason: ${r.reason}`);
  if (r.skippedTotal > 0) {
    const more = r.skippedTotal - r.skipped.length;
    lines.push(
      `  skipped: ${r.skipped.map((s) => `${s.agentId} (${s.reason})`).join(', ')}${more > 0 ? ` and ${more} more` : ''}`,
    );
  }
  return lines;
}

/** One line summing up a rollout, for non-terminal output. */
export function rolloutLine(r: Rollout): string {
  const ready = rolloutCounts(r).ready;
  const last = r.events.at(-1);
  return (
    `${new Date(r.updatedAt).toISOString()} ${r.id} ${r.state} step ${r.step + 1}/${r.steps.length} ${r.phase} ` +
    `${ready}/${r.targets} ready${last ? ` | ${last.type}: ${last.message}` : ''}`
  );
}

/** Where a view writes. */
export interface ViewStream {
  write(text: string): unknown;
  readonly isTTY?: boolean;
}

/** Shows a rollout as it changes: redrawn on a terminal, one line per change elsewhere. */
export class RolloutView {
  readonly #stream: ViewStream;
  readonly #tty: boolean;
  #drawn = 0;
  #last = '';

  constructor(stream: ViewStream = process.stdout) {
    this.#stream = stream;
    this.#tty = stream.isTTY === true;
  }

  show(r: Rollout): void {
    if (!this.#tty) {
      const line = rolloutLine(r);
      const key = line.slice(line.indexOf(' ') + 1);
      if (key !== this.#last) this.#stream.write(`${line}\n`);
      this.#last = key;
      return;
    }
    const lines = rolloutLines(r);
    const up = this.#drawn > 0 ? `\x1b[${this.#drawn}A` : '';
    this.#stream.write(`${up}${lines.map((l) => `\r\x1b[K${l}`).join('\n')}\n\x1b[J`);
    this.#drawn = lines.length;
  }
}

/** True once a rollout will not change on its own. */
export const rolloutEnded = (r: Rollout): boolean => r.state !== 'running' && r.state !== 'paused';

/** Options of {@link followRollout}. */
export interface FollowOptions {
  /** Time between two polls, ms. */
  readonly intervalMs?: number;
  /** Return once the rollout pauses too (it waits for an operator then). */
  readonly untilPaused?: boolean;
  /** How long to keep retrying while the admin API answers UNAVAILABLE, ms. */
  readonly retryForMs?: number;
  /** Told about each UNAVAILABLE answer that will be retried, with the pause before the retry. */
  readonly onRetry?: (error: Error, delayMs: number) => void;
  /** Waits (tests pass a fake clock). */
  readonly sleep?: (ms: number) => Promise<void>;
  /** Wall clock, ms (tests pass a fake clock). */
  readonly now?: () => number;
}

const isUnavailable = (err: unknown): err is Error =>
  isInferMeshError(err) && err.code === ErrorCode.UNAVAILABLE;

/**
 * Polls a rollout and shows each change until it ends (or, with `untilPaused`, pauses too);
 * resolves with its last state. UNAVAILABLE answers (a coordinator restarting) are retried with
 * back-off for up to `retryForMs`; any other error, or an outage longer than that, is thrown.
 */
export async function followRollout(
  client: Pick<RolloutClient, 'get'>,
  id: string,
  view: Pick<RolloutView, 'show'>,
  options: FollowOptions = {},
): Promise<Rollout> {
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const now = options.now ?? Date.now;
  const retryForMs = options.retryForMs ?? DEFAULT_FOLLOW_RETRY_MS;
  let failingSince: number | undefined;
  let backoff = FIRST_FOLLOW_BACKOFF_MS;
  for (;;) {
    let rollout: Rollout;
    try {
      rollout = await client.get(id);
    } catch (err) {
      if (!isUnavailable(err)) throw err;
      failingSince ??= now();
      const left = failingSince + retryForMs - now();
      if (left <= 0) throw err;
      const delay = Math.min(backoff, left);
      options.onRetry?.(err, delay);
      await sleep(delay);
      backoff = Math.min(backoff * 2, MAX_FOLLOW_BACKOFF_MS);
      continue;
    }
    failingSince = undefined;
    backoff = FIRST_FOLLOW_BACKOFF_MS;
    view.show(rollout);
    if (rolloutEnded(rollout) || (options.untilPaused === true && rollout.state === 'paused')) return rollout;
    await sleep(options.intervalMs ?? DEFAULT_FOLLOW_INTERVAL_MS);
  }
}

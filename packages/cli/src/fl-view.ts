/**
 * How the CLI shows a federated training run: on a terminal a few lines redrawn in place (the run
 * with a bar of closed rounds, the round in progress with its clients and time left, the held-out
 * accuracy from the base through the last rounds with a sparkline, the last rounds' clients, and the
 * registered version or the error); elsewhere (a log, a pipe, CI) one line per change. And
 * {@link followFlRun}, which polls the admin API until the run ends.
 * @module
 */
import type { FlRoundSummary, FlRunRecord } from '@infermesh/protocols';
import type { ViewStream } from './rollout-view.js';

/** Time between two polls while following a run (ms). */
export const DEFAULT_FL_FOLLOW_INTERVAL_MS = 1_000;
/** Closed rounds listed one per line on a terminal (the newest). */
const ROUNDS_SHOWN = 5;
/** Width of the rounds bar in characters. */
const BAR_WIDTH = 20;
const SPARKS = '▁▂▃▄▅▆▇█';

const percent = (x: number | undefined): string => (x === undefined ? '-' : `${(x * 100).toFixed(2)}%`);

/** True once a run will not change on its own. */
export const flRunEnded = (run: FlRunRecord): boolean => run.state !== 'running' && run.state !== 'stopping';

/** One line summing up a run (round k/R, the current round's clients, the last accuracy). */
export function flRunLine(run: FlRunRecord): string {
  const last = run.recentRounds.at(-1);
  const current = run.current;
  const parts = [`${run.id} ${run.state}`, `round ${run.roundsDone}/${run.rounds}`];
  if (current && !flRunEnded(run))
    parts.push(
      `round ${current.round}: ${current.accepted.length}/${current.selected.length} accepted (${current.phase})`,
    );
  if (last) parts.push(`last: ${last.received} received, accuracy ${percent(last.evaluation?.accuracy)}`);
  if (run.baseline) parts.push(`base accuracy ${percent(run.baseline.accuracy)}`);
  if (run.registeredVersion) parts.push(`registered ${run.model}@${run.registeredVersion}`);
  if (run.error) parts.push(`error: ${run.error}`);
  return parts.join(' | ');
}

/** Accuracies as a sparkline scaled between their least and greatest value. */
export function sparkline(values: readonly number[]): string {
  if (values.length === 0) return '';
  const low = Math.min(...values);
  const span = Math.max(...values) - low;
  return values
    .map((v) => SPARKS[span === 0 ? SPARKS.length - 1 : Math.round(((v - low) / span) * (SPARKS.length - 1))])
    .join('');
}

function roundLine(r: FlRoundSummary): string {
  const extra = [
    r.dropped > 0 ? `${r.dropped} dropped` : '',
    r.rejected > 0 ? `${r.rejected} rejected` : '',
    r.attempts > 1 ? `${r.attempts} attempts` : '',
  ].filter((s) => s !== '');
  const seconds = ((r.closedAt - r.startedAt) / 1000).toFixed(1);
  return (
    `    round ${r.round}: ${r.received}/${r.selected} updates` +
    `${extra.length > 0 ? ` (${extra.join(', ')})` : ''}, accuracy ${percent(r.evaluation?.accuracy)}, ${seconds} s`
  );
}

/** The progress lines of a run; `now` (ms since the epoch) gives the time left in a round. */
export function flRunLines(run: FlRunRecord, now = Date.now()): string[] {
  const done = run.roundsDone;
  const filled = Math.round((done / run.rounds) * BAR_WIDTH);
  const lines = [
    `${run.id}  ${run.model}@${run.baseVersion} -> ${run.resultVersion}  ${run.strategy}  ${run.state}`,
    `  rounds [${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}] ${done}/${run.rounds}`,
  ];
  const current = run.current;
  if (current && !flRunEnded(run)) {
    const left = Math.max(0, Math.ceil((current.deadlineAt - now) / 1000));
    lines.push(
      `  > round ${current.round}${current.attempt > 1 ? ` (attempt ${current.attempt})` : ''}: ` +
        `${current.phase}, ${current.accepted.length}/${current.selected.length} clients accepted, closes in ${left} s` +
        `${current.failure ? `; last attempt: ${current.failure}` : ''}`,
    );
  }
  // The run record keeps the last rounds' summaries: the sparkline covers those.
  const accuracies = run.recentRounds.flatMap((r) => (r.evaluation ? [r.evaluation.accuracy] : []));
  if (run.baseline || accuracies.length > 0) {
    const series = [...(run.baseline ? [run.baseline.accuracy] : []), ...accuracies];
    lines.push(
      `  accuracy: base ${percent(run.baseline?.accuracy)} -> ${percent(accuracies.at(-1))}  ${sparkline(series)}`,
    );
  }
  const shown = run.recentRounds.slice(-ROUNDS_SHOWN);
  if (done > shown.length) lines.push(`    (${done - shown.length} earlier rounds)`);
  lines.push(...shown.map(roundLine));
  if (run.registeredVersion) lines.push(`  registered ${run.model}@${run.registeredVersion}`);
  if (run.error) lines.push(`  error: ${run.error}`);
  return lines;
}

/** Where a run view writes: a stream, with the terminal's width when it is one. */
export interface FlViewStream extends ViewStream {
  readonly columns?: number;
}

/** Shows a run as it changes: redrawn in place on a terminal, one line per change elsewhere. */
export class FlRunView {
  readonly #stream: FlViewStream;
  readonly #tty: boolean;
  readonly #now: () => number;
  #drawn = 0;
  #last = '';

  constructor(stream: FlViewStream = process.stdout, now: () => number = Date.now) {
    this.#stream = stream;
    this.#tty = stream.isTTY === true;
    this.#now = now;
  }

  show(run: FlRunRecord): void {
    if (!this.#tty) {
      const line = flRunLine(run);
      if (line !== this.#last) this.#stream.write(`${line}\n`);
      this.#last = line;
      return;
    }
    const width = Math.max(20, (this.#stream.columns ?? 120) - 1);
    const lines = flRunLines(run, this.#now()).map((l) => l.slice(0, width));
    const up = this.#drawn > 0 ? `\x1b[${this.#drawn}A` : '';
    this.#stream.write(`${up}${lines.map((l) => `\r\x1b[K${l}`).join('\n')}\n\x1b[J`);
    this.#drawn = lines.length;
  }
}

/** What following needs of the admin API. */
export interface FlRunSource {
  get(id: string): Promise<FlRunRecord>;
}

/** Polls a run and shows each state until it ends; resolves with its last state. */
export async function followFlRun(
  source: FlRunSource,
  id: string,
  view: { show(run: FlRunRecord): void },
  options: { intervalMs?: number } = {},
): Promise<FlRunRecord> {
  for (;;) {
    const run = await source.get(id);
    view.show(run);
    if (flRunEnded(run)) return run;
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? DEFAULT_FL_FOLLOW_INTERVAL_MS));
  }
}

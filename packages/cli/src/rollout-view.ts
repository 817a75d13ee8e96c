/**
 * How the CLI shows a rollout: a few lines of progress (state, each step with its cohort and how
 * many serve the version, the last gate, the newest event), redrawn in place on a terminal and
 * printed as one line per change elsewhere; and {@link followRollout}, which polls the admin API
 * until the rollout ends.
 * @module
 */
import type { Rollout } from '@infermesh/protocols';
import type { RolloutClient } from './rollout-client.js';

/** Time between two polls while following a rollout (ms). */
export const DEFAULT_FOLLOW_INTERVAL_MS = 1_000;

const pct = (rate: number | undefined): string => (rate === undefined ? '-' : `${(rate * 100).toFixed(2)}%`);

/** The progress lines of a rollout. */
export function rolloutLines(r: Rollout): string[] {
  const ready = r.agents.filter((a) => a.state === 'ready').length;
  const lines = [
    `${r.id}  ${r.spec.model}@${r.spec.version}  ${r.state}${r.state === 'running' ? ` (${r.phase})` : ''}  ` +
      `${ready}/${r.agents.length} agents serve it`,
  ];
  for (const [index, step] of r.steps.entries()) {
    const agents = r.agents.filter((a) => a.step === index);
    const serving = agents.filter((a) => a.state === 'ready').length;
    const mark =
      step.passedAt !== undefined ? 'passed' : index === r.step && r.state === 'running' ? r.phase : '';
    lines.push(
      `  ${index === r.step ? '>' : ' '} ${step.kind} ${step.percent}%: ${serving}/${agents.length} ${mark}`.trimEnd(),
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
  if (r.skipped.length > 0)
    lines.push(`  skipped: ${r.skipped.map((s) => `${s.agentId} (${s.reason})`).join(', ')}`);
  return lines;
}

/** One line summing up a rollout, for non-terminal output. */
export function rolloutLine(r: Rollout): string {
  const ready = r.agents.filter((a) => a.state === 'ready').length;
  const last = r.events.at(-1);
  return (
    `${new Date(r.updatedAt).toISOString()} ${r.id} ${r.state} step ${r.step + 1}/${r.steps.length} ${r.phase} ` +
    `${ready}/${r.agents.length} ready${last ? ` | ${last.type}: ${last.message}` : ''}`
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

/**
 * Polls a rollout and shows each change until it ends (or, with `untilPaused`, pauses too);
 * resolves with its last state.
 */
export async function followRollout(
  client: RolloutClient,
  id: string,
  view: RolloutView,
  options: { intervalMs?: number; untilPaused?: boolean } = {},
): Promise<Rollout> {
  for (;;) {
    const rollout = await client.get(id);
    view.show(rollout);
    if (rolloutEnded(rollout) || (options.untilPaused && rollout.state === 'paused')) return rollout;
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? DEFAULT_FOLLOW_INTERVAL_MS));
  }
}

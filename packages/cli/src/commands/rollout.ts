/**
 * `infermesh rollout start|status|list|pause|resume|abort|rollback`: staged rollouts of a model
 * version through the coordinator's admin API. `start` prints the rollout's id and, unless
 * `--detach`, follows it with a live progress view until it ends or pauses; it exits 0 when the
 * rollout succeeded, 2 when it paused (it waits for an operator: resume, abort or rollback), 1 when
 * it was rolled back, failed or aborted. Both `start` and `status --watch` ride out a coordinator
 * restart (UNAVAILABLE answers are retried for up to a minute).
 * @module
 */
import type { Command } from 'commander';
import { invalidInput } from '@infermesh/protocols';
import type { CreateRolloutRequest, Rollout } from '@infermesh/protocols';
import { AdminClient } from '../admin-client.js';
import type { AdminConnectionFlags } from '../admin-client.js';
import { RolloutClient, parseDuration } from '../rollout-client.js';
import type { RolloutAction } from '../rollout-client.js';
import { RolloutView, followRollout, rolloutLines } from '../rollout-view.js';
import { parseModelRef, withAdminFlags } from './models.js';

interface StartFlags extends AdminConnectionFlags {
  selector?: string;
  canary?: string;
  waves?: string;
  bake?: string;
  maxBake?: string;
  maxErrorRate?: string;
  maxP95Ms?: string;
  minRequests?: string;
  readyTimeout?: string;
  onGateFailure?: string;
  detach?: boolean;
  json?: boolean;
}

/** `site=eu,hw=x` as labels. */
function parseSelectorFlag(text: string): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const part of text.split(',')) {
    if (part.trim() === '') continue;
    const eq = part.indexOf('=');
    if (eq <= 0) throw invalidInput(`--selector part ${JSON.stringify(part)} is not key=value`);
    labels[part.slice(0, eq).trim()] = part.slice(eq + 1).trim();
  }
  return labels;
}

function parseNumber(text: string, what: string): number {
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value))
    throw invalidInput(`${what} must be a number, got ${JSON.stringify(text)}`);
  return value;
}

/** The create request the flags describe (the coordinator validates it fully). */
export function rolloutRequestFromFlags(ref: string, flags: StartFlags): CreateRolloutRequest {
  const { name, version } = parseModelRef(ref, true);
  const request: CreateRolloutRequest = { model: name, version: version as string };
  if (flags.selector !== undefined) request.selector = parseSelectorFlag(flags.selector);
  if (flags.canary !== undefined) request.canaryPercent = parseNumber(flags.canary, '--canary');
  if (flags.waves !== undefined) request.waves = flags.waves.split(',').map((w) => parseNumber(w, '--waves'));
  if (flags.bake !== undefined) request.bakeMs = parseDuration(flags.bake, '--bake');
  if (flags.maxBake !== undefined) request.maxBakeMs = parseDuration(flags.maxBake, '--max-bake');
  if (flags.maxErrorRate !== undefined)
    request.maxErrorRate = parseNumber(flags.maxErrorRate, '--max-error-rate');
  if (flags.maxP95Ms !== undefined) request.maxP95Ms = parseNumber(flags.maxP95Ms, '--max-p95-ms');
  if (flags.minRequests !== undefined) request.minRequests = parseNumber(flags.minRequests, '--min-requests');
  if (flags.readyTimeout !== undefined)
    request.readyTimeoutMs = parseDuration(flags.readyTimeout, '--ready-timeout');
  if (flags.onGateFailure !== undefined) {
    if (flags.onGateFailure !== 'rollback' && flags.onGateFailure !== 'pause') {
      throw invalidInput('--on-gate-failure must be rollback or pause');
    }
    request.onGateFailure = flags.onGateFailure;
  }
  return request;
}

/** Exit code of `rollout start` once it stops following: 0 succeeded, 2 paused, 1 otherwise. */
export const exitCodeOf = (r: Rollout): number =>
  r.state === 'succeeded' ? 0 : r.state === 'paused' ? 2 : 1;

/** Says on stderr that the admin API is being retried (a coordinator restarting). */
const noteRetry = (error: Error, delayMs: number): void => {
  console.error(`infermesh: ${error.message}; retrying in ${delayMs} ms`);
};

/** Registers `infermesh rollout`. */
export function registerRollout(program: Command): void {
  const rollout = program
    .command('rollout')
    .description('staged rollouts of a model version across the fleet');
  withAdminFlags(
    rollout
      .command('start')
      .description('start a rollout: a canary, then waves, each baked and gated')
      .argument('<model>', 'NAME@VERSION')
      .option('--selector <labels>', 'labels targets must carry: site=eu,hw=x (default: every agent)')
      .option('--canary <percent>', 'canary cohort, percent of the targets (default 5, at least one agent)')
      .option('--waves <percents>', 'cumulative percents after the canary (default 25,50,100)')
      .option('--bake <duration>', 'bake time per step: 30s, 10m, 1h (default 10m)')
      .option(
        '--max-bake <duration>',
        'longest bake while traffic is below --min-requests (default 3x --bake)',
      )
      .option('--max-error-rate <rate>', 'highest error rate of a cohort, 0..1 (default 0.01)')
      .option('--max-p95-ms <ms>', 'highest p95 latency of a cohort (default: no latency gate)')
      .option('--min-requests <n>', 'requests a cohort must see before it is judged (default 0)')
      .option(
        '--ready-timeout <duration>',
        'time a cohort has to serve the version before the rollout pauses (default 10m)',
      )
      .option('--on-gate-failure <action>', 'rollback (default) or pause')
      .option('--detach', 'print the id and return without following')
      .option('--json', 'print the rollout as JSON'),
  ).action(async (ref: string, flags: StartFlags, command: Command) => {
    const client = new RolloutClient(AdminClient.fromFlags(flags));
    const started = await client.start(rolloutRequestFromFlags(ref, flags));
    if (flags.json && flags.detach) {
      console.log(JSON.stringify(started, null, 2));
      return;
    }
    console.log(started.id);
    if (flags.detach) return;
    const last = await followRollout(client, started.id, new RolloutView(), {
      untilPaused: true,
      onRetry: noteRetry,
    });
    if (flags.json) console.log(JSON.stringify(last, null, 2));
    const code = exitCodeOf(last);
    if (code !== 0) {
      const hint =
        last.state === 'paused' ? `; resume, abort or rollback it (infermesh rollout resume ${last.id})` : '';
      console.error(
        `infermesh: rollout ${last.id} ${last.state}${last.reason ? `: ${last.reason}` : ''}${hint}`,
      );
      command.error('', { exitCode: code, code: 'infermesh.rollout' });
    }
  });
  withAdminFlags(
    rollout
      .command('status')
      .description("a rollout's progress: steps with their counts, the last gate, the newest event")
      .argument('<id>', 'rollout id')
      .option('--watch', 'follow it until it ends')
      .option('--json', 'print JSON'),
  ).action(async (id: string, flags: AdminConnectionFlags & { watch?: boolean; json?: boolean }) => {
    const client = new RolloutClient(AdminClient.fromFlags(flags));
    const current = flags.watch
      ? await followRollout(client, id, new RolloutView(), { onRetry: noteRetry })
      : await client.get(id);
    if (flags.json) console.log(JSON.stringify(current, null, 2));
    else if (!flags.watch) console.log(rolloutLines(current).join('\n'));
  });
  withAdminFlags(
    rollout
      .command('agents')
      .description("a rollout's target agents in rollout order: step, state, previous version, why")
      .argument('<id>', 'rollout id')
      .option('--step <n>', 'only the agents of this step (0: the canary)')
      .option('--json', 'print JSON'),
  ).action(async (id: string, flags: AdminConnectionFlags & { step?: string; json?: boolean }) => {
    const client = new RolloutClient(AdminClient.fromFlags(flags));
    const step = flags.step === undefined ? undefined : parseNumber(flags.step, '--step');
    let cursor: string | undefined;
    do {
      const page = await client.agents(id, {
        limit: 1_000,
        ...(cursor !== undefined ? { cursor } : {}),
        ...(step !== undefined ? { step } : {}),
      });
      for (const a of page.agents) {
        if (flags.json) console.log(JSON.stringify(a));
        else
          console.log(
            `${a.agentId}  step ${a.step}  ${a.state.padEnd(8)} previous ${a.previous?.version ?? '-'}` +
              `${a.reason ? `  ${a.reason}` : ''}`,
          );
      }
      cursor = page.nextCursor;
    } while (cursor !== undefined);
  });
  withAdminFlags(
    rollout.command('list').description('rollouts, newest first').option('--json', 'print JSON'),
  ).action(async (flags: AdminConnectionFlags & { json?: boolean }) => {
    const rollouts = await new RolloutClient(AdminClient.fromFlags(flags)).list();
    if (flags.json) {
      console.log(JSON.stringify(rollouts, null, 2));
      return;
    }
    if (rollouts.length === 0) console.log('no rollouts');
    for (const r of rollouts) {
      console.log(
        `${r.id}  ${r.model}@${r.version}  ${r.state.padEnd(11)} step ${r.step + 1}/${r.steps}  ` +
          `${r.ready}/${r.targets} ready  by ${r.createdBy} at ${new Date(r.createdAt).toISOString()}`,
      );
    }
  });
  const steer: [RolloutAction, string][] = [
    ['pause', 'stop a running rollout where it is'],
    ['resume', 'resume a paused rollout (a baking step bakes again)'],
    ['abort', 'stop a rollout for good, leaving agents as they are'],
    ['rollback', 'give every agent the rollout wrote its previous version back'],
  ];
  for (const [action, description] of steer) {
    withAdminFlags(rollout.command(action).description(description).argument('<id>', 'rollout id')).action(
      async (id: string, flags: AdminConnectionFlags) => {
        const r = await new RolloutClient(AdminClient.fromFlags(flags)).steer(id, action);
        console.log(`${r.id}: ${r.state}${r.state === 'running' ? ` (${r.phase})` : ''}`);
      },
    );
  }
}

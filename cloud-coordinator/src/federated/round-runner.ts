/**
 * One round of a run, from picking clients to the new global weights: select, task, and (when
 * enough clients accepted) collect their updates from the durable stream until all are in or the
 * deadline passes, validating each and folding the valid ones into the strategy as they arrive.
 * The round's progress (`current` in the run record) is written before tasks go out and again
 * once they have, so a coordinator taking the run over resumes collecting the same round (a round
 * whose tasks were still being sent is started again as a new attempt). NATS failures during the
 * round (a restarted server) are retried with back-off until the round's deadline (record writes)
 * or past it (reading the stream); one that outlasts that ends the attempt with a
 * `TransientFailure` for the driver, which leaves the run to be resumed, never failed.
 * @module
 */
import type { Logger } from 'pino';
import type { FlRoundInProgress, FlRoundRecord, FlRunRecord, FlSecureTask } from '@infermesh/protocols';
import type { MeshConnection } from '@infermesh/mesh-client';
import type { FleetView } from './client-selection.js';
import { eligibleAgents, selectClients, sendTasks } from './client-selection.js';
import type { GlobalWeights } from './global-weights.js';
import { toFlTensors } from './global-weights.js';
import type { RunAggregation } from './run-strategy.js';
import type { RunStore } from './run-store.js';
import { UpdateTally } from './update-tally.js';
import { applyDelta, checkUpdate } from './update-validation.js';
import { readRoundUpdates } from './updates-stream.js';
import { retryTransient } from './transient-retry.js';

/** What a round needs from its driver. */
export interface RoundContext {
  readonly connection: MeshConnection;
  readonly store: RunStore;
  readonly fleet: FleetView;
  readonly logger: Logger;
  readonly taskReplyTimeoutMs: number;
  readonly signal: AbortSignal;
}

/** A round that closed with enough updates. */
export interface ClosedRound {
  readonly next: Float32Array[];
  readonly record: Omit<FlRoundRecord, 'evaluation' | 'updateNorm' | 'closedAt' | 'durationsMs'> & {
    durationsMs: { tasks: number; collect: number; aggregate: number };
  };
}

/** The record of a round that closed, from its progress, its tally and its timings. */
export function closedRoundRecord(
  progress: FlRoundInProgress,
  tally: UpdateTally,
  timings: { collectMs: number; aggregateStart: number },
  secure?: FlRoundRecord['secure'],
): ClosedRound['record'] {
  return {
    round: progress.round,
    roundId: progress.roundId,
    attempts: progress.attempt,
    selected: progress.selected,
    accepted: progress.accepted,
    received: [...tally.received].sort(),
    dropped: progress.accepted.filter((a) => !tally.received.has(a)),
    rejected: tally.rejected,
    rejectedCount: tally.rejectedCount,
    meanTrainLoss: tally.trainLoss / tally.received.size,
    ...(secure === undefined ? {} : { secure }),
    startedAt: progress.startedAt,
    durationsMs: {
      tasks: progress.tasksMs,
      collect: timings.collectMs,
      aggregate: Date.now() - timings.aggregateStart,
    },
  };
}

/** An attempt that did not close: too few acceptances or updates, or a failed aggregation. */
export interface FailedAttempt {
  readonly failed: string;
}

const roundIdOf = (runId: string, round: number, attempt: number): string =>
  attempt === 1 ? `${runId}-r${round}` : `${runId}-r${round}-a${attempt}`;

/**
 * Gives each selected agent its part of a secure round (called once the clients are chosen,
 * before any task goes out).
 */
export type SecureTasking = (
  roundId: string,
  selected: readonly string[],
) => (agentId: string) => FlSecureTask;

/** Starts a new attempt of the round: selects clients and sends the tasks. */
export async function startAttempt(
  ctx: RoundContext,
  run: FlRunRecord,
  round: number,
  attempt: number,
  global: GlobalWeights,
  secureTasking?: SecureTasking,
): Promise<FlRoundInProgress> {
  const roundId = roundIdOf(run.id, round, attempt);
  const candidates = eligibleAgents(ctx.fleet, run.model);
  const selected = selectClients(candidates, run.clientsPerRound, run.seed, round, attempt);
  const startedAt = Date.now();
  const deadlineAt = startedAt + run.roundTimeoutMs;
  const secureFor = secureTasking?.(roundId, selected);
  const tasking: FlRoundInProgress = {
    round,
    roundId,
    attempt,
    selected,
    accepted: [],
    phase: 'tasking',
    deadlineAt,
    startedAt,
    tasksMs: 0,
  };
  const writeProgress = (what: string, change: Parameters<RunStore['mutate']>[1]): Promise<FlRunRecord> =>
    retryTransient(() => ctx.store.mutate(run.id, change), {
      what,
      until: deadlineAt,
      logger: ctx.logger,
      signal: ctx.signal,
    });
  await writeProgress('record the round attempt', (r) =>
    r.state === 'running' ? { ...r, current: tasking } : undefined,
  );
  const weights = toFlTensors(global);
  const accepted = await sendTasks(
    ctx.connection,
    selected,
    (agentId) => ({
      runId: run.id,
      roundId,
      round,
      model: run.model,
      baseVersion: run.baseVersion,
      weights,
      hyperparameters: run.hyperparameters,
      ...(run.privacy ? { privacy: run.privacy } : {}),
      ...(secureFor ? { secure: secureFor(agentId) } : {}),
      deadlineAt,
      seed: (run.seed + round * 1_000 + attempt) >>> 0,
    }),
    ctx.taskReplyTimeoutMs,
    ctx.logger,
  );
  const collecting: FlRoundInProgress = {
    ...tasking,
    accepted: accepted.map((a) => a.agentId),
    acceptedExamples: Object.fromEntries(accepted.map((a) => [a.agentId, a.examples])),
    phase: 'collecting',
    tasksMs: Date.now() - startedAt,
  };
  await writeProgress('record the accepted clients', (r) =>
    r.state === 'running' || r.state === 'stopping' ? { ...r, current: collecting } : undefined,
  );
  ctx.logger.info(
    { round, attempt, candidates: candidates.length, selected: selected.length, accepted: accepted.length },
    'round tasks sent',
  );
  return collecting;
}

/**
 * Runs (or resumes) one attempt of the round. Resolves with the new weights, or the reason the
 * attempt failed.
 */
export async function runRoundAttempt(
  ctx: RoundContext,
  run: FlRunRecord,
  round: number,
  global: GlobalWeights,
  aggregation: RunAggregation,
): Promise<ClosedRound | FailedAttempt> {
  const resumable =
    run.current?.round === round && run.current.phase === 'collecting' ? run.current : undefined;
  const attempt = resumable?.attempt ?? (run.current?.round === round ? run.current.attempt + 1 : 1);
  const progress = resumable ?? (await startAttempt(ctx, run, round, attempt, global));
  if (resumable) ctx.logger.info({ round, roundId: progress.roundId }, 'resuming the round after a takeover');
  if (progress.accepted.length < run.minClients) {
    return {
      failed: `${progress.accepted.length} of ${progress.selected.length} selected clients accepted, ${run.minClients} needed`,
    };
  }
  const collectStart = Date.now();
  const accepted = new Set(progress.accepted);
  const tally = new UpdateTally(accepted);
  const aggregator = aggregation.begin(global.layers);
  const log = ctx.logger.child({ round, roundId: progress.roundId });
  await readRoundUpdates(ctx.connection, {
    roundId: progress.roundId,
    deadlineAt: progress.deadlineAt,
    signal: ctx.signal,
    logger: log,
    onMessage: (data, _storedAt, signature) => {
      const checked = checkUpdate(data, signature, {
        runId: run.id,
        roundId: progress.roundId,
        round,
        accepted,
        received: tally.received,
        signers: ctx.fleet,
        acceptedExamples: progress.acceptedExamples,
        global,
        secure: run.secure,
        privacy: run.privacy,
      });
      if (!checked.ok) {
        tally.reject(checked);
        log.warn({ agentId: checked.agentId, reason: checked.reason }, 'update rejected');
        return tally.everyoneIn();
      }
      try {
        aggregator.add({
          weights: applyDelta(global.layers, checked.delta),
          numExamples: checked.update.numExamples,
        });
      } catch (err) {
        tally.reject({ agentId: checked.update.agentId, reason: (err as Error).message });
        log.warn(
          { agentId: checked.update.agentId, err: (err as Error).message },
          'update refused by the strategy',
        );
        return tally.everyoneIn();
      }
      tally.take(checked.update);
      return tally.everyoneIn();
    },
    onLate: (_data, storedAt) =>
      log.info({ lateByMs: storedAt - progress.deadlineAt }, 'straggler update dropped'),
  });
  if (ctx.signal.aborted) return { failed: 'aborted' };
  const collectMs = Date.now() - collectStart;
  const received = tally.received;
  if (received.size < run.minClients) {
    return { failed: `${received.size} valid updates by the deadline, ${run.minClients} needed` };
  }
  const aggregateStart = Date.now();
  let next: Float32Array[];
  try {
    next = aggregator.finish();
  } catch (err) {
    return { failed: `aggregation failed: ${(err as Error).message}` };
  }
  return { next, record: closedRoundRecord(progress, tally, { collectMs, aggregateStart }) };
}

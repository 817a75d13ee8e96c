/**
 * One attempt of a secure-aggregation round, from picking clients to the new global weights:
 * the selected agents become clients 1..n with threshold t (`secureThreshold(n)`) in their tasks;
 * the key exchange runs with per-phase timeouts (clients missing the advertise or share phase are
 * out before masking); masked updates are read from the durable updates stream until every
 * client that shared keys is in or the round deadline passes; the survivors then reveal the
 * shares that remove the remaining masks — those of clients that dropped after sharing included.
 * The unmasked sum divided by its summed example count is the example-weighted mean delta, fed
 * to the run's (linear) strategy as one aggregated update; a sum counting more examples than the
 * survivors announced in their task replies is refused (someone inflated the count it masked).
 *
 * A coordinator restart loses the round's key exchange (it lives in memory, and masks are per
 * round): a takeover waits for the interrupted attempt's deadline — its clients are busy until
 * then — and starts the round again as a new attempt.
 * @module
 */
import type { Logger } from 'pino';
import type { FlRunRecord } from '@infermesh/protocols';
import type { GlobalWeights } from './global-weights.js';
import type { ClosedRound, FailedAttempt, RoundContext } from './round-runner.js';
import { closedRoundRecord, startAttempt } from './round-runner.js';
import type { RunAggregation } from './run-strategy.js';
import {
  SECURE_FRACTIONAL_BITS,
  meanOfSecureSum,
  securePhaseTimeoutMs,
  secureThreshold,
  secureVectorLength,
} from './secure-settings.js';
import { SecureRoundFailure, SecureRoundSession } from './secure-session.js';
import { checkMaskedUpdate } from './secure-update-check.js';
import { UpdateTally } from './update-tally.js';
import { applyDelta } from './update-validation.js';
import { readRoundUpdates } from './updates-stream.js';

/** Margin after an interrupted attempt's deadline before its round starts again. */
const INTERRUPTED_ATTEMPT_MARGIN_MS = 500;

function sleepUntil(at: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, Math.max(0, at - Date.now()));
    signal.addEventListener('abort', done, { once: true });
  });
}

/** Waits out an attempt a previous driver left mid-way; resolves with the next attempt number. */
async function nextAttempt(ctx: RoundContext, run: FlRunRecord, round: number, log: Logger): Promise<number> {
  const current = run.current?.round === round ? run.current : undefined;
  if (!current) return 1;
  if (current.phase !== 'failed') {
    log.info(
      { roundId: current.roundId, deadlineAt: current.deadlineAt },
      'a secure round cannot be resumed after a takeover: starting it again once its clients are free',
    );
    await sleepUntil(current.deadlineAt + INTERRUPTED_ATTEMPT_MARGIN_MS, ctx.signal);
  }
  return current.attempt + 1;
}

/** The examples `agents` announced in their task replies; undefined for rounds recorded before. */
function announcedExamples(
  acceptedExamples: Readonly<Record<string, number>> | undefined,
  agents: Iterable<string>,
): number | undefined {
  if (acceptedExamples === undefined) return undefined;
  let sum = 0;
  for (const agent of agents) sum += acceptedExamples[agent] ?? 0;
  return sum;
}

/** Runs one attempt of a secure round. Resolves with the new weights, or why the attempt failed. */
export async function runSecureRoundAttempt(
  ctx: RoundContext,
  run: FlRunRecord,
  round: number,
  global: GlobalWeights,
  aggregation: RunAggregation,
): Promise<ClosedRound | FailedAttempt> {
  const attempt = await nextAttempt(ctx, run, round, ctx.logger.child({ round }));
  if (ctx.signal.aborted) return { failed: 'aborted' };
  const vectorLength = secureVectorLength(global.shapes);
  const phaseTimeoutMs = securePhaseTimeoutMs(run.roundTimeoutMs);
  let session: SecureRoundSession | undefined;
  let progress;
  try {
    progress = await startAttempt(ctx, run, round, attempt, global, (roundId, selected) => {
      session = new SecureRoundSession(ctx.connection, {
        roundId,
        selected,
        threshold: secureThreshold(selected.length),
        fractionalBits: SECURE_FRACTIONAL_BITS,
        vectorLength,
        phaseTimeoutMs,
        logger: ctx.logger,
        signal: ctx.signal,
      });
      session.start();
      return (agentId) => session!.taskFor(agentId);
    });
  } catch (err) {
    // The session subscribed before the tasks went out: never leave it listening.
    session?.close();
    throw err;
  }
  const secure = session!;
  const threshold = secureThreshold(progress.selected.length);
  const log = ctx.logger.child({ round, roundId: progress.roundId, component: 'coordinator.fl.secure' });
  try {
    const needed = Math.max(run.minClients, threshold);
    if (progress.accepted.length < needed) {
      secure.abortClients();
      return {
        failed: `${progress.accepted.length} of ${progress.selected.length} selected clients accepted, ${needed} needed (secure threshold ${threshold})`,
      };
    }
    const collectStart = Date.now();
    let roster: number[];
    let shared: number[];
    try {
      roster = await secure.advertise(progress.accepted);
      shared = await secure.share(roster);
    } catch (err) {
      if (!(err instanceof SecureRoundFailure)) throw err;
      secure.abortClients();
      return { failed: `secure aggregation: ${err.message}` };
    }
    log.info({ threshold, roster: roster.length, shared: shared.length }, 'secure key exchange done');
    if (ctx.signal.aborted) return { failed: 'aborted' };

    const sharedClients = new Map(shared.map((id) => [secure.agentOf(id), id]));
    const tally = new UpdateTally(new Set(sharedClients.keys()));
    const { received } = tally;
    let claimedExamples = 0;
    await readRoundUpdates(ctx.connection, {
      roundId: progress.roundId,
      deadlineAt: progress.deadlineAt,
      signal: ctx.signal,
      logger: log,
      onMessage: (data, _storedAt, signature) => {
        const checked = checkMaskedUpdate(data, signature, {
          runId: run.id,
          roundId: progress.roundId,
          round,
          sharedClients,
          received,
          signers: ctx.fleet,
          acceptedExamples: progress.acceptedExamples,
          vectorLength,
        });
        if (!checked.ok) {
          tally.reject(checked);
          log.warn({ agentId: checked.agentId, reason: checked.reason }, 'masked update rejected');
          return false;
        }
        try {
          secure.addMasked(checked.clientId, checked.masked);
        } catch (err) {
          tally.reject({ agentId: checked.update.agentId, reason: (err as Error).message });
          return false;
        }
        tally.take(checked.update);
        claimedExamples += checked.update.numExamples;
        return received.size === sharedClients.size;
      },
      onLate: (_data, storedAt) =>
        log.info({ lateByMs: storedAt - progress.deadlineAt }, 'straggler masked update dropped'),
    });
    if (ctx.signal.aborted) return { failed: 'aborted' };
    const collectMs = Date.now() - collectStart;
    if (received.size < needed) {
      return { failed: `${received.size} masked updates by the deadline, ${needed} needed` };
    }

    const aggregateStart = Date.now();
    let next: Float32Array[];
    let result;
    try {
      result = await secure.unmask();
      const mean = meanOfSecureSum(result.sum, global.shapes);
      const announced = announcedExamples(progress.acceptedExamples, received);
      if (announced !== undefined && mean.numExamples > announced) {
        // Only the sum is visible: a client that inflated the count inside its masked vector
        // cannot be singled out, so the attempt is refused as a whole.
        return {
          failed: `the unmasked example count ${mean.numExamples} exceeds the ${announced} the survivors announced`,
        };
      }
      if (mean.numExamples !== claimedExamples) {
        log.warn(
          { unmasked: mean.numExamples, claimed: claimedExamples },
          'the unmasked example count differs from the counts the updates claim',
        );
      }
      const aggregator = aggregation.begin(global.layers);
      aggregator.add({ weights: applyDelta(global.layers, mean.delta), numExamples: mean.numExamples });
      next = aggregator.finish();
    } catch (err) {
      return { failed: `secure aggregation failed: ${(err as Error).message}` };
    }
    const recovered = result.dropped.map((id) => secure.agentOf(id)).sort();
    log.info({ survivors: result.survivors.length, recovered }, 'secure sum unmasked');
    return {
      next,
      record: closedRoundRecord(
        progress,
        tally,
        { collectMs, aggregateStart },
        { threshold, roster: roster.length, shared: shared.length, recovered },
      ),
    };
  } finally {
    secure.close();
  }
}

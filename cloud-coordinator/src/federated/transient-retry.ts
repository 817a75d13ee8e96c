/**
 * Riding out NATS outages in federated runs. A restarted or briefly unreachable nats-server makes
 * KV, object-store and JetStream calls fail for a few seconds; none of that says anything about
 * the run, so the driver retries such calls with capped exponential back-off until a time budget
 * runs out (the round's deadline inside a round), instead of failing the run. Only errors that a
 * retry can cure count as transient: the NATS client's connection, timeout and no-responders
 * errors, JetStream answering 5xx (server shutting down, not ready), missed pull heartbeats or a
 * consumer lost in a restart, and our own UNAVAILABLE / DEADLINE_EXCEEDED. Everything else (bad input,
 * CONFLICT, a missing run) is thrown at once.
 * @module
 */
import type { Logger } from 'pino';
import { ErrorCode, isInferMeshError } from '@infermesh/protocols';

/** First pause after a transient failure. */
export const DEFAULT_RETRY_INITIAL_DELAY_MS = 100;
/** Longest pause between two tries. */
export const DEFAULT_RETRY_MAX_DELAY_MS = 2_000;
/** How long the driver keeps retrying one step outside a round before it lets the run go (ms). */
export const DEFAULT_TRANSIENT_RETRY_BUDGET_MS = 60_000;

/** NATS client error names that a reconnect cures. */
const TRANSIENT_NATS_ERRORS = new Set([
  'ConnectionError',
  'TimeoutError',
  'RequestError',
  'NoResponders',
  'JetStreamNotEnabled',
  'ConsumerNotFoundError',
  'JetStreamStatusError',
]);

/** Whether `err` (or its cause) is a failure of the NATS infrastructure that a later try may not see. */
export function isTransientError(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth += 1) {
    if (isInferMeshError(e)) {
      if (e.code === ErrorCode.UNAVAILABLE || e.code === ErrorCode.DEADLINE_EXCEEDED) return true;
      continue; // a coded error may wrap a transient cause (e.g. an artifact write that timed out)
    }
    if (TRANSIENT_NATS_ERRORS.has(e.name)) return true;
    // A pull whose server went away ends with missed heartbeats.
    if (e.name === 'JetStreamError' && /heartbeat/i.test(e.message)) return true;
    if (e.name === 'JetStreamApiError') {
      const status = (e as Error & { status?: unknown }).status;
      if (typeof status === 'number' && status >= 500) return true;
    }
  }
  return false;
}

/** A transient failure that outlasted its retry budget. */
export class TransientFailure extends Error {
  override readonly name = 'TransientFailure';

  constructor(
    readonly what: string,
    readonly tries: number,
    cause: unknown,
  ) {
    super(`${what}: still failing after ${tries} tries: ${(cause as Error).message}`, { cause });
  }
}

/** Options of {@link retryTransient}. */
export interface RetryOptions {
  /** What is being done, for logs and errors ("store the round's weights"). */
  readonly what: string;
  /** Give up (with {@link TransientFailure}) once a failure happens after this instant (epoch ms). */
  readonly until: number;
  readonly logger?: Logger;
  /** Stops retrying: the last error is thrown. */
  readonly signal?: AbortSignal;
  readonly initialDelayMs?: number;
  readonly maxDelayMs?: number;
}

/** Waits `ms`, or less when `signal` aborts. */
export function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, Math.max(0, ms));
    signal?.addEventListener('abort', done, { once: true });
  });
}

/**
 * Runs `operation`, trying again after transient failures with doubling pauses until it succeeds,
 * fails otherwise (thrown as is), or the budget is spent ({@link TransientFailure}).
 *
 * @example
 * const sha = await retryTransient(() => storeWeights(artifacts, next), {
 *   what: 'store the global weights', until: Date.now() + 60_000, logger, signal,
 * });
 */
export async function retryTransient<T>(operation: () => Promise<T>, options: RetryOptions): Promise<T> {
  let delay = options.initialDelayMs ?? DEFAULT_RETRY_INITIAL_DELAY_MS;
  const maxDelay = options.maxDelayMs ?? DEFAULT_RETRY_MAX_DELAY_MS;
  for (let tries = 1; ; tries += 1) {
    try {
      return await operation();
    } catch (err) {
      if (!isTransientError(err) || options.signal?.aborted) throw err;
      const left = options.until - Date.now();
      if (left <= 0) throw new TransientFailure(options.what, tries, err);
      options.logger?.warn(
        { err: (err as Error).message, tries, retryInMs: Math.min(delay, left) },
        `${options.what}: NATS not reachable, retrying`,
      );
      await pause(Math.min(delay, left), options.signal);
      delay = Math.min(maxDelay, delay * 2);
    }
  }
}

/**
 * Sends the agent's enroll request (`enrollRequestSchema`, on `enrollSubject()`) with its one-time
 * token, its public key and the proof that it holds the private key, and reads the coordinator's
 * answer. What cannot be known yet is retried with exponential back-off (NATS unreachable, no
 * coordinator answering, a timeout, the coordinator saying UNAVAILABLE); what the coordinator
 * refuses (an unknown, used or expired token, a bad proof) is final and thrown with its message.
 * @module
 */
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import {
  ErrorCode,
  InferMeshError,
  decode,
  encode,
  enrollRequestSchema,
  enrollResponseSchema,
  enrollSubject,
} from '@infermesh/protocols';
import type { AgentHardware, EnrollResponse } from '@infermesh/protocols';
import { classifyRequestFailure, connectMesh, replyError } from '@infermesh/mesh-client';
import type { MeshConnection } from '@infermesh/mesh-client';
import { signEnrollmentProof } from './agent-identity.js';
import type { AgentIdentity } from './agent-identity.js';

/** First wait before retrying, in ms; doubled after each failed attempt up to the maximum. */
export const DEFAULT_ENROLL_RETRY_INITIAL_MS = 500;
/** Longest wait between attempts, in ms. */
export const DEFAULT_ENROLL_RETRY_MAX_MS = 30_000;
/** Time the coordinator has to answer one enroll request, in ms. */
export const DEFAULT_ENROLL_REQUEST_TIMEOUT_MS = 10_000;
/** Time for one connection attempt, in ms. */
const CONNECT_ATTEMPT_TIMEOUT_MS = 2_000;

/** Coordinator answers that may change on a later attempt. */
const RETRIED_CODES: ReadonlySet<string> = new Set([
  ErrorCode.UNAVAILABLE,
  ErrorCode.OVERLOADED,
  ErrorCode.DEADLINE_EXCEEDED,
  ErrorCode.INTERNAL,
]);

/** Options of {@link enrollWithCoordinator}. */
export interface EnrollOptions {
  readonly natsUrl: string;
  readonly token: string;
  readonly identity: AgentIdentity;
  readonly logger: Logger;
  readonly agentVersion?: string | undefined;
  readonly hardware?: AgentHardware | undefined;
  /** Stops retrying (rejects with UNAVAILABLE naming the last failure). */
  readonly signal?: AbortSignal | undefined;
  /** Gives up after this long, in ms (default: never; the agent keeps trying). */
  readonly timeoutMs?: number | undefined;
  readonly retryInitialMs?: number;
  readonly retryMaxMs?: number;
  readonly requestTimeoutMs?: number;
}

/** Why an attempt failed, when it is worth another. */
type Retryable = { readonly retry: true; readonly why: string };

const sleep = (ms: number, signal: AbortSignal | undefined): Promise<void> =>
  new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
  });

/**
 * Enrolls with the coordinator, retrying with back-off until it answers. Resolves with its answer;
 * rejects with the coordinator's own error when it refuses (UNAUTHENTICATED, INVALID_INPUT, ...),
 * or UNAVAILABLE when stopped or out of time first.
 * @example
 * const answer = await enrollWithCoordinator({ natsUrl, token, identity, logger });
 */
export async function enrollWithCoordinator(options: EnrollOptions): Promise<EnrollResponse> {
  const log = options.logger.child({ component: 'agent.enrollment' });
  const initial = options.retryInitialMs ?? DEFAULT_ENROLL_RETRY_INITIAL_MS;
  const max = options.retryMaxMs ?? DEFAULT_ENROLL_RETRY_MAX_MS;
  const giveUpAt = options.timeoutMs === undefined ? Infinity : Date.now() + options.timeoutMs;
  const payload = encode(
    enrollRequestSchema,
    {
      token: options.token,
      publicKey: options.identity.publicKey,
      signature: signEnrollmentProof(options.identity, options.token),
      hostname: hostname().slice(0, 256),
      ...(options.agentVersion !== undefined ? { agentVersion: options.agentVersion } : {}),
      ...(options.hardware !== undefined ? { hardware: options.hardware } : {}),
    },
    'enroll request',
  );
  let connection: MeshConnection | undefined;
  let delay = initial;
  let attempt = 0;
  try {
    for (;;) {
      attempt += 1;
      let outcome: EnrollResponse | Retryable;
      try {
        connection ??= await connectMesh(options.natsUrl, {
          name: 'agent-enrollment',
          logger: options.logger,
          waitOnFirstConnect: false,
          connectTimeoutMs: CONNECT_ATTEMPT_TIMEOUT_MS,
        });
        outcome = await requestOnce(connection, payload, options.requestTimeoutMs);
      } catch (err) {
        if ((err as { code?: unknown }).code === ErrorCode.UNAVAILABLE && connection === undefined) {
          outcome = { retry: true, why: (err as Error).message };
        } else {
          throw err;
        }
      }
      if (!('retry' in outcome)) {
        log.info({ agentId: outcome.agentId, labels: outcome.labels, attempts: attempt }, 'enrolled');
        return outcome;
      }
      const waitMs = Math.min(delay, Math.max(0, giveUpAt - Date.now()));
      if (options.signal?.aborted || waitMs <= 0) {
        throw new InferMeshError(
          ErrorCode.UNAVAILABLE,
          `enrollment did not complete after ${attempt} attempt(s): ${outcome.why}`,
        );
      }
      log.warn({ attempt, retryInMs: waitMs, why: outcome.why }, 'enrollment not answered; retrying');
      await sleep(waitMs, options.signal);
      delay = Math.min(delay * 2, max);
    }
  } finally {
    await connection?.close().catch(() => undefined);
  }
}

/** One enroll request over an open connection. */
async function requestOnce(
  connection: MeshConnection,
  payload: Uint8Array,
  timeoutMs = DEFAULT_ENROLL_REQUEST_TIMEOUT_MS,
): Promise<EnrollResponse | Retryable> {
  if (connection.state !== 'connected') {
    return { retry: true, why: `the NATS connection is ${connection.state}` };
  }
  let reply;
  try {
    reply = await connection.nc.request(enrollSubject(), payload, { timeout: timeoutMs });
  } catch (err) {
    const failure = classifyRequestFailure(err);
    switch (failure.type) {
      case 'no-responders':
        return { retry: true, why: 'no coordinator answers enrollment requests' };
      case 'timeout':
        return { retry: true, why: `no answer within ${timeoutMs} ms` };
      case 'disconnected':
        return { retry: true, why: 'disconnected from NATS' };
      case 'too-large':
      case 'other':
        throw err;
    }
  }
  const refused = replyError(reply);
  if (refused) {
    if (RETRIED_CODES.has(refused.code)) return { retry: true, why: `${refused.code}: ${refused.message}` };
    throw refused;
  }
  return decode(enrollResponseSchema, reply.data, 'enroll response');
}

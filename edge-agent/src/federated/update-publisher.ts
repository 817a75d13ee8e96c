/**
 * Publishing a federated update with JetStream: `msgID` `<roundId>.<agentId>` so the stream keeps
 * one copy however often it is retried; retried until the stream acknowledges it or the round's
 * deadline passes (an update after the deadline is a straggler the aggregator drops, so it is not
 * sent at all).
 * @module
 */
import { randomBytes } from 'node:crypto';
import { jetstream } from '@nats-io/jetstream';
import { signatureHeaders } from '../fleet/message-signer.js';
import type { MessageSigner } from '../fleet/message-signer.js';
import type { MeshConnection } from '@infermesh/mesh-client';
import { encode, flUpdateSchema, flUpdateSubject } from '@infermesh/protocols';
import type { FlUpdate } from '@infermesh/protocols';

/** Longest wait for one publish acknowledgement. */
export const PUBLISH_ACK_TIMEOUT_MS = 2_000;
/** Pause between publish attempts. */
export const PUBLISH_RETRY_DELAY_MS = 250;

/** What happened to an update. */
export type PublishOutcome =
  | { readonly type: 'published'; readonly attempts: number; readonly duplicate: boolean }
  | { readonly type: 'dropped'; readonly attempts: number; readonly lastError?: string };

export interface PublishUpdateOptions {
  readonly deadlineAt: number;
  readonly retryDelayMs?: number;
  readonly now?: () => number;
  readonly signal?: AbortSignal;
  /** Signs the update body (enrolled agents). */
  readonly signer?: MessageSigner | undefined;
}

/**
 * The de-duplication id of one update: the round, the agent, and a nonce drawn once per update, so
 * the agent's own retries are de-duplicated but nobody can pre-empt its update by publishing first
 * under a predictable id.
 */
export function updateMessageId(roundId: string, agentId: string, nonce: string): string {
  return `${roundId}.${agentId}.${nonce}`;
}

const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });

/** Publishes `update` until acknowledged or past `deadlineAt`. Never throws. */
export async function publishUpdate(
  nc: MeshConnection['nc'],
  update: FlUpdate,
  options: PublishUpdateOptions,
): Promise<PublishOutcome> {
  const now = options.now ?? Date.now;
  let data: Uint8Array;
  try {
    data = encode(flUpdateSchema, update, 'federated update');
  } catch (err) {
    return { type: 'dropped', attempts: 0, lastError: (err as Error).message };
  }
  const js = jetstream(nc);
  const msgID = updateMessageId(update.roundId, update.agentId, randomBytes(8).toString('hex'));
  const headers = signatureHeaders(options.signer, data);
  let attempts = 0;
  let lastError: string | undefined;
  for (;;) {
    const remaining = options.deadlineAt - now();
    if (remaining <= 0 || options.signal?.aborted) {
      return { type: 'dropped', attempts, ...(lastError !== undefined ? { lastError } : {}) };
    }
    attempts += 1;
    try {
      const ack = await js.publish(flUpdateSubject(update.roundId), data, {
        msgID,
        ...(headers ? { headers } : {}),
        timeout: Math.max(1, Math.min(PUBLISH_ACK_TIMEOUT_MS, remaining)),
      });
      return { type: 'published', attempts, duplicate: ack.duplicate };
    } catch (err) {
      lastError = err instanceof Error ? err.message : String(err);
    }
    await sleep(
      Math.min(options.retryDelayMs ?? PUBLISH_RETRY_DELAY_MS, Math.max(0, options.deadlineAt - now())),
      options.signal,
    );
  }
}

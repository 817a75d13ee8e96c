/**
 * What one attempt of a round collected: the agents whose valid update was taken, the refused
 * updates (the first `MAX_FL_REJECTED_LISTED` listed with their reason, every one counted — anyone
 * can publish junk on a round's update subject, and the round record must stay small), the
 * accepted agents whose own update was refused (they send no other, so the round need not wait
 * for them; a forgery in an enrolled agent's name is not its own and does not count), and the sum
 * of the clients' training losses.
 * @module
 */
import { MAX_FL_REJECTED_LISTED } from '@infermesh/protocols';
import type { FlUpdate } from '@infermesh/protocols';
import type { RejectedUpdate } from './update-validation.js';

/** A refused update as the round record lists it. */
export interface RejectedEntry {
  readonly agentId: string;
  readonly reason: string;
}

/** The updates of one attempt. */
export class UpdateTally {
  /** Agents whose update was taken (each agent's first valid one). */
  readonly received = new Set<string>();
  /** The first refused updates, with the reason. */
  readonly rejected: RejectedEntry[] = [];
  /** Every refused update, listed or not. */
  rejectedCount = 0;
  /** Accepted agents whose own (authenticated) update was refused. */
  readonly refused = new Set<string>();
  trainLoss = 0;

  constructor(private readonly accepted: ReadonlySet<string> = new Set()) {}

  /** Notes a refused update; a repeat of an update already taken is not worth an entry. */
  reject(refusal: Pick<RejectedUpdate, 'agentId' | 'reason' | 'unauthenticated'>): void {
    if (refusal.reason.startsWith('duplicate')) return;
    this.rejectedCount += 1;
    if (this.rejected.length < MAX_FL_REJECTED_LISTED)
      this.rejected.push({ agentId: refusal.agentId, reason: refusal.reason.slice(0, 500) });
    const agent = refusal.agentId;
    if (refusal.unauthenticated !== true && this.accepted.has(agent) && !this.received.has(agent))
      this.refused.add(agent);
  }

  /** Notes a taken update. */
  take(update: FlUpdate): void {
    this.received.add(update.agentId);
    this.refused.delete(update.agentId);
    this.trainLoss += update.metrics.loss;
  }

  /** True once every accepted agent's update was taken or refused. */
  everyoneIn(): boolean {
    return this.received.size + this.refused.size >= this.accepted.size;
  }
}

/**
 * The lease that makes one coordinator the only driver of a rollout: a `Lease` under
 * `rolloutLeaseKey(id)` in the rollouts bucket (see `coordination/kv-lease.ts`). A holder renews it
 * on every tick; another instance may take it over only once it has expired. Holders are process
 * instances (`<coordinatorId>/<random>`), so a restarted coordinator waits for its previous life's
 * lease to expire like anyone else.
 * @module
 */
import type { KV } from '@nats-io/kv';
import { rolloutLeaseKey } from '@infermesh/protocols';
import { acquireLease as acquireKvLease, releaseLease as releaseKvLease } from '../coordination/kv-lease.js';
import type { LeaseOutcome } from '../coordination/kv-lease.js';

export type { LeaseOutcome } from '../coordination/kv-lease.js';

/** Takes or renews the lease of `rolloutId` for `holder` until `now + ttlMs`. */
export function acquireLease(
  kv: KV,
  rolloutId: string,
  holder: string,
  ttlMs: number,
  now: number,
): Promise<LeaseOutcome> {
  return acquireKvLease(kv, rolloutLeaseKey(rolloutId), holder, ttlMs, now);
}

/** Gives the lease up when `holder` still has it (a finished rollout, a stopping coordinator). */
export function releaseLease(kv: KV, rolloutId: string, holder: string): Promise<void> {
  return releaseKvLease(kv, rolloutLeaseKey(rolloutId), holder);
}

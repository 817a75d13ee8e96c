/**
 * The lease that makes one coordinator the only driver of a rollout: a `RolloutLease` under
 * `rolloutLeaseKey(id)` in the rollouts bucket, taken and renewed with compare-and-set on the
 * revision. A holder renews it on every tick; another instance may take it over only once
 * `expiresAt` has passed (wall clocks of the coordinators are assumed to agree within a fraction
 * of the TTL). Holders are process instances (`<coordinatorId>/<random>`), so a restarted
 * coordinator waits for its previous life's lease to expire like anyone else.
 * @module
 */
import type { KV } from '@nats-io/kv';
import { rolloutLeaseKey, rolloutLeaseSchema } from '@infermesh/protocols';
import type { RolloutLease } from '@infermesh/protocols';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The outcome of {@link acquireLease}. */
export type LeaseOutcome =
  | {
      readonly held: true;
      readonly lease: RolloutLease;
      readonly revision: number;
      /** True when it was not this holder's before (a first start or a takeover). */
      readonly acquired: boolean;
      /** The lease taken over (expired), when there was one. */
      readonly previous?: RolloutLease | undefined;
    }
  | { readonly held: false; readonly holder: string; readonly expiresAt: number };

/** The current lease of a rollout with its revision (null when none, or a delete marker). */
export async function readLease(
  kv: KV,
  rolloutId: string,
): Promise<{ lease: RolloutLease; revision: number } | { lease: null; revision: number }> {
  const entry = await kv.get(rolloutLeaseKey(rolloutId));
  if (entry === null) return { lease: null, revision: 0 };
  if (entry.operation !== 'PUT') return { lease: null, revision: entry.revision };
  const parsed = rolloutLeaseSchema.safeParse(JSON.parse(decoder.decode(entry.value)));
  return parsed.success
    ? { lease: parsed.data, revision: entry.revision }
    : { lease: null, revision: entry.revision };
}

/**
 * Takes or renews the lease of `rolloutId` for `holder` until `now + ttlMs`. `acquired` is true when
 * it was not this holder's before (a takeover or a first start). Someone else's live lease, or a
 * lost compare-and-set race, answers `held: false`.
 */
export async function acquireLease(
  kv: KV,
  rolloutId: string,
  holder: string,
  ttlMs: number,
  now: number,
): Promise<LeaseOutcome> {
  const current = await readLease(kv, rolloutId);
  const mine = current.lease?.holder === holder;
  if (current.lease !== null && !mine && current.lease.expiresAt > now) {
    return { held: false, holder: current.lease.holder, expiresAt: current.lease.expiresAt };
  }
  const lease: RolloutLease = {
    rolloutId,
    holder,
    acquiredAt: mine && current.lease ? current.lease.acquiredAt : now,
    renewedAt: now,
    expiresAt: now + ttlMs,
  };
  const value = encoder.encode(JSON.stringify(lease));
  const key = rolloutLeaseKey(rolloutId);
  try {
    // A key never written is created; a delete marker or a live value is updated on its revision.
    const revision =
      current.revision === 0 ? await kv.create(key, value) : await kv.update(key, value, current.revision);
    return {
      held: true,
      lease,
      revision,
      acquired: !mine,
      previous: mine ? undefined : (current.lease ?? undefined),
    };
  } catch {
    const after = await readLease(kv, rolloutId);
    return {
      held: false,
      holder: after.lease?.holder ?? 'unknown',
      expiresAt: after.lease?.expiresAt ?? now,
    };
  }
}

/** Gives the lease up when `holder` still has it (a finished rollout, a stopping coordinator). */
export async function releaseLease(kv: KV, rolloutId: string, holder: string): Promise<void> {
  const current = await readLease(kv, rolloutId);
  if (current.lease?.holder !== holder) return;
  try {
    await kv.delete(rolloutLeaseKey(rolloutId), { previousSeq: current.revision });
  } catch {
    // someone took it meanwhile: theirs now
  }
}

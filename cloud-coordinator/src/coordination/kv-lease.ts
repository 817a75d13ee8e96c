/**
 * Leases in a KV bucket: the one mechanism that gives work a single owner among coordinator
 * replicas (a rollout's driver, a federated run's driver). A {@link Lease} under a key is taken
 * when absent, deleted or expired, renewed by its holder, and released on completion — every
 * write a compare-and-set on the key's revision, so of two coordinators racing exactly one wins.
 * Expiry compares wall clocks: coordinators' clocks are assumed to agree within a fraction of the
 * TTL (nats-server 2.9 has no per-key TTL to lean on).
 * @module
 */
import type { KV } from '@nats-io/kv';
import { leaseSchema } from '@infermesh/protocols';
import type { Lease } from '@infermesh/protocols';

/** The outcome of {@link acquireLease}. */
export type LeaseOutcome =
  | {
      readonly held: true;
      readonly lease: Lease;
      readonly revision: number;
      /** True when it was not this holder's before (a first start or a takeover). */
      readonly acquired: boolean;
      /** The expired lease taken over, when there was one. */
      readonly previous?: Lease | undefined;
    }
  | { readonly held: false; readonly holder: string; readonly expiresAt: number };

/** The lease under `key` with the key's revision (lease null when none, deleted or unreadable). */
export async function readLease(kv: KV, key: string): Promise<{ lease: Lease | null; revision: number }> {
  const entry = await kv.get(key);
  if (entry === null) return { lease: null, revision: 0 };
  if (entry.operation !== 'PUT' || entry.length === 0) return { lease: null, revision: entry.revision };
  let value: unknown;
  try {
    value = entry.json();
  } catch {
    return { lease: null, revision: entry.revision };
  }
  const parsed = leaseSchema.safeParse(value);
  return { lease: parsed.success ? parsed.data : null, revision: entry.revision };
}

/**
 * Takes or renews the lease under `key` for `holder` until `now + ttlMs`. Someone else's live lease,
 * or a lost compare-and-set race, answers `held: false` with the holder that stands.
 */
export async function acquireLease(
  kv: KV,
  key: string,
  holder: string,
  ttlMs: number,
  now: number,
): Promise<LeaseOutcome> {
  const current = await readLease(kv, key);
  const mine = current.lease?.holder === holder;
  if (current.lease !== null && !mine && current.lease.expiresAt > now) {
    return { held: false, holder: current.lease.holder, expiresAt: current.lease.expiresAt };
  }
  const lease: Lease = {
    holder,
    acquiredAt: mine && current.lease ? current.lease.acquiredAt : now,
    renewedAt: now,
    expiresAt: now + ttlMs,
  };
  const value = JSON.stringify(lease);
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
    const after = await readLease(kv, key);
    return {
      held: false,
      holder: after.lease?.holder ?? 'unknown',
      expiresAt: after.lease?.expiresAt ?? now,
    };
  }
}

/** Gives the lease up when `holder` still has it, so nobody waits for it to expire. */
export async function releaseLease(kv: KV, key: string, holder: string): Promise<void> {
  const current = await readLease(kv, key);
  if (current.lease?.holder !== holder) return;
  try {
    await kv.delete(key, { previousSeq: current.revision });
  } catch {
    // Taken over meanwhile (theirs now), or NATS is gone: it expires on its own.
  }
}

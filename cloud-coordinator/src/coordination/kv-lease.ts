/**
 * Leases in a KV bucket: the one mechanism that gives work a single owner among coordinator
 * replicas (a rollout's driver, a federated run's driver). A {@link Lease} under a key is taken
 * when absent, deleted or expired, renewed by its holder, and released on completion — every
 * write a compare-and-set on the key's revision, so of two coordinators racing exactly one wins.
 * Expiry compares wall clocks: coordinators' clocks are assumed to agree within a fraction of the
 * TTL (nats-server 2.9 has no per-key TTL to lean on).
 *
 * Losing a race and failing to reach NATS are different things: only a compare-and-set that
 * another writer beat (the key's revision moved) answers `held: false`. A read or write that fails
 * for any other reason (a timeout, a restarting server) throws an UNAVAILABLE {@link InferMeshError}
 * instead, so the caller keeps what it believes it holds and tries again on its next tick; the
 * lease protects itself meanwhile by expiring.
 * @module
 */
import type { KV } from '@nats-io/kv';
import { leaseSchema } from '@infermesh/protocols';
import type { InferMeshError, Lease } from '@infermesh/protocols';
import { registryUnavailable } from '@infermesh/mesh-client';

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

/** The error a lease call throws when NATS cannot be reached (a retry may succeed). */
const leaseUnavailable = (key: string, cause: unknown): InferMeshError =>
  registryUnavailable(`the lease '${key}'`, cause);

/**
 * The lease under `key` with the key's revision (lease null when none, deleted or unreadable).
 * UNAVAILABLE when the bucket cannot be read.
 */
export async function readLease(kv: KV, key: string): Promise<{ lease: Lease | null; revision: number }> {
  let entry;
  try {
    entry = await kv.get(key);
  } catch (cause) {
    throw leaseUnavailable(key, cause);
  }
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
 * or a lost compare-and-set race, answers `held: false` with the holder that stands. Throws
 * UNAVAILABLE (nothing is known about the race) when NATS does not answer.
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
  } catch (cause) {
    // Who wrote last tells a lost race (another revision) from a failed call (the same one).
    const after = await readLease(kv, key);
    if (after.lease?.holder === holder && after.lease.expiresAt === lease.expiresAt) {
      // Our write landed; only its answer was lost.
      return {
        held: true,
        lease: after.lease,
        revision: after.revision,
        acquired: !mine,
        previous: mine ? undefined : (current.lease ?? undefined),
      };
    }
    if (after.revision === current.revision) throw leaseUnavailable(key, cause);
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

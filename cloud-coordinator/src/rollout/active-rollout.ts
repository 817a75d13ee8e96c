/**
 * One live rollout per model, race-free: a claim under `rolloutActiveKey(model)` in the rollouts
 * bucket, taken with a KV compare-and-set before a rollout's record is stored (and before a
 * rollback makes a finished rollout live again), and deleted when the rollout ends. Of two starts
 * racing, in one coordinator or in several, exactly one creates the key; the other reads the
 * winner's claim and gets a CONFLICT. A claim whose rollout has ended (its release was lost to a
 * crash) or whose record never appeared (a start that failed after claiming) is replaced, again
 * with a compare-and-set on the revision that was read.
 * @module
 */
import type { KV, KvEntry } from '@nats-io/kv';
import { ACTIVE_CLAIM_STALE_MS, activeRolloutClaimSchema, rolloutActiveKey } from '@infermesh/protocols';
import type { ActiveRolloutClaim } from '@infermesh/protocols';

/** Reads of the claim before giving up on compare-and-set races. */
const MAX_CLAIM_ATTEMPTS = 8;

/** Where the rollout a claim names stands. */
export type ClaimedRolloutStatus = 'live' | 'final' | 'missing';

/** The outcome of {@link claimActiveRollout}. */
export type ClaimOutcome =
  | { readonly claimed: true; readonly revision: number }
  /** Another rollout is live (or being started): `rolloutId`. */
  | { readonly claimed: false; readonly rolloutId: string };

/** The claim in an entry; null for none, a delete marker, or a value that does not parse. */
function claimOf(entry: KvEntry | null): ActiveRolloutClaim | null {
  if (entry === null || entry.operation !== 'PUT' || entry.length === 0) return null;
  try {
    const parsed = activeRolloutClaimSchema.safeParse(entry.json());
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

/**
 * Claims `model` for `rolloutId`. `statusOf` says where the rollout of an existing claim stands:
 * a live one keeps its claim, a final one loses it, a missing one loses it once the claim is older
 * than {@link ACTIVE_CLAIM_STALE_MS} (before that it is a start in progress).
 * @example
 * const outcome = await claimActiveRollout(kv, 'spam', id, Date.now(), statusOf);
 * if (!outcome.claimed) throw conflict(`rollout ${outcome.rolloutId} is live`);
 */
export async function claimActiveRollout(
  kv: KV,
  model: string,
  rolloutId: string,
  now: number,
  statusOf: (rolloutId: string) => Promise<ClaimedRolloutStatus>,
): Promise<ClaimOutcome> {
  const key = rolloutActiveKey(model);
  const value = JSON.stringify({ rolloutId, claimedAt: now } satisfies ActiveRolloutClaim);
  for (let attempt = 0; attempt < MAX_CLAIM_ATTEMPTS; attempt += 1) {
    const entry = await kv.get(key);
    const claim = claimOf(entry);
    if (claim?.rolloutId === rolloutId && entry) return { claimed: true, revision: entry.revision };
    if (claim !== null) {
      const status = await statusOf(claim.rolloutId);
      const inProgress = status === 'missing' && now - claim.claimedAt < ACTIVE_CLAIM_STALE_MS;
      if (status === 'live' || inProgress) return { claimed: false, rolloutId: claim.rolloutId };
    }
    try {
      // A key never written is created; a delete marker or a stale claim is replaced on its revision.
      const revision =
        entry === null ? await kv.create(key, value) : await kv.update(key, value, entry.revision);
      return { claimed: true, revision };
    } catch {
      // Someone else wrote the key between the read and the write: read it again.
    }
  }
  const last = claimOf(await kv.get(key));
  return { claimed: false, rolloutId: last?.rolloutId ?? 'unknown' };
}

/** Deletes the claim of `model` when it still names `rolloutId` (the rollout ended). */
export async function releaseActiveRollout(kv: KV, model: string, rolloutId: string): Promise<void> {
  const key = rolloutActiveKey(model);
  const entry = await kv.get(key);
  if (claimOf(entry)?.rolloutId !== rolloutId || entry === null) return;
  try {
    await kv.delete(key, { previousSeq: entry.revision });
  } catch {
    // Replaced meanwhile (no longer ours), or NATS is gone: a claim of an ended rollout is stale anyway.
  }
}

/**
 * The lease that makes exactly one coordinator the driver of a federated run: a `Lease` under
 * `lease.<runId>` in `roundsBucket()` (see `coordination/kv-lease.ts`). A holder that stops
 * renewing (killed, partitioned) loses it at `expiresAt`; another coordinator (or the same one
 * restarted: holder ids are per instance, `<coordinatorId>/<random>`, so a restarted coordinator
 * waits for its previous life's lease to expire like anyone else) then takes over the run where
 * the record says it stands.
 * @module
 */
import type { KV } from '@nats-io/kv';
import { acquireLease, releaseLease } from '../coordination/kv-lease.js';

/** Default lease lifetime: a dead driver's run is picked up this long after its last renewal. */
export const DEFAULT_FL_LEASE_TTL_MS = 10_000;

const leaseKey = (runId: string): string => `lease.${runId}`;

/** One coordinator's hold on one run. */
export class RunLease {
  #held = false;

  constructor(
    private readonly kv: KV,
    readonly runId: string,
    readonly holder: string,
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Takes the lease when it is free, expired or already ours; false when another holds it. */
  async acquire(): Promise<boolean> {
    const outcome = await acquireLease(this.kv, leaseKey(this.runId), this.holder, this.ttlMs, this.now());
    this.#held = outcome.held;
    return outcome.held;
  }

  /** Extends the lease; false when it was lost (another coordinator took it over). */
  async renew(): Promise<boolean> {
    if (!this.#held) return false;
    return this.acquire();
  }

  /** Gives the lease up (best effort), so another coordinator need not wait for it to expire. */
  async release(): Promise<void> {
    if (!this.#held) return;
    this.#held = false;
    await releaseLease(this.kv, leaseKey(this.runId), this.holder);
  }
}

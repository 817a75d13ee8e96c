/**
 * The lease that makes exactly one coordinator the driver of a federated run: a value
 * `{ holder, expiresAt }` under `lease.<runId>` in `roundsBucket()`, taken and renewed with KV
 * compare-and-set. A holder that stops renewing (killed, partitioned) loses it at `expiresAt`;
 * another coordinator (or the same one restarted: holder ids are coordinator ids) then takes over
 * the run where the record says it stands.
 * @module
 */
import type { KV } from '@nats-io/kv';
import { flRunLeaseSchema } from '@infermesh/protocols';

/** Default lease lifetime: a dead driver's run is picked up this long after its last renewal. */
export const DEFAULT_FL_LEASE_TTL_MS = 10_000;

const leaseKey = (runId: string): string => `lease.${runId}`;

/** One coordinator's hold on one run. */
export class RunLease {
  #revision: number | undefined;

  constructor(
    private readonly kv: KV,
    readonly runId: string,
    readonly holder: string,
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Takes the lease when it is free, expired or already ours; false when another holds it. */
  async acquire(): Promise<boolean> {
    const key = leaseKey(this.runId);
    const entry = await this.kv.get(key);
    const value = JSON.stringify({ holder: this.holder, expiresAt: this.now() + this.ttlMs });
    try {
      if (!entry || entry.operation !== 'PUT' || entry.length === 0) {
        this.#revision = entry
          ? await this.kv.update(key, value, entry.revision)
          : await this.kv.create(key, value);
        return true;
      }
      const lease = flRunLeaseSchema.safeParse(entry.json());
      const free = !lease.success || lease.data.holder === this.holder || lease.data.expiresAt <= this.now();
      if (!free) return false;
      this.#revision = await this.kv.update(key, value, entry.revision);
      return true;
    } catch {
      return false; // another coordinator won the race
    }
  }

  /** Extends the lease; false when it was lost (someone else wrote it). */
  async renew(): Promise<boolean> {
    if (this.#revision === undefined) return false;
    const value = JSON.stringify({ holder: this.holder, expiresAt: this.now() + this.ttlMs });
    try {
      this.#revision = await this.kv.update(leaseKey(this.runId), value, this.#revision);
      return true;
    } catch {
      this.#revision = undefined;
      return false;
    }
  }

  /** Gives the lease up (best effort), so another coordinator need not wait for it to expire. */
  async release(): Promise<void> {
    if (this.#revision === undefined) return;
    const revision = this.#revision;
    this.#revision = undefined;
    try {
      await this.kv.delete(leaseKey(this.runId), { previousSeq: revision });
    } catch {
      // Taken over meanwhile, or NATS is gone: it expires on its own.
    }
  }
}

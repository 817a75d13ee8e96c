/**
 * Rollout records in the KV bucket `rolloutsBucket()` (key `rolloutKey(id)`, value a `Rollout` as
 * JSON). Every write is a compare-and-set on the revision the writer read: the admin API (pause,
 * resume, abort, rollback) and the driving coordinator write the same record, and neither may
 * overwrite what the other wrote in between. {@link RolloutStore.update} re-reads and re-applies
 * its change on a conflict.
 * @module
 */
import type { KV } from '@nats-io/kv';
import {
  ErrorCode,
  InferMeshError,
  MAX_ROLLOUT_EVENTS,
  notFound,
  rolloutKey,
  rolloutKeyFilter,
  rolloutSchema,
  rolloutsBucket,
} from '@infermesh/protocols';
import type { Rollout, RolloutEvent } from '@infermesh/protocols';
import { openRegistryKv, registryUnavailable } from '@infermesh/mesh-client';
import type { MeshConnection } from '@infermesh/mesh-client';

/** Attempts of one update before it gives up on conflicts. */
const MAX_UPDATE_ATTEMPTS = 8;

/** A rollout and the revision it was read at. */
export interface StoredRollout {
  readonly rollout: Rollout;
  readonly revision: number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Appends an event, keeping the newest {@link MAX_ROLLOUT_EVENTS}. */
export function withEvent(rollout: Rollout, event: RolloutEvent): Rollout {
  const events = [...rollout.events, event];
  return {
    ...rollout,
    events: events.length > MAX_ROLLOUT_EVENTS ? events.slice(-MAX_ROLLOUT_EVENTS) : events,
    updatedAt: Math.max(rollout.updatedAt, event.at),
  };
}

/** The rollouts bucket of one connection. */
export class RolloutStore {
  /** The bucket (the lease lives in it too). */
  readonly kv: KV;

  private constructor(kv: KV) {
    this.kv = kv;
  }

  /** Opens (creating) the bucket. */
  static async open(connection: MeshConnection, replicas = 1): Promise<RolloutStore> {
    const kv = await openRegistryKv(connection, rolloutsBucket(), 'InferMesh rollouts and their leases', {
      create: true,
      replicas,
    });
    return new RolloutStore(kv);
  }

  /** A rollout with its revision; null when there is none. */
  async get(id: string): Promise<StoredRollout | null> {
    const entry = await this.#call(() => this.kv.get(rolloutKey(id)));
    if (entry === null || entry.operation !== 'PUT') return null;
    return {
      rollout: rolloutSchema.parse(JSON.parse(decoder.decode(entry.value))),
      revision: entry.revision,
    };
  }

  /** A rollout; NOT_FOUND when there is none. */
  async require(id: string): Promise<StoredRollout> {
    const stored = await this.get(id);
    if (!stored) throw notFound(`rollout '${id}' does not exist`, { id });
    return stored;
  }

  /** Stores a new rollout; CONFLICT when the id exists. */
  async create(rollout: Rollout): Promise<number> {
    const value = encoder.encode(JSON.stringify(rolloutSchema.parse(rollout)));
    try {
      return await this.kv.create(rolloutKey(rollout.id), value);
    } catch (cause) {
      if ((await this.get(rollout.id)) !== null) {
        throw new InferMeshError(ErrorCode.CONFLICT, `rollout '${rollout.id}' exists`, { cause });
      }
      throw registryUnavailable('the rollouts bucket', cause);
    }
  }

  /** Writes `rollout` only if the record is still at `revision`; false on a conflict. */
  async put(rollout: Rollout, revision: number): Promise<number | false> {
    const value = encoder.encode(JSON.stringify(rolloutSchema.parse(rollout)));
    try {
      return await this.kv.update(rolloutKey(rollout.id), value, revision);
    } catch (cause) {
      const now = await this.get(rollout.id);
      if (now !== null && now.revision !== revision) return false;
      throw registryUnavailable('the rollouts bucket', cause);
    }
  }

  /**
   * Applies `change` to the current record and writes it with a compare-and-set, re-reading and
   * re-applying on a conflict. `change` returns undefined to write nothing. NOT_FOUND when absent.
   */
  async update(id: string, change: (rollout: Rollout) => Rollout | undefined): Promise<StoredRollout> {
    for (let attempt = 0; attempt < MAX_UPDATE_ATTEMPTS; attempt += 1) {
      const stored = await this.require(id);
      const next = change(stored.rollout);
      if (next === undefined) return stored;
      const revision = await this.put(next, stored.revision);
      if (revision !== false) return { rollout: next, revision };
    }
    throw new InferMeshError(ErrorCode.CONFLICT, `rollout '${id}' keeps changing; try again`, {
      retryAfterSeconds: 1,
    });
  }

  /** Every rollout, newest first. */
  async list(): Promise<Rollout[]> {
    const keys = await this.#call(async () => {
      const found: string[] = [];
      for await (const key of await this.kv.keys(rolloutKeyFilter())) found.push(key);
      return found;
    });
    const rollouts: Rollout[] = [];
    for (const key of keys) {
      const stored = await this.get(key.slice('rollout.'.length));
      if (stored) rollouts.push(stored.rollout);
    }
    return rollouts.sort((a, b) => b.createdAt - a.createdAt || (a.id < b.id ? 1 : -1));
  }

  async #call<T>(call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (cause) {
      throw registryUnavailable('the rollouts bucket', cause);
    }
  }
}

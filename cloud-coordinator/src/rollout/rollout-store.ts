/**
 * Rollout records in the KV bucket `rolloutsBucket()` (key `rolloutKey(id)`, value a `Rollout` as
 * JSON) and their agent chunks (key `rolloutAgentChunkKey(id, n)`, value a `RolloutAgentChunk`).
 * Every write is a compare-and-set on the revision the writer read: the admin API (pause, resume,
 * abort, rollback) and the driving coordinator write the same record, and neither may overwrite
 * what the other wrote in between. {@link RolloutStore.update} re-reads and re-applies its change
 * on a conflict. Every value is bounded (the record by its capped lists, a chunk by
 * `ROLLOUT_AGENT_CHUNK_SIZE`), whatever the fleet's size.
 * @module
 */
import type { KV } from '@nats-io/kv';
import {
  ErrorCode,
  InferMeshError,
  MAX_ROLLOUT_EVENT_MESSAGE,
  MAX_ROLLOUT_EVENTS,
  notFound,
  rolloutAgentChunkKey,
  rolloutAgentChunkSchema,
  rolloutKey,
  rolloutKeyFilter,
  rolloutSchema,
  rolloutsBucket,
} from '@infermesh/protocols';
import type { Rollout, RolloutAgentChunk, RolloutEvent } from '@infermesh/protocols';
import { listKeys, openRegistryKv, registryUnavailable } from '@infermesh/mesh-client';
import type { MeshConnection } from '@infermesh/mesh-client';

/** Attempts of one update before it gives up on conflicts. */
const MAX_UPDATE_ATTEMPTS = 8;
/** Chunks read or written at once. */
const CHUNK_CONCURRENCY = 16;

/** A rollout and the revision it was read at. */
export interface StoredRollout {
  readonly rollout: Rollout;
  readonly revision: number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A chunk and the revision it was read at. */
export interface StoredChunk {
  readonly chunk: RolloutAgentChunk;
  readonly revision: number;
}

/** Runs `work` over `items`, at most `limit` at once, keeping the order of the results. */
export async function mapLimited<T, R>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<R>,
): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < items.length) {
      const index = next;
      next += 1;
      results[index] = await work(items[index] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  return results;
}

/** Appends an event (its message cut to a bounded length), keeping the newest {@link MAX_ROLLOUT_EVENTS}. */
export function withEvent(rollout: Rollout, entry: RolloutEvent): Rollout {
  const event =
    entry.message.length > MAX_ROLLOUT_EVENT_MESSAGE
      ? { ...entry, message: `${entry.message.slice(0, MAX_ROLLOUT_EVENT_MESSAGE - 3)}...` }
      : entry;
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

  /**
   * Stores a new rollout: its agent chunks first, then the record (a rollout is never seen without
   * its agents); CONFLICT when the id exists.
   */
  async create(rollout: Rollout, chunks: readonly RolloutAgentChunk[]): Promise<number> {
    await mapLimited(chunks, CHUNK_CONCURRENCY, async (chunk) => {
      const revision = await this.putChunk(chunk, 0);
      if (revision === false) {
        throw new InferMeshError(ErrorCode.CONFLICT, `rollout '${rollout.id}' exists`);
      }
    });
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

  /** One chunk of a rollout's agents with its revision; null when absent. */
  async getChunk(id: string, chunk: number): Promise<StoredChunk | null> {
    const entry = await this.#call(() => this.kv.get(rolloutAgentChunkKey(id, chunk)));
    if (entry === null || entry.operation !== 'PUT') return null;
    return {
      chunk: rolloutAgentChunkSchema.parse(JSON.parse(decoder.decode(entry.value))),
      revision: entry.revision,
    };
  }

  /** Chunks `from .. to - 1` of a rollout, in order (a missing one is skipped). */
  async chunks(id: string, from: number, to: number): Promise<StoredChunk[]> {
    const indexes = Array.from({ length: Math.max(0, to - from) }, (_, i) => from + i);
    const found = await mapLimited(indexes, CHUNK_CONCURRENCY, (index) => this.getChunk(id, index));
    return found.filter((c): c is StoredChunk => c !== null);
  }

  /**
   * Writes a chunk only if it is still at `revision` (0: only when absent); false on a conflict.
   */
  async putChunk(chunk: RolloutAgentChunk, revision: number): Promise<number | false> {
    const key = rolloutAgentChunkKey(chunk.rolloutId, chunk.chunk);
    const value = encoder.encode(JSON.stringify(rolloutAgentChunkSchema.parse(chunk)));
    try {
      return revision === 0 ? await this.kv.create(key, value) : await this.kv.update(key, value, revision);
    } catch (cause) {
      const now = await this.getChunk(chunk.rolloutId, chunk.chunk);
      if ((now?.revision ?? 0) !== revision) return false;
      throw registryUnavailable('the rollouts bucket', cause);
    }
  }

  /** Every rollout this version can read, newest first. */
  async list(): Promise<Rollout[]> {
    const keys = await this.#call(() => listKeys(this.kv, rolloutKeyFilter()));
    const rollouts: Rollout[] = [];
    for (const key of keys) {
      const entry = await this.#call(() => this.kv.get(key));
      if (entry === null || entry.operation !== 'PUT') continue;
      // A record this version cannot read (an older layout) is left out rather than stopping all.
      let value: unknown;
      try {
        value = JSON.parse(decoder.decode(entry.value));
      } catch {
        continue;
      }
      const parsed = rolloutSchema.safeParse(value);
      if (parsed.success) rollouts.push(parsed.data);
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

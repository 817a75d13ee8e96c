/**
 * Each agent's desired model versions in the KV bucket `desiredStateBucket()`: one key per agent
 * and model (`desiredModelKey(agentId, model)` = `<agentId>.<model>`), value a `DesiredModel` as
 * UTF-8 JSON. No key, or a delete marker, means the agent should not run the model.
 *
 * How an agent syncs: {@link DesiredStateStore.watch} its own keys (`<agentId>.>`). The watch
 * yields the current entries first, then every change, and carries on across reconnects; apply
 * each change idempotently (a `set` for what already runs changes nothing). After a change is
 * seen, the agent fetches what it lacks (`ArtifactStore`), verifies (`verifyManifestSignature`,
 * sha256), loads, and switches. `agentDesiredSubject(agentId)` carries an empty nudge after each
 * change made through the admin API, for agents that poll instead of watching.
 * @module
 */
import type { KV, KvEntry } from '@nats-io/kv';
import { KvWatchInclude } from '@nats-io/kv';
import {
  ErrorCode,
  InferMeshError,
  agentDesiredKeyFilter,
  agentDesiredSubject,
  desiredModelKey,
  desiredModelSchema,
  desiredStateBucket,
  modelDesiredKeyFilter,
  parseDesiredModelKey,
} from '@infermesh/protocols';
import type { DesiredModel } from '@infermesh/protocols';
import type { MeshConnection } from './connection.js';
import { jetstreamCall, listKeys, openRegistryKv, registryUnavailable } from './registry-buckets.js';
import type { RegistryStoreOptions } from './registry-buckets.js';

/** A change seen by {@link DesiredStateStore.watch}. */
export type DesiredStateChange =
  | { readonly type: 'set'; readonly desired: DesiredModel; readonly revision: number }
  | { readonly type: 'removed'; readonly model: string; readonly revision: number }
  /** A value that is not a valid DesiredModel (the agent should report it, and keep what runs). */
  | { readonly type: 'invalid'; readonly model: string; readonly revision: number; readonly reason: string };

/** One agent's desired version of one model, with where it came from. */
export interface DesiredEntry {
  readonly agentId: string;
  readonly desired: DesiredModel;
  /** KV revision, for compare-and-set updates. */
  readonly revision: number;
}

/** Options of {@link DesiredStateStore.watch}. */
export interface DesiredWatchOptions {
  signal?: AbortSignal;
  /** Only changes after now (no current values first). */
  updatesOnly?: boolean;
}

const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** Parses a stored value; undefined with the reason when it is not a valid DesiredModel. */
function parseDesired(entry: KvEntry, model: string): { desired?: DesiredModel; reason?: string } {
  try {
    const parsed = desiredModelSchema.safeParse(JSON.parse(decoder.decode(entry.value)));
    if (!parsed.success) return { reason: parsed.error.issues.map((i) => i.message).join('; ') };
    if (parsed.data.model !== model) return { reason: `the value names model ${parsed.data.model}` };
    return { desired: parsed.data };
  } catch (err) {
    return { reason: `not JSON: ${(err as Error).message}` };
  }
}

/** The desired-state bucket of one connection. */
export class DesiredStateStore {
  readonly #connection: MeshConnection;
  readonly #kv: KV;

  private constructor(connection: MeshConnection, kv: KV) {
    this.#connection = connection;
    this.#kv = kv;
  }

  /**
   * Opens the desired-state bucket (creating it with `create: true`).
   * @example
   * const desired = await DesiredStateStore.open(connection);
   * for await (const change of desired.watch('edge-7', { signal })) apply(change);
   */
  static async open(
    connection: MeshConnection,
    options: RegistryStoreOptions = {},
  ): Promise<DesiredStateStore> {
    const kv = await openRegistryKv(
      connection,
      desiredStateBucket(),
      'InferMesh desired model versions per agent',
      options,
    );
    return new DesiredStateStore(connection, kv);
  }

  /** An agent's desired versions, by model name (invalid values are left out). */
  async get(agentId: string): Promise<DesiredModel[]> {
    const keys = await this.#keys(agentDesiredKeyFilter(agentId));
    const models: DesiredModel[] = [];
    for (const key of keys.sort()) {
      const entry = await this.#entry(key);
      if (entry) models.push(entry.desired);
    }
    return models;
  }

  /** One agent's desired version of one model, with its revision; null when none. */
  async getModel(agentId: string, model: string): Promise<DesiredEntry | null> {
    return this.#entry(desiredModelKey(agentId, model));
  }

  /** Every agent whose desired state names `model` (any version). */
  async holdersOf(model: string): Promise<DesiredEntry[]> {
    const entries: DesiredEntry[] = [];
    for (const key of (await this.#keys(modelDesiredKeyFilter(model))).sort()) {
      const entry = await this.#entry(key);
      if (entry) entries.push(entry);
    }
    return entries;
  }

  /**
   * Sets an agent's desired version of a model and nudges the agent. With `previousRevision`, only
   * when the entry is still at that revision (0: only when absent) — how a rollout writes without
   * overwriting an operator's pin.
   */
  async set(agentId: string, desired: DesiredModel, previousRevision?: number): Promise<number> {
    const key = desiredModelKey(agentId, desired.model);
    const value = encoder.encode(JSON.stringify(desiredModelSchema.parse(desired)));
    let revision: number;
    if (previousRevision === undefined) {
      revision = await jetstreamCall('the desired-state bucket', () => this.#kv.put(key, value));
    } else {
      try {
        revision =
          previousRevision === 0
            ? await this.#kv.create(key, value)
            : await this.#kv.update(key, value, previousRevision);
      } catch (cause) {
        const now = await this.getModel(agentId, desired.model);
        if ((now?.revision ?? 0) !== previousRevision) {
          throw new InferMeshError(
            ErrorCode.CONFLICT,
            `the desired version of ${desired.model} on ${agentId} changed meanwhile`,
            { cause, details: { revision: now?.revision ?? 0 } },
          );
        }
        throw registryUnavailable('the desired-state bucket', cause);
      }
    }
    this.#nudge(agentId);
    return revision;
  }

  /** Removes an agent's desired version of a model; false when there was none. */
  async remove(agentId: string, model: string): Promise<boolean> {
    const key = desiredModelKey(agentId, model);
    const entry = await jetstreamCall('the desired-state bucket', () => this.#kv.get(key));
    if (entry === null || entry.operation !== 'PUT') return false;
    await jetstreamCall('the desired-state bucket', () => this.#kv.delete(key));
    this.#nudge(agentId);
    return true;
  }

  /**
   * Streams an agent's desired state: the current entries first (unless `updatesOnly`), then every
   * change, until the signal aborts. Survives reconnects (the watch resumes where it was).
   */
  async *watch(agentId: string, options: DesiredWatchOptions = {}): AsyncGenerator<DesiredStateChange> {
    const iterator = await jetstreamCall('the desired-state bucket', () =>
      this.#kv.watch({
        key: agentDesiredKeyFilter(agentId),
        include: options.updatesOnly ? KvWatchInclude.UpdatesOnly : KvWatchInclude.LastValue,
      }),
    );
    const stop = (): void => iterator.stop();
    options.signal?.addEventListener('abort', stop, { once: true });
    try {
      for await (const entry of iterator) {
        const ref = parseDesiredModelKey(entry.key);
        if (!ref) continue;
        if (entry.operation !== 'PUT') {
          yield { type: 'removed', model: ref.model, revision: entry.revision };
          continue;
        }
        const { desired, reason } = parseDesired(entry, ref.model);
        yield desired
          ? { type: 'set', desired, revision: entry.revision }
          : { type: 'invalid', model: ref.model, revision: entry.revision, reason: reason ?? 'invalid' };
      }
    } finally {
      options.signal?.removeEventListener('abort', stop);
      iterator.stop();
    }
  }

  async #entry(key: string): Promise<DesiredEntry | null> {
    const ref = parseDesiredModelKey(key);
    if (!ref) return null;
    const entry = await jetstreamCall('the desired-state bucket', () => this.#kv.get(key));
    if (entry === null || entry.operation !== 'PUT') return null;
    const { desired } = parseDesired(entry, ref.model);
    return desired ? { agentId: ref.agentId, desired, revision: entry.revision } : null;
  }

  async #keys(filter: string): Promise<string[]> {
    return jetstreamCall('the desired-state bucket', () => listKeys(this.#kv, filter));
  }

  #nudge(agentId: string): void {
    try {
      this.#connection.nc.publish(agentDesiredSubject(agentId));
    } catch (err) {
      this.#connection.logger.debug({ err, agentId }, 'could not nudge an agent');
    }
  }
}

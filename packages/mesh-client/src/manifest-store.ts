/**
 * Model manifests in the KV bucket `modelsBucket()`, one key per version
 * (`modelManifestKey(name, version)` = `<name>.<version>`, value the signed manifest as UTF-8 JSON).
 *
 * Versions are immutable: {@link ManifestStore.create} uses the KV's create, which fails when the
 * key exists, and refuses a key that holds a delete marker too, so a deleted name@version is never
 * reused for other bytes. Readers get manifests validated against the schema; verifying the
 * signature is the reader's next step (`verifyManifestSignature`).
 * @module
 */
import type { KV, KvEntry, KvWatchEntry } from '@nats-io/kv';
import { KvWatchInclude } from '@nats-io/kv';
import {
  ErrorCode,
  InferMeshError,
  compareModelVersions,
  modelManifestKey,
  modelManifestSchema,
  modelVersionsKeyFilter,
  modelsBucket,
  parseModelManifestKey,
} from '@infermesh/protocols';
import type { ModelManifest } from '@infermesh/protocols';
import type { MeshConnection } from './connection.js';
import { jetstreamCall, listKeys, openRegistryKv, registryUnavailable } from './registry-buckets.js';
import type { RegistryStoreOptions } from './registry-buckets.js';

/** A change seen by {@link ManifestStore.watch}. */
export type ManifestChange =
  | { readonly type: 'created'; readonly manifest: ModelManifest; readonly revision: number }
  | { readonly type: 'deleted'; readonly name: string; readonly version: string; readonly revision: number }
  /** A value that is not a valid manifest (never written by a coordinator). */
  | { readonly type: 'invalid'; readonly key: string; readonly revision: number; readonly reason: string };

/** Options of {@link ManifestStore.watch}. */
export interface ManifestWatchOptions {
  /** Only this model's versions; every model when absent. */
  name?: string;
  /** Only changes after now (no current values first). */
  updatesOnly?: boolean;
  signal?: AbortSignal;
}

const decoder = new TextDecoder();

function parseManifest(entry: KvEntry): ModelManifest {
  let json: unknown;
  try {
    json = JSON.parse(decoder.decode(entry.value));
  } catch (cause) {
    throw new InferMeshError(ErrorCode.INTERNAL, `the stored manifest ${entry.key} is not JSON`, { cause });
  }
  const parsed = modelManifestSchema.safeParse(json);
  if (!parsed.success) {
    throw new InferMeshError(ErrorCode.INTERNAL, `the stored manifest ${entry.key} is not a valid manifest`, {
      details: { issues: parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`) },
    });
  }
  return parsed.data;
}

const isLive = (entry: KvEntry | null): entry is KvEntry => entry !== null && entry.operation === 'PUT';

/** The models bucket of one connection. */
export class ManifestStore {
  readonly #kv: KV;

  private constructor(kv: KV) {
    this.#kv = kv;
  }

  /**
   * Opens the models bucket (creating it with `create: true`).
   * @example
   * const manifests = await ManifestStore.open(connection);
   * const manifest = await manifests.get('spam', '3');
   */
  static async open(connection: MeshConnection, options: RegistryStoreOptions = {}): Promise<ManifestStore> {
    const kv = await openRegistryKv(connection, modelsBucket(), 'InferMesh model manifests', options);
    return new ManifestStore(kv);
  }

  /** The manifest of name@version, or null when there is none (never created, or deleted). */
  async get(name: string, version: string): Promise<ModelManifest | null> {
    const key = modelManifestKey(name, version);
    const entry = await jetstreamCall('the models bucket', () => this.#kv.get(key));
    return isLive(entry) ? parseManifest(entry) : null;
  }

  /** Whether name@version exists, existed and was deleted, or never existed. */
  async state(name: string, version: string): Promise<'live' | 'deleted' | 'absent'> {
    const key = modelManifestKey(name, version);
    const entry = await jetstreamCall('the models bucket', () => this.#kv.get(key));
    if (entry === null) return 'absent';
    return entry.operation === 'PUT' ? 'live' : 'deleted';
  }

  /** Versions of a model, oldest first (see `compareModelVersions`). */
  async versions(name: string): Promise<string[]> {
    const keys = await this.#keys(modelVersionsKeyFilter(name));
    return keys
      .map((key) => parseModelManifestKey(key)?.version)
      .filter((v): v is string => v !== undefined)
      .sort(compareModelVersions);
  }

  /** Every model with its versions (oldest first), by name. */
  async list(): Promise<Map<string, string[]>> {
    const models = new Map<string, string[]>();
    for (const key of await this.#keys('>')) {
      const ref = parseModelManifestKey(key);
      if (!ref) continue;
      const versions = models.get(ref.name) ?? [];
      versions.push(ref.version);
      models.set(ref.name, versions);
    }
    for (const versions of models.values()) versions.sort(compareModelVersions);
    return new Map([...models.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  }

  /** The newest version's manifest, or null when the model has none. */
  async latest(name: string): Promise<ModelManifest | null> {
    const versions = await this.versions(name);
    for (const version of versions.reverse()) {
      const manifest = await this.get(name, version);
      if (manifest) return manifest;
    }
    return null;
  }

  /**
   * Stores a new version's manifest. CONFLICT when name@version exists, or existed and was deleted
   * (versions are never reused).
   */
  async create(manifest: ModelManifest): Promise<number> {
    const key = modelManifestKey(manifest.name, manifest.version);
    const what = `${manifest.name}@${manifest.version}`;
    const previous = await jetstreamCall('the models bucket', () => this.#kv.get(key));
    if (previous !== null) {
      throw new InferMeshError(
        ErrorCode.CONFLICT,
        previous.operation === 'PUT'
          ? `${what} exists; versions are immutable, push a new version`
          : `${what} was deleted; a version is never reused, push a new version`,
      );
    }
    const bytes = new TextEncoder().encode(JSON.stringify(manifest));
    try {
      return await this.#kv.create(key, bytes);
    } catch (cause) {
      // create fails when another writer got there first.
      const now = await jetstreamCall('the models bucket', () => this.#kv.get(key));
      if (now !== null) {
        throw new InferMeshError(ErrorCode.CONFLICT, `${what} exists; versions are immutable`, { cause });
      }
      throw registryUnavailable('the models bucket', cause);
    }
  }

  /** Deletes name@version (leaving a delete marker); false when it did not exist. */
  async delete(name: string, version: string): Promise<boolean> {
    const key = modelManifestKey(name, version);
    const entry = await jetstreamCall('the models bucket', () => this.#kv.get(key));
    if (!isLive(entry)) return false;
    await jetstreamCall('the models bucket', () => this.#kv.delete(key, { previousSeq: entry.revision }));
    return true;
  }

  /**
   * Streams the bucket's manifests (current values first unless `updatesOnly`), then changes as
   * they happen, until the signal aborts. The watch survives reconnects.
   */
  async *watch(options: ManifestWatchOptions = {}): AsyncGenerator<ManifestChange> {
    const key = options.name === undefined ? '>' : modelVersionsKeyFilter(options.name);
    const iterator = await jetstreamCall('the models bucket', () =>
      this.#kv.watch({
        key,
        include: options.updatesOnly ? KvWatchInclude.UpdatesOnly : KvWatchInclude.LastValue,
      }),
    );
    const stop = (): void => iterator.stop();
    options.signal?.addEventListener('abort', stop, { once: true });
    try {
      for await (const entry of iterator) {
        const change = toChange(entry);
        if (change) yield change;
      }
    } finally {
      options.signal?.removeEventListener('abort', stop);
      iterator.stop();
    }
  }

  async #keys(filter: string): Promise<string[]> {
    return jetstreamCall('the models bucket', () => listKeys(this.#kv, filter));
  }
}

function toChange(entry: KvWatchEntry): ManifestChange | undefined {
  const ref = parseModelManifestKey(entry.key);
  if (!ref) return undefined;
  if (entry.operation !== 'PUT') return { type: 'deleted', ...ref, revision: entry.revision };
  try {
    return { type: 'created', manifest: parseManifest(entry), revision: entry.revision };
  } catch (err) {
    return { type: 'invalid', key: entry.key, revision: entry.revision, reason: (err as Error).message };
  }
}

/**
 * Opening the registry's JetStream stores: the KV buckets `modelsBucket()` and
 * `desiredStateBucket()` and the object store `artifactsObjectStore()`. The coordinator creates
 * them (`create: true`, with the replica count of the deployment); agents and workers open what
 * exists. A failure is UNAVAILABLE: the registry needs JetStream on the NATS server.
 * @module
 */
import { Kvm } from '@nats-io/kv';
import type { KV } from '@nats-io/kv';
import { Objm, StorageType } from '@nats-io/obj';
import type { ObjectStore } from '@nats-io/obj';
import { ErrorCode, InferMeshError, isInferMeshError } from '@infermesh/protocols';
import type { MeshConnection } from './connection.js';

/** Values kept per KV key: the current one plus a little history for audits. */
const KV_HISTORY = 5;

/** How to open a registry store. */
export interface RegistryStoreOptions {
  /** Create the store when it does not exist (the coordinator); otherwise only open it. */
  create?: boolean;
  /** JetStream replicas when creating (1 for development, 3 in production). */
  replicas?: number;
}

/** UNAVAILABLE for a JetStream failure while reaching `what`. */
export function registryUnavailable(what: string, cause: unknown): InferMeshError {
  return new InferMeshError(
    ErrorCode.UNAVAILABLE,
    `${what} is unavailable (the registry needs JetStream on the NATS server): ${(cause as Error).message}`,
    { cause, retryAfterSeconds: 1 },
  );
}

/** Opens (or creates) a registry KV bucket. */
export async function openRegistryKv(
  connection: MeshConnection,
  bucket: string,
  description: string,
  options: RegistryStoreOptions = {},
): Promise<KV> {
  const kvm = new Kvm(connection.nc);
  try {
    if (!options.create) {
      const kv = await kvm.open(bucket);
      await kv.status();
      return kv;
    }
    try {
      return await kvm.create(bucket, {
        history: KV_HISTORY,
        replicas: options.replicas ?? 1,
        description,
        storage: StorageType.File,
      });
    } catch (err) {
      // Created elsewhere with other settings (another replica count): use it as it is.
      connection.logger.debug({ err, bucket }, 'bucket exists with other settings; opening it');
      const kv = await kvm.open(bucket);
      await kv.status();
      return kv;
    }
  } catch (cause) {
    throw registryUnavailable(`KV bucket ${bucket}`, cause);
  }
}

/** Opens (or creates) a registry object store. */
export async function openRegistryObjectStore(
  connection: MeshConnection,
  name: string,
  description: string,
  options: RegistryStoreOptions = {},
): Promise<ObjectStore> {
  const objm = new Objm(connection.nc);
  try {
    if (!options.create) return await objm.open(name);
    try {
      return await objm.create(name, {
        description,
        replicas: options.replicas ?? 1,
        storage: StorageType.File,
      });
    } catch (err) {
      connection.logger.debug({ err, name }, 'object store exists with other settings; opening it');
      return await objm.open(name);
    }
  } catch (cause) {
    throw registryUnavailable(`object store ${name}`, cause);
  }
}

/**
 * The keys of a KV bucket matching `filter` (all by default), each once. nats.js lists keys with an
 * ordered consumer, so a key whose value is written during the listing can come back twice.
 */
export async function listKeys(kv: KV, filter?: string): Promise<string[]> {
  const keys = new Set<string>();
  for await (const key of await kv.keys(filter)) keys.add(key);
  return [...keys];
}

/** Runs a JetStream call, turning failures that are not already coded into UNAVAILABLE. */
export async function jetstreamCall<T>(what: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (cause) {
    if (isInferMeshError(cause)) throw cause;
    throw registryUnavailable(what, cause);
  }
}

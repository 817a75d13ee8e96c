/**
 * The fleet records (`fleetBucket()`): each enrolled agent's identity (its ed25519 public key) and
 * operator-managed labels, cached in memory and followed with a KV watch, so an enrollment or a
 * label change made through any coordinator shows up on all. Writes go to the bucket first (with
 * compare-and-set where a race matters) and update the cache once stored. Also verifies that a
 * message was signed by an enrolled agent's key.
 * @module
 */
import { createPublicKey, verify } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import type { KV } from '@nats-io/kv';
import { KvWatchInclude } from '@nats-io/kv';
import type { Logger } from 'pino';
import {
  ErrorCode,
  InferMeshError,
  fleetBucket,
  fleetRecordSchema,
  isInferMeshError,
  notFound,
} from '@infermesh/protocols';
import type { FleetRecord, Labels, LabelsPatch } from '@infermesh/protocols';
import { jetstreamCall, openRegistryKv, registryUnavailable } from '@infermesh/mesh-client';
import type { MeshConnection } from '@infermesh/mesh-client';

/** CAS retries of a label update racing another writer. */
const LABEL_UPDATE_ATTEMPTS = 5;

export interface FleetRecordsOptions {
  readonly connection: MeshConnection;
  readonly logger: Logger;
  readonly now: () => number;
  readonly replicas: number;
  /** Called when an agent's record appears, changes or goes (undefined). */
  readonly onChange: (agentId: string, record: FleetRecord | undefined) => void;
}

/** An ed25519 public key from its raw 32 bytes in base64 (the fleet record's form). */
function publicKeyFromRaw(base64: string): KeyObject {
  return createPublicKey({
    key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(base64, 'base64').toString('base64url') },
    format: 'jwk',
  });
}

/** The enrolled agents' records. */
export class FleetRecords {
  readonly #o: FleetRecordsOptions;
  readonly #records = new Map<string, FleetRecord>();
  /** Public keys, parsed once per record. */
  readonly #keys = new Map<string, KeyObject>();
  #kv: KV | undefined;
  #watchStop: (() => void) | undefined;

  constructor(options: FleetRecordsOptions) {
    this.#o = options;
  }

  get size(): number {
    return this.#records.size;
  }

  ids(): IterableIterator<string> {
    return this.#records.keys();
  }

  has(agentId: string): boolean {
    return this.#records.has(agentId);
  }

  get(agentId: string): FleetRecord | undefined {
    return this.#records.get(agentId);
  }

  /** Opens (creating when missing) the bucket; resolves once every stored record is cached. */
  async start(): Promise<void> {
    this.#kv = await openRegistryKv(this.#o.connection, fleetBucket(), 'InferMesh fleet records', {
      create: true,
      replicas: this.#o.replicas,
    });
    await this.#follow(this.#kv);
  }

  stop(): void {
    this.#watchStop?.();
    this.#watchStop = undefined;
  }

  /** True when `signature` (base64) is the agent's enrolled key's ed25519 signature over `data`. */
  signedBy(agentId: string, data: Uint8Array, signature: string | undefined): boolean {
    const record = this.#records.get(agentId);
    if (!record || signature === undefined) return false;
    let key = this.#keys.get(agentId);
    if (!key) {
      key = publicKeyFromRaw(record.publicKey);
      this.#keys.set(agentId, key);
    }
    try {
      return verify(null, data, key, Buffer.from(signature, 'base64'));
    } catch {
      return false;
    }
  }

  /** Stores a new agent's record; CONFLICT when the id is already enrolled. */
  async create(record: FleetRecord): Promise<void> {
    const value = fleetRecordSchema.parse(record);
    const kv = this.#bucket();
    try {
      await kv.create(value.agentId, JSON.stringify(value));
    } catch (cause) {
      if (/wrong last sequence|key exists/i.test((cause as Error).message)) {
        throw new InferMeshError(ErrorCode.CONFLICT, `agent ${value.agentId} is already enrolled`, { cause });
      }
      throw isInferMeshError(cause) ? cause : registryUnavailable('the fleet bucket', cause);
    }
    this.#set(value);
  }

  /** Stores a record, replacing any (re-enrollment of the same identity). */
  async put(record: FleetRecord): Promise<void> {
    const value = fleetRecordSchema.parse(record);
    const kv = this.#bucket();
    await jetstreamCall('the fleet bucket', () => kv.put(value.agentId, JSON.stringify(value)));
    this.#set(value);
  }

  /** Removes an agent's record (de-enrollment); NOT_FOUND when it has none. */
  async delete(agentId: string): Promise<void> {
    if (!this.#records.has(agentId)) throw notFound(`agent ${agentId} is not enrolled`, { agentId });
    const kv = this.#bucket();
    await jetstreamCall('the fleet bucket', () => kv.delete(agentId));
    this.#remove(agentId);
  }

  /**
   * Applies a label patch (string sets, null removes) to an enrolled agent with compare-and-set;
   * NOT_FOUND for an agent that is not enrolled.
   */
  async updateLabels(agentId: string, patch: LabelsPatch, by: string): Promise<FleetRecord> {
    const kv = this.#bucket();
    for (let attempt = 1; ; attempt++) {
      const entry = await jetstreamCall('the fleet bucket', () => kv.get(agentId));
      if (!entry || entry.operation !== 'PUT') {
        throw notFound(`agent ${agentId} is not enrolled`, { agentId });
      }
      const current = fleetRecordSchema.parse(entry.json());
      const labels: Labels = { ...current.labels };
      for (const [key, value] of Object.entries(patch)) {
        if (value === null) delete labels[key];
        else labels[key] = value;
      }
      const next: FleetRecord = { ...current, labels, labelsUpdatedAt: this.#o.now(), labelsUpdatedBy: by };
      try {
        await kv.update(agentId, JSON.stringify(next), entry.revision);
        this.#set(next);
        return next;
      } catch (cause) {
        if (attempt >= LABEL_UPDATE_ATTEMPTS || !/wrong last sequence/i.test((cause as Error).message)) {
          throw isInferMeshError(cause) ? cause : registryUnavailable('the fleet bucket', cause);
        }
      }
    }
  }

  #bucket(): KV {
    if (!this.#kv) throw new InferMeshError(ErrorCode.UNAVAILABLE, 'the fleet registry is not started');
    return this.#kv;
  }

  #set(record: FleetRecord): void {
    if (this.#records.get(record.agentId)?.publicKey !== record.publicKey) this.#keys.delete(record.agentId);
    this.#records.set(record.agentId, record);
    this.#o.onChange(record.agentId, record);
  }

  #remove(agentId: string): void {
    this.#records.delete(agentId);
    this.#keys.delete(agentId);
    this.#o.onChange(agentId, undefined);
  }

  async #follow(kv: KV): Promise<void> {
    const watch = await jetstreamCall('the fleet bucket', () =>
      kv.watch({ include: KvWatchInclude.AllHistory }),
    );
    this.#watchStop = () => watch.stop();
    let initial = (await kv.status()).values;
    let resolveReady: () => void = () => undefined;
    const ready = new Promise<void>((resolve) => (resolveReady = resolve));
    if (initial === 0) resolveReady();
    void (async () => {
      for await (const entry of watch) {
        if (entry.operation === 'PUT') {
          const parsed = fleetRecordSchema.safeParse(entry.json());
          if (parsed.success) this.#set(parsed.data);
          else this.#o.logger.warn({ key: entry.key }, 'ignored an invalid fleet record');
        } else {
          this.#remove(entry.key);
        }
        if (initial > 0 && entry.delta === 0) {
          initial = 0;
          resolveReady();
        }
      }
    })().catch((err: unknown) => this.#o.logger.error({ err }, 'fleet record watch ended'));
    await ready;
  }
}

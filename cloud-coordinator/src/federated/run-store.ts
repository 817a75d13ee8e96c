/**
 * Federated runs in `roundsBucket()` (JetStream KV): one record per run under `run.<id>`, written
 * with compare-and-set so an operator's stop and the driver's round results never overwrite each
 * other, and the driver's lease under `lease.<id>` (see `run-lease.ts`).
 * @module
 */
import type { KV } from '@nats-io/kv';
import { ErrorCode, InferMeshError, flRunRecordSchema, roundsBucket } from '@infermesh/protocols';
import type { FlRunRecord } from '@infermesh/protocols';
import { openRegistryKv } from '@infermesh/mesh-client';
import type { MeshConnection } from '@infermesh/mesh-client';

/** Attempts of one compare-and-set write before giving up (each re-reads the record). */
const MAX_CAS_ATTEMPTS = 20;

const runKey = (id: string): string => `run.${id}`;

/** The run records of `roundsBucket()`. */
export class RunStore {
  private constructor(readonly kv: KV) {}

  /** Opens (creating) the bucket. */
  static async open(connection: MeshConnection, replicas: number): Promise<RunStore> {
    const kv = await openRegistryKv(connection, roundsBucket(), 'InferMesh federated runs and leases', {
      create: true,
      replicas,
    });
    return new RunStore(kv);
  }

  /** Stores a new run; CONFLICT when the id exists. */
  async create(record: FlRunRecord): Promise<void> {
    try {
      await this.kv.create(runKey(record.id), JSON.stringify(flRunRecordSchema.parse(record)));
    } catch (cause) {
      throw new InferMeshError(ErrorCode.CONFLICT, `federated run ${record.id} exists`, { cause });
    }
  }

  /** A run and its revision, or undefined. */
  async read(id: string): Promise<{ record: FlRunRecord; revision: number } | undefined> {
    const entry = await this.kv.get(runKey(id));
    if (!entry || entry.operation !== 'PUT' || entry.length === 0) return undefined;
    return { record: flRunRecordSchema.parse(entry.json()), revision: entry.revision };
  }

  /** A run; NOT_FOUND when absent. */
  async get(id: string): Promise<FlRunRecord> {
    const found = await this.read(id);
    if (!found) throw new InferMeshError(ErrorCode.NOT_FOUND, `federated run '${id}' does not exist`);
    return found.record;
  }

  /** Every run, oldest first. */
  async list(): Promise<FlRunRecord[]> {
    const keys: string[] = [];
    for await (const key of await this.kv.keys('run.>')) keys.push(key);
    const records: FlRunRecord[] = [];
    for (const key of keys) {
      const found = await this.read(key.slice('run.'.length));
      if (found) records.push(found.record);
    }
    return records.sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : 1));
  }

  /**
   * Applies `change` to the current record and writes it if nobody wrote in between, re-reading
   * and re-applying otherwise. `change` returns the new record, or undefined to write nothing.
   */
  async mutate(id: string, change: (record: FlRunRecord) => FlRunRecord | undefined): Promise<FlRunRecord> {
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt += 1) {
      const found = await this.read(id);
      if (!found) throw new InferMeshError(ErrorCode.NOT_FOUND, `federated run '${id}' does not exist`);
      const next = change(found.record);
      if (next === undefined) return found.record;
      const value = flRunRecordSchema.parse({ ...next, updatedAt: Date.now() });
      try {
        await this.kv.update(runKey(id), JSON.stringify(value), found.revision);
        return value;
      } catch {
        // Written by someone else since the read: read again.
      }
    }
    throw new InferMeshError(ErrorCode.CONFLICT, `federated run ${id} is being changed concurrently`);
  }
}

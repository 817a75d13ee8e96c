/**
 * Federated runs in `roundsBucket()` (JetStream KV): one record per run under `run.<id>`, written
 * with compare-and-set so an operator's stop and the driver's round results never overwrite each
 * other; each closed round's full record under `flRunRoundKey(id, n)`, written before the run
 * record counts the round (`roundsDone`), so the run record keeps only a bounded summary and stays
 * far below NATS's max_payload whatever the number of rounds; and the driver's lease under
 * `lease.<id>` (see `run-lease.ts`). Records written before rounds had their own keys (the whole
 * `history` in the run record) are read as the new shape, and their rounds moved to their keys on
 * the first write.
 * @module
 */
import type { KV } from '@nats-io/kv';
import {
  ErrorCode,
  FL_RECENT_ROUNDS,
  FL_RUN_DETAIL_ROUNDS,
  InferMeshError,
  flRoundRecordSchema,
  flRunRecordSchema,
  flRunRoundKey,
  roundsBucket,
} from '@infermesh/protocols';
import type { FlRoundRecord, FlRoundSummary, FlRunDetail, FlRunRecord } from '@infermesh/protocols';
import { listKeys, openRegistryKv } from '@infermesh/mesh-client';
import type { MeshConnection } from '@infermesh/mesh-client';

/** Attempts of one compare-and-set write before giving up (each re-reads the record). */
const MAX_CAS_ATTEMPTS = 20;

const runKey = (id: string): string => `run.${id}`;

/** A closed round in a few numbers (what the run record keeps of its last rounds). */
export function roundSummary(record: FlRoundRecord): FlRoundSummary {
  return {
    round: record.round,
    roundId: record.roundId,
    attempts: record.attempts,
    selected: record.selected.length,
    accepted: record.accepted.length,
    received: record.received.length,
    dropped: record.dropped.length,
    rejected: record.rejectedCount ?? record.rejected.length,
    updateNorm: record.updateNorm,
    ...(record.meanTrainLoss === undefined ? {} : { meanTrainLoss: record.meanTrainLoss }),
    ...(record.evaluation === undefined ? {} : { evaluation: record.evaluation }),
    startedAt: record.startedAt,
    closedAt: record.closedAt,
  };
}

/** The run record counting one more closed round (`closed` is round `roundsDone + 1`). */
export function withClosedRound(record: FlRunRecord, closed: FlRoundRecord): FlRunRecord {
  return {
    ...record,
    roundsDone: closed.round,
    recentRounds: [...record.recentRounds, roundSummary(closed)].slice(-FL_RECENT_ROUNDS),
  };
}

/** A stored run with its revision, and the rounds of an old-shape record not yet under their keys. */
interface StoredRun {
  readonly record: FlRunRecord;
  readonly revision: number;
  readonly legacyRounds: readonly FlRoundRecord[];
}

/** Reads a stored value as the current shape (an old record's `history` becomes its summary). */
function parseStoredRun(value: unknown): { record: FlRunRecord; legacyRounds: FlRoundRecord[] } {
  const raw = value as { history?: unknown; roundsDone?: unknown };
  if (raw.roundsDone !== undefined || !Array.isArray(raw.history)) {
    return { record: flRunRecordSchema.parse(value), legacyRounds: [] };
  }
  const legacyRounds = raw.history.map((r) => flRoundRecordSchema.parse(r));
  let record = flRunRecordSchema.parse({ ...raw, history: undefined, roundsDone: 0, recentRounds: [] });
  for (const round of legacyRounds) record = withClosedRound(record, round);
  return { record, legacyRounds };
}

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

  async #readStored(id: string): Promise<StoredRun | undefined> {
    const entry = await this.kv.get(runKey(id));
    if (!entry || entry.operation !== 'PUT' || entry.length === 0) return undefined;
    return { ...parseStoredRun(entry.json()), revision: entry.revision };
  }

  /** A run and its revision, or undefined. */
  async read(id: string): Promise<{ record: FlRunRecord; revision: number } | undefined> {
    const found = await this.#readStored(id);
    return found && { record: found.record, revision: found.revision };
  }

  /** A run; NOT_FOUND when absent. */
  async get(id: string): Promise<FlRunRecord> {
    const found = await this.read(id);
    if (!found) throw new InferMeshError(ErrorCode.NOT_FOUND, `federated run '${id}' does not exist`);
    return found.record;
  }

  /** Every run, oldest first. */
  async list(): Promise<FlRunRecord[]> {
    // `run.*` matches run records only: their rounds (`run.<id>.round.<n>`) have more tokens.
    const keys = await listKeys(this.kv, 'run.*');
    const records: FlRunRecord[] = [];
    for (const key of keys) {
      const found = await this.read(key.slice('run.'.length));
      if (found) records.push(found.record);
    }
    return records.sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : 1));
  }

  /** Stores a closed round's full record under its own key (replacing an earlier write of it). */
  async putRound(runId: string, record: FlRoundRecord): Promise<void> {
    await this.kv.put(flRunRoundKey(runId, record.round), JSON.stringify(flRoundRecordSchema.parse(record)));
  }

  /** One closed round's full record, or undefined (not closed, or the run is unknown). */
  async readRound(runId: string, round: number): Promise<FlRoundRecord | undefined> {
    const entry = await this.kv.get(flRunRoundKey(runId, round));
    if (entry && entry.operation === 'PUT' && entry.length > 0)
      return flRoundRecordSchema.parse(entry.json());
    const stored = await this.#readStored(runId);
    return stored?.legacyRounds.find((r) => r.round === round);
  }

  /** One closed round of a run; NOT_FOUND when the run or the round (not closed yet) is unknown. */
  async getRound(runId: string, round: number): Promise<FlRoundRecord> {
    const record = await this.get(runId);
    const found = round <= record.roundsDone ? await this.readRound(runId, round) : undefined;
    if (!found) {
      throw new InferMeshError(
        ErrorCode.NOT_FOUND,
        `federated run '${runId}' has no closed round ${round} (${record.roundsDone} closed)`,
      );
    }
    return found;
  }

  /** A run with the full records of its last closed rounds; NOT_FOUND when absent. */
  async detail(id: string, rounds = FL_RUN_DETAIL_ROUNDS): Promise<FlRunDetail> {
    const stored = await this.#readStored(id);
    if (!stored) throw new InferMeshError(ErrorCode.NOT_FOUND, `federated run '${id}' does not exist`);
    const { record } = stored;
    const first = Math.max(1, record.roundsDone - rounds + 1);
    const numbers = Array.from({ length: record.roundsDone - first + 1 }, (_, i) => first + i);
    const history = await Promise.all(
      numbers.map(async (n) => {
        const entry = await this.kv.get(flRunRoundKey(id, n));
        if (entry && entry.operation === 'PUT' && entry.length > 0)
          return flRoundRecordSchema.parse(entry.json());
        return stored.legacyRounds.find((r) => r.round === n);
      }),
    );
    return { ...record, history: history.filter((r): r is FlRoundRecord => r !== undefined) };
  }

  /**
   * Records closed round `closed.round` (the next one): its full record under its own key first,
   * then `apply` (the new weights, state, driver) with the count in one compare-and-set on the run
   * record. False, writing nothing more, once the record counts the round already (another driver
   * closed it): the caller must go on from the record's weights, not its own.
   */
  async recordClosedRound(
    runId: string,
    closed: FlRoundRecord,
    apply: (record: FlRunRecord) => FlRunRecord,
  ): Promise<boolean> {
    // Checked before the round's key is written, so a late driver does not replace the record of
    // the round that counts (the compare-and-set below settles a race inside this window).
    if ((await this.get(runId)).roundsDone >= closed.round) return false;
    await this.putRound(runId, closed);
    let applied = false;
    await this.mutate(runId, (r) => {
      applied = r.roundsDone < closed.round;
      return applied ? withClosedRound(apply(r), closed) : undefined;
    });
    return applied;
  }

  /**
   * Applies `change` to the current record and writes it if nobody wrote in between, re-reading
   * and re-applying otherwise. `change` returns the new record, or undefined to write nothing.
   */
  async mutate(id: string, change: (record: FlRunRecord) => FlRunRecord | undefined): Promise<FlRunRecord> {
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt += 1) {
      const found = await this.#readStored(id);
      if (!found) throw new InferMeshError(ErrorCode.NOT_FOUND, `federated run '${id}' does not exist`);
      const next = change(found.record);
      if (next === undefined) return found.record;
      const value = flRunRecordSchema.parse({ ...next, updatedAt: Date.now() });
      // An old-shape record loses its `history` with this write: move its rounds to their keys first.
      for (const round of found.legacyRounds) await this.putRound(id, round);
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

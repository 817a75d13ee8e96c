/**
 * One-time enrollment tokens (`imt_<id>_<secret>`) in the KV bucket `enrollmentTokensBucket()`:
 * admins create, list and delete them; the enrollment responder consumes them. Consuming marks the
 * record used with a compare-and-set on the revision it read, so of two agents presenting the same
 * token at once exactly one wins, on any number of coordinators.
 * @module
 */
import type { KV, KvEntry } from '@nats-io/kv';
import type { Logger } from 'pino';
import {
  ENROLLMENT_TOKEN_PREFIX,
  ErrorCode,
  InferMeshError,
  enrollmentTokenRecordSchema,
  enrollmentTokensBucket,
  notFound,
  parseToken,
} from '@infermesh/protocols';
import type {
  CreateEnrollmentTokenResponse,
  EnrollmentTokenRecord,
  EnrollmentTokenView,
  Labels,
} from '@infermesh/protocols';
import { listKeys, openRegistryKv } from '@infermesh/mesh-client';
import type { MeshConnection } from '@infermesh/mesh-client';
import { mintToken, secretMatches } from '../admin/token-secrets.js';

/** Options of {@link EnrollmentTokenStore}. */
export interface EnrollmentTokenStoreOptions {
  readonly connection: MeshConnection;
  readonly logger: Logger;
  readonly replicas?: number;
  /** Wall clock in ms; Date.now by default. */
  readonly now?: () => number;
}

const decoder = new TextDecoder();
const encoder = new TextEncoder();

const unauthenticated = (message: string): InferMeshError =>
  new InferMeshError(ErrorCode.UNAUTHENTICATED, message);

function parseRecord(entry: KvEntry): EnrollmentTokenRecord | undefined {
  try {
    const parsed = enrollmentTokenRecordSchema.safeParse(JSON.parse(decoder.decode(entry.value)));
    return parsed.success && parsed.data.id === entry.key ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/** The enrollment tokens of the fleet. */
export class EnrollmentTokenStore {
  readonly #options: EnrollmentTokenStoreOptions;
  readonly #now: () => number;
  #kv: KV | undefined;

  constructor(options: EnrollmentTokenStoreOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  /** Opens (creating) the bucket. */
  async start(): Promise<void> {
    this.#kv = await openRegistryKv(
      this.#options.connection,
      enrollmentTokensBucket(),
      'InferMesh one-time enrollment tokens',
      { create: true, replicas: this.#options.replicas ?? 1 },
    );
  }

  /** Creates a token; the answer holds the token itself, which is never shown again. */
  async create(labels: Labels, ttlMs: number, createdBy: string): Promise<CreateEnrollmentTokenResponse> {
    const minted = mintToken(ENROLLMENT_TOKEN_PREFIX);
    const createdAt = this.#now();
    const record: EnrollmentTokenRecord = enrollmentTokenRecordSchema.parse({
      id: minted.id,
      secretSha256: minted.secretSha256,
      labels,
      createdBy,
      createdAt,
      expiresAt: createdAt + ttlMs,
    });
    await this.#bucket().create(record.id, encoder.encode(JSON.stringify(record)));
    return { token: minted.token, id: record.id, labels, expiresAt: record.expiresAt };
  }

  /** Every token (never a secret), newest first, with whether it is used or expired. */
  async list(): Promise<EnrollmentTokenView[]> {
    const kv = this.#bucket();
    const tokens: EnrollmentTokenView[] = [];
    for (const key of await listKeys(kv)) {
      const entry = await kv.get(key);
      const record = entry && entry.operation === 'PUT' ? parseRecord(entry) : undefined;
      if (record) tokens.push(this.#view(record));
    }
    return tokens.sort((a, b) => b.createdAt - a.createdAt || (a.id < b.id ? -1 : 1));
  }

  /** Deletes a token (used or not); NOT_FOUND when there is none. */
  async delete(id: string): Promise<void> {
    const kv = this.#bucket();
    const entry = await kv.get(id);
    if (!entry || entry.operation !== 'PUT') throw notFound(`no enrollment token ${id}`, { id });
    await kv.delete(id);
  }

  /**
   * Marks the token used by `agentId` and returns its record. UNAUTHENTICATED when the token is
   * malformed, unknown, already used by another agent (also by a concurrent call that won the
   * compare-and-set) or expired. The same agent presenting its token again (a retry after a lost
   * reply, or a restart before it stored its identity: the caller has verified it holds the key
   * the id derives from) gets the record again, so enrollment is idempotent.
   */
  async consume(token: string, agentId: string): Promise<EnrollmentTokenRecord> {
    const parts = parseToken(ENROLLMENT_TOKEN_PREFIX, token);
    if (!parts) throw unauthenticated('malformed enrollment token');
    const kv = this.#bucket();
    const entry = await kv.get(parts.id);
    const record = entry && entry.operation === 'PUT' ? parseRecord(entry) : undefined;
    if (!entry || !record || !secretMatches(parts.secret, record.secretSha256)) {
      throw unauthenticated('unknown enrollment token');
    }
    if (record.usedAt !== undefined) {
      if (record.usedBy === agentId) return record;
      throw unauthenticated('the enrollment token was already used');
    }
    const now = this.#now();
    if (record.expiresAt <= now) {
      throw unauthenticated(`the enrollment token expired at ${new Date(record.expiresAt).toISOString()}`);
    }
    const used: EnrollmentTokenRecord = { ...record, usedAt: now, usedBy: agentId };
    try {
      await kv.update(record.id, encoder.encode(JSON.stringify(used)), entry.revision);
    } catch (cause) {
      const now = await kv.get(record.id);
      const winner = now && now.operation === 'PUT' ? parseRecord(now) : undefined;
      if (winner?.usedBy === agentId) return winner;
      if (now?.revision !== entry.revision) {
        throw new InferMeshError(ErrorCode.UNAUTHENTICATED, 'the enrollment token was already used', {
          cause,
        });
      }
      throw new InferMeshError(ErrorCode.UNAVAILABLE, 'cannot mark the enrollment token used', {
        cause,
        retryAfterSeconds: 1,
      });
    }
    return used;
  }

  #view(record: EnrollmentTokenRecord): EnrollmentTokenView {
    const { secretSha256: _secret, ...rest } = record;
    return { ...rest, used: record.usedAt !== undefined, expired: record.expiresAt <= this.#now() };
  }

  #bucket(): KV {
    if (!this.#kv) {
      throw new InferMeshError(ErrorCode.UNAVAILABLE, 'the enrollment token store is not started', {
        retryAfterSeconds: 1,
      });
    }
    return this.#kv;
  }
}

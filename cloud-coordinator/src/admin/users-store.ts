/**
 * Admin API users in the KV bucket `usersBucket()` (key = token id, value a `UserRecord`), and the
 * check of their bearer tokens (`imk_<id>_<secret>`). Records are cached in memory and the cache
 * follows the bucket with a KV watch, so a user revoked on one coordinator is refused at once by
 * every coordinator; a token id not in the cache is looked up in the bucket (a user created a
 * moment ago on another coordinator works before the watch delivers it). Token ids are random and
 * never reused, so a revoked id stays refused even if a stale read raced the revocation.
 * @module
 */
import type { KV, KvEntry } from '@nats-io/kv';
import { KvWatchInclude } from '@nats-io/kv';
import type { Logger } from 'pino';
import {
  API_TOKEN_PREFIX,
  ErrorCode,
  InferMeshError,
  notFound,
  parseToken,
  userRecordSchema,
  usersBucket,
} from '@infermesh/protocols';
import type { CreateUserRequest, CreateUserResponse, UserRecord, UserView } from '@infermesh/protocols';
import { listKeys, openRegistryKv } from '@infermesh/mesh-client';
import type { MeshConnection } from '@infermesh/mesh-client';
import type { Principal } from './principal.js';
import { mintToken, secretMatches } from './token-secrets.js';

/** Name of the bootstrap identity (the coordinator's `adminToken`); no user may take it. */
export const BOOTSTRAP_ADMIN_NAME = 'admin';

/** Options of {@link UsersStore}. */
export interface UsersStoreOptions {
  readonly connection: MeshConnection;
  readonly logger: Logger;
  readonly replicas?: number;
  /** Wall clock in ms (expiry); Date.now by default. */
  readonly now?: () => number;
}

interface CachedUser {
  readonly record: UserRecord;
  readonly revision: number;
}

const decoder = new TextDecoder();
const encoder = new TextEncoder();

function parseUser(entry: KvEntry): UserRecord | undefined {
  try {
    const parsed = userRecordSchema.safeParse(JSON.parse(decoder.decode(entry.value)));
    return parsed.success && parsed.data.id === entry.key ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

const unauthenticated = (message: string): InferMeshError =>
  new InferMeshError(ErrorCode.UNAUTHENTICATED, message);

/** The users of the admin API. */
export class UsersStore {
  readonly #options: UsersStoreOptions;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #cache = new Map<string, CachedUser>();
  /** Ids the watch saw deleted, with the revision of the deletion. */
  readonly #revoked = new Map<string, number>();
  #kv: KV | undefined;
  #stopWatch: (() => void) | undefined;
  #watching: Promise<void> | undefined;

  constructor(options: UsersStoreOptions) {
    this.#options = options;
    this.#log = options.logger.child({ component: 'coordinator.users' });
    this.#now = options.now ?? Date.now;
  }

  /** Opens (creating) the bucket and starts following it. */
  async start(): Promise<void> {
    const kv = await openRegistryKv(this.#options.connection, usersBucket(), 'InferMesh admin API users', {
      create: true,
      replicas: this.#options.replicas ?? 1,
    });
    this.#kv = kv;
    const iterator = await kv.watch({ include: KvWatchInclude.LastValue });
    this.#stopWatch = () => iterator.stop();
    this.#watching = (async () => {
      for await (const entry of iterator) this.#apply(entry);
    })().catch((err: unknown) => this.#log.error({ err }, 'users watch ended'));
  }

  /** Stops following the bucket. */
  async stop(): Promise<void> {
    this.#stopWatch?.();
    await this.#watching;
  }

  /**
   * The principal of an `imk_` token; UNAUTHENTICATED when it is malformed, unknown, revoked or
   * expired (the message says which of malformed/expired, never whether an id exists).
   */
  async authenticate(token: string): Promise<Principal> {
    const parts = parseToken(API_TOKEN_PREFIX, token);
    if (!parts) throw unauthenticated('malformed bearer token');
    const record = await this.#lookup(parts.id);
    if (!record || !secretMatches(parts.secret, record.secretSha256)) {
      throw unauthenticated('invalid bearer token (unknown or revoked)');
    }
    if (record.expiresAt !== undefined && record.expiresAt <= this.#now()) {
      throw unauthenticated(
        `the token of ${record.name} expired at ${new Date(record.expiresAt).toISOString()}`,
      );
    }
    return { name: record.name, role: record.role };
  }

  /** Creates a user; the answer holds its token, which is never shown again. */
  async create(request: CreateUserRequest, createdBy: string): Promise<CreateUserResponse> {
    if (request.name === BOOTSTRAP_ADMIN_NAME) {
      throw new InferMeshError(ErrorCode.CONFLICT, `the name ${BOOTSTRAP_ADMIN_NAME} is reserved`);
    }
    if ((await this.list()).some((u) => u.name === request.name && !u.expired)) {
      throw new InferMeshError(ErrorCode.CONFLICT, `a user named ${request.name} exists`);
    }
    const minted = mintToken(API_TOKEN_PREFIX);
    const at = this.#now();
    const record: UserRecord = userRecordSchema.parse({
      id: minted.id,
      name: request.name,
      role: request.role,
      secretSha256: minted.secretSha256,
      createdBy,
      createdAt: at,
      ...(request.ttlMs === undefined ? {} : { expiresAt: at + request.ttlMs }),
    });
    const revision = await this.#bucket().create(record.id, encoder.encode(JSON.stringify(record)));
    this.#remember(record, revision);
    return { token: minted.token, user: this.#view(record) };
  }

  /** Every user (no secrets), sorted by name. */
  async list(): Promise<UserView[]> {
    const kv = this.#bucket();
    const users: UserView[] = [];
    for (const key of await listKeys(kv)) {
      const entry = await kv.get(key);
      const record = entry && entry.operation === 'PUT' ? parseUser(entry) : undefined;
      if (record) users.push(this.#view(record));
    }
    return users.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.createdAt - b.createdAt));
  }

  /** Revokes every token of the user `name`; NOT_FOUND when there is none. */
  async revoke(name: string): Promise<UserView[]> {
    const revoked = (await this.list()).filter((u) => u.name === name);
    if (revoked.length === 0) throw notFound(`no user named ${name}`, { name });
    for (const user of revoked) {
      await this.#bucket().delete(user.id);
      this.#revoked.set(user.id, Number.MAX_SAFE_INTEGER);
      this.#cache.delete(user.id);
    }
    return revoked;
  }

  #view(record: UserRecord): UserView {
    const { secretSha256: _secret, ...rest } = record;
    return { ...rest, expired: record.expiresAt !== undefined && record.expiresAt <= this.#now() };
  }

  async #lookup(id: string): Promise<UserRecord | undefined> {
    if (this.#revoked.has(id)) return undefined;
    const cached = this.#cache.get(id);
    if (cached) return cached.record;
    const entry = await this.#bucket().get(id);
    if (!entry) return undefined;
    this.#apply(entry);
    return this.#cache.get(id)?.record;
  }

  #apply(entry: KvEntry): void {
    const revokedAt = this.#revoked.get(entry.key);
    if (revokedAt !== undefined && revokedAt >= entry.revision) return;
    if (entry.operation !== 'PUT') {
      this.#revoked.set(entry.key, entry.revision);
      this.#cache.delete(entry.key);
      return;
    }
    const record = parseUser(entry);
    if (!record) {
      this.#log.warn({ key: entry.key, revision: entry.revision }, 'ignoring an invalid user record');
      return;
    }
    this.#remember(record, entry.revision);
  }

  #remember(record: UserRecord, revision: number): void {
    const cached = this.#cache.get(record.id);
    if (!cached || cached.revision < revision) this.#cache.set(record.id, { record, revision });
  }

  #bucket(): KV {
    if (!this.#kv) {
      throw new InferMeshError(ErrorCode.UNAVAILABLE, 'the users store is not started', {
        retryAfterSeconds: 1,
      });
    }
    return this.#kv;
  }
}

/**
 * Serves agent enrollment on `enrollSubject()` in the queue group `enrollQueueGroup()` (every
 * coordinator answers; each request reaches one). A request (`EnrollRequest`, msgpack) is checked
 * in this order: its shape (INVALID_INPUT), the proof that the agent holds the private key of the
 * public key it presents (an ed25519 signature over `enrollmentProofText`; INVALID_INPUT), then
 * the one-time token (UNAUTHENTICATED when unknown, used or expired), which is consumed with a
 * compare-and-set. The agent's id is derived from its key (`ag-` + the first 16 hex characters of
 * the sha256 of the raw 32-byte key), so re-enrolling the same key with a fresh token keeps the id
 * and merges the new token's labels into the record. Errors are coded NATS error replies.
 * @module
 */
import { createHash, createPublicKey, verify } from 'node:crypto';
import type { Msg, Subscription } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import {
  ErrorCode,
  decode,
  encode,
  encodeError,
  enrollQueueGroup,
  enrollRequestSchema,
  enrollResponseSchema,
  enrollSubject,
  enrollmentProofText,
  invalidInput,
  isInferMeshError,
  natsErrorHeaders,
} from '@infermesh/protocols';
import type { EnrollRequest, EnrollResponse, EnrollmentTokenRecord, FleetRecord } from '@infermesh/protocols';
import { toMsgHdrs } from '@infermesh/mesh-client';
import type { MeshConnection } from '@infermesh/mesh-client';
import type { EnrollmentTokenStore } from './enrollment-tokens.js';
import type { FleetRegistry } from './fleet-registry.js';

/** Options of {@link EnrollmentResponder}. */
export interface EnrollmentResponderOptions {
  readonly connection: MeshConnection;
  readonly tokens: EnrollmentTokenStore;
  readonly fleet: FleetRegistry;
  readonly logger: Logger;
  /** Wall clock in ms; Date.now by default. */
  readonly now?: () => number;
}

/** The agent id of a base64 raw 32-byte ed25519 public key. */
export function agentIdOfPublicKey(publicKeyBase64: string): string {
  const raw = Buffer.from(publicKeyBase64, 'base64');
  return `ag-${createHash('sha256').update(raw).digest('hex').slice(0, 16)}`;
}

/** Throws INVALID_INPUT unless `signature` is the key's ed25519 signature of the proof text. */
export function verifyEnrollmentProof(request: EnrollRequest): void {
  let ok = false;
  try {
    const x = Buffer.from(request.publicKey, 'base64').toString('base64url');
    const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x }, format: 'jwk' });
    const text = Buffer.from(enrollmentProofText(request.token, request.publicKey), 'utf8');
    ok = verify(null, text, key, Buffer.from(request.signature, 'base64'));
  } catch {
    ok = false;
  }
  if (!ok) {
    throw invalidInput(
      'the enrollment proof does not verify: sign enrollmentProofText with the presented key',
      {
        reason: 'bad-proof',
      },
    );
  }
}

/** The enrollment service of one coordinator. */
export class EnrollmentResponder {
  readonly #options: EnrollmentResponderOptions;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #inFlight = new Set<Promise<void>>();
  #subscription: Subscription | undefined;

  constructor(options: EnrollmentResponderOptions) {
    this.#options = options;
    this.#log = options.logger.child({ component: 'coordinator.enrollment' });
    this.#now = options.now ?? Date.now;
  }

  /** Joins the enrollment queue group. */
  start(): void {
    this.#subscription = this.#options.connection.nc.subscribe(enrollSubject(), {
      queue: enrollQueueGroup(),
      callback: (err, msg) => {
        if (err) return;
        const handled = this.#handle(msg).finally(() => this.#inFlight.delete(handled));
        this.#inFlight.add(handled);
      },
    });
  }

  /** Leaves the queue group and waits for the enrollments being handled. */
  async stop(): Promise<void> {
    this.#subscription?.unsubscribe();
    this.#subscription = undefined;
    await Promise.allSettled([...this.#inFlight]);
  }

  /** Enrolls one agent; throws the coded error to reply with. */
  async enroll(request: EnrollRequest): Promise<EnrollResponse> {
    verifyEnrollmentProof(request);
    const agentId = agentIdOfPublicKey(request.publicKey);
    const token = await this.#options.tokens.consume(request.token, agentId);
    return this.#store(request, agentId, token);
  }

  /** Creates the agent's record, or updates it when the same key enrolled before. */
  async #store(
    request: EnrollRequest,
    agentId: string,
    token: EnrollmentTokenRecord,
  ): Promise<EnrollResponse> {
    const { fleet } = this.#options;
    const existing = fleet.recordOf(agentId);
    const at = this.#now();
    let record: FleetRecord;
    if (existing) {
      record = {
        ...existing,
        labels: { ...existing.labels, ...token.labels },
        enrollmentTokenId: token.id,
        labelsUpdatedAt: at,
        labelsUpdatedBy: `enrollment:${token.id}`,
        ...(request.hostname === undefined ? {} : { hostname: request.hostname }),
      };
      await fleet.putRecord(record);
    } else {
      record = {
        agentId,
        publicKey: request.publicKey,
        labels: token.labels,
        enrolledAt: at,
        enrollmentTokenId: token.id,
        ...(request.hostname === undefined ? {} : { hostname: request.hostname }),
      };
      try {
        await fleet.createRecord(record);
      } catch (err) {
        // The same key enrolled at the same moment through another token: update instead.
        if (isInferMeshError(err) && err.code === ErrorCode.CONFLICT && fleet.recordOf(agentId)) {
          return this.#store(request, agentId, token);
        }
        throw err;
      }
    }
    this.#log.info(
      { agentId, tokenId: token.id, reenrolled: existing !== undefined, labels: record.labels },
      'agent enrolled',
    );
    return { agentId, labels: record.labels, enrolledAt: existing ? existing.enrolledAt : at };
  }

  async #handle(msg: Msg): Promise<void> {
    try {
      const request = decode(enrollRequestSchema, msg.data, 'enroll request');
      const answer = await this.enroll(request);
      msg.respond(encode(enrollResponseSchema, answer, 'enroll response'));
    } catch (err) {
      if (!isInferMeshError(err)) this.#log.error({ err }, 'enrollment failed');
      else this.#log.warn({ code: err.code, reason: err.message }, 'enrollment refused');
      try {
        msg.respond(encodeError(err), { headers: toMsgHdrs(natsErrorHeaders(err)) });
      } catch (replyErr) {
        this.#log.warn({ err: replyErr }, 'cannot send the enrollment reply');
      }
    }
  }
}

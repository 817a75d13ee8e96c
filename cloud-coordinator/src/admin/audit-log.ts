/**
 * The audit log of the admin API in the JetStream stream `auditStream()` (file storage, kept
 * {@link DEFAULT_AUDIT_MAX_AGE_MS}): one `AuditEvent` (JSON) per mutating call, written with a
 * JetStream publish (acknowledged by the server before the call answers), and read back with an
 * ordered consumer from a sequence on, filtered by actor and action.
 * @module
 */
import {
  DeliverPolicy,
  DiscardPolicy,
  jetstream,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
} from '@nats-io/jetstream';
import type { JetStreamClient } from '@nats-io/jetstream';
import { auditEventSchema, auditStream, auditSubject } from '@infermesh/protocols';
import type { AuditEvent, AuditEventList } from '@infermesh/protocols';
import { jetstreamCall } from '@infermesh/mesh-client';
import type { MeshConnection } from '@infermesh/mesh-client';

/** How long audit events are kept: 90 days. */
export const DEFAULT_AUDIT_MAX_AGE_MS = 90 * 24 * 3_600_000;
/** How long one audit write may wait for the server's acknowledgement. */
const AUDIT_PUBLISH_TIMEOUT_MS = 2_000;
/** Events looked at by one filtered read at most (a filter on a huge stream stays bounded). */
const MAX_SCANNED_EVENTS = 10_000;

/** Options of {@link AuditLog}. */
export interface AuditLogOptions {
  readonly connection: MeshConnection;
  readonly replicas?: number;
  readonly maxAgeMs?: number;
  /** Bytes the stream keeps at most; the oldest events go first (default 1 GiB). */
  readonly maxBytes?: number;
}

/** Bytes the audit stream keeps by default: bounded, so no caller can fill the server's store. */
export const DEFAULT_AUDIT_MAX_BYTES = 1024 ** 3;

/** What `GET /api/v1/audit` asks for. */
export interface AuditQuery {
  readonly limit: number;
  /** Only events after this sequence (oldest first); absent: the latest events. */
  readonly since?: number | undefined;
  readonly actor?: string | undefined;
  readonly action?: string | undefined;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The audit stream. */
export class AuditLog {
  readonly #options: AuditLogOptions;
  readonly #js: JetStreamClient;

  constructor(options: AuditLogOptions) {
    this.#options = options;
    this.#js = jetstream(options.connection.nc);
  }

  /** Creates the stream when it is missing. */
  async start(): Promise<void> {
    const jsm = await jetstreamManager(this.#options.connection.nc);
    const name = auditStream();
    await jetstreamCall('the audit stream', async () => {
      try {
        await jsm.streams.info(name);
      } catch {
        await jsm.streams.add({
          name,
          description: 'InferMesh admin API audit events',
          subjects: [auditSubject()],
          retention: RetentionPolicy.Limits,
          storage: StorageType.File,
          max_age: (this.#options.maxAgeMs ?? DEFAULT_AUDIT_MAX_AGE_MS) * 1e6,
          max_bytes: this.#options.maxBytes ?? DEFAULT_AUDIT_MAX_BYTES,
          discard: DiscardPolicy.Old,
          num_replicas: this.#options.replicas ?? 1,
        });
      }
    });
  }

  /** Writes one event; resolves with its sequence once the server stored it. */
  async write(event: AuditEvent): Promise<number> {
    const body = encoder.encode(JSON.stringify(auditEventSchema.parse(event)));
    const ack = await this.#js.publish(auditSubject(), body, { timeout: AUDIT_PUBLISH_TIMEOUT_MS });
    return ack.seq;
  }

  /** Reads events (oldest first) matching the query. */
  async read(query: AuditQuery): Promise<AuditEventList> {
    const nc = this.#options.connection.nc;
    const name = auditStream();
    const jsm = await jetstreamManager(nc);
    const { state } = await jetstreamCall('the audit stream', () => jsm.streams.info(name));
    const last = state.last_seq;
    const filtered = query.actor !== undefined || query.action !== undefined;
    const start =
      query.since !== undefined
        ? query.since + 1
        : Math.max(state.first_seq, last - (filtered ? MAX_SCANNED_EVENTS : query.limit) + 1);
    if (state.messages === 0 || start > last)
      return { events: [], nextSince: Math.max(query.since ?? 0, last) };
    const consumer = await jetstreamCall('the audit stream', () =>
      this.#js.consumers.get(name, {
        deliver_policy: DeliverPolicy.StartSequence,
        opt_start_seq: Math.max(start, state.first_seq),
      }),
    );
    const events: AuditEvent[] = [];
    let scanned = 0;
    let nextSince = start - 1;
    const messages = await consumer.consume({ max_messages: Math.min(1_000, last - start + 1) });
    try {
      for await (const msg of messages) {
        scanned += 1;
        nextSince = msg.seq;
        const event = parseEvent(msg.data, msg.seq);
        if (event && matches(event, query)) {
          events.push(event);
          // Reading forward from `since`: a full page ends the read. Reading the latest: keep the tail.
          if (query.since !== undefined && events.length >= query.limit) break;
          if (query.since === undefined && events.length > query.limit) events.shift();
        }
        if (msg.info.pending === 0 || msg.seq >= last || scanned >= MAX_SCANNED_EVENTS) break;
      }
    } finally {
      await messages.close();
    }
    return { events, nextSince };
  }
}

function parseEvent(data: Uint8Array, seq: number): AuditEvent | undefined {
  try {
    const parsed = auditEventSchema.safeParse({ ...(JSON.parse(decoder.decode(data)) as object), seq });
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

function matches(event: AuditEvent, query: AuditQuery): boolean {
  return (
    (query.actor === undefined || event.actor === query.actor) &&
    (query.action === undefined || event.action === query.action)
  );
}

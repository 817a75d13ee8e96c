/**
 * Middleware writing one audit event per mutating admin call (POST, PUT, PATCH, DELETE), refused
 * ones included: after the call answers, it records who (the principal, or `anonymous` with the
 * viewer role when authentication failed — without its body, at most
 * {@link MAX_ANONYMOUS_EVENTS_PER_SECOND} per second), what (`action`/`target` from `noteAudit`, else
 * `<METHOD> <route path>`), the status, and the JSON body with secrets removed, capped at
 * {@link MAX_AUDIT_DETAILS_BYTES}.
 *
 * A failed audit write does not fail the call: the mutation has happened by then, and answering an
 * error would invite a retry of something already done. It is logged at error level with the whole
 * event (so the record survives in the logs) and counted in `infermesh_audit_write_failures_total`.
 * @module
 */
import type { MiddlewareHandler } from 'hono';
import type { Logger } from 'pino';
import { Counter } from 'prom-client';
import type { Registry } from 'prom-client';
import type { AuditEvent } from '@infermesh/protocols';
import type { AuditLog } from './audit-log.js';
import type { AdminEnv, Principal } from './principal.js';

/** Largest details object kept in an event, in bytes of JSON. */
export const MAX_AUDIT_DETAILS_BYTES = 4_096;
/** Largest JSON body read for the details. */
const MAX_AUDITED_BODY_BYTES = 64 * 1024;
const MUTATING_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
/** Keys whose values never reach the audit log. */
const SECRET_KEY = /token|secret|password|private|signature|credential/i;
const ANONYMOUS: Principal = { name: 'anonymous', role: 'viewer' };
/**
 * Refusals of unauthenticated callers written per second at most: anyone can send those, so they
 * are recorded without their body and the excess is only counted (in the next event written and in
 * `infermesh_audit_anonymous_suppressed_total`), never stored one by one.
 */
export const MAX_ANONYMOUS_EVENTS_PER_SECOND = 10;

/** Options of {@link auditMutations}. */
export interface AuditMiddlewareOptions {
  readonly log: AuditLog;
  readonly logger: Logger;
  /** Where the failure counter is registered. */
  readonly metrics?: Registry;
  /** Prefix of the mounted API (`/api/v1`), cut from route paths in actions. */
  readonly basePath?: string;
}

/** A copy of `value` with every secret-looking key's value replaced. */
export function redactSecrets(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(redactSecrets);
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [key, inner] of Object.entries(value)) {
    out[key] = SECRET_KEY.test(key) ? '[redacted]' : redactSecrets(inner);
  }
  return out;
}

/** Details within the size cap: the object itself, or a marked, cut preview of it. */
export function capDetails(details: Record<string, unknown>): Record<string, unknown> {
  const json = JSON.stringify(details);
  if (json.length <= MAX_AUDIT_DETAILS_BYTES) return details;
  return { truncated: true, bytes: json.length, preview: json.slice(0, MAX_AUDIT_DETAILS_BYTES - 128) };
}

function counter(metrics: Registry | undefined, name: string, help: string): Counter | undefined {
  if (!metrics) return undefined;
  const existing = metrics.getSingleMetric(name);
  if (existing) return existing as Counter;
  return new Counter({ name, help, registers: [metrics] });
}

/** Admits at most `perSecond` events per wall-clock second; counts the rest until one is admitted. */
function anonymousLimiter(perSecond: number): () => { admitted: boolean; suppressed: number } {
  let second = 0;
  let used = 0;
  let suppressed = 0;
  return () => {
    const now = Math.floor(Date.now() / 1000);
    if (now !== second) {
      second = now;
      used = 0;
    }
    if (used >= perSecond) {
      suppressed += 1;
      return { admitted: false, suppressed };
    }
    used += 1;
    const carried = suppressed;
    suppressed = 0;
    return { admitted: true, suppressed: carried };
  };
}

/** Middleware auditing mutating calls; mount it before authentication so refusals are seen. */
export function auditMutations(options: AuditMiddlewareOptions): MiddlewareHandler<AdminEnv> {
  const log = options.logger.child({ component: 'coordinator.audit' });
  const failures = counter(
    options.metrics,
    'infermesh_audit_write_failures_total',
    'Audit events that could not be written',
  );
  const suppressedTotal = counter(
    options.metrics,
    'infermesh_audit_anonymous_suppressed_total',
    'Refusals of unauthenticated calls not written one by one (over the per-second limit)',
  );
  const admitAnonymous = anonymousLimiter(MAX_ANONYMOUS_EVENTS_PER_SECOND);
  const base = options.basePath ?? '';
  return async (c, next) => {
    if (!MUTATING_METHODS.has(c.req.method)) {
      await next();
      return;
    }
    await next();
    const authenticated = c.get('principal') as Principal | undefined;
    const principal = authenticated ?? ANONYMOUS;
    let suppressed = 0;
    if (!authenticated) {
      const admission = admitAnonymous();
      if (!admission.admitted) {
        suppressedTotal?.inc();
        return;
      }
      suppressed = admission.suppressed;
    }
    const note = c.get('audit');
    const matched = c.req.matchedRoutes.filter((r) => r.method === c.req.method).at(-1)?.path;
    const routePath = (matched ?? c.req.path).replace(/:([A-Za-z0-9_]+)/g, '{$1}');
    const alreadyRead = Object.keys(c.req.bodyCache).length > 0;
    // An unauthenticated caller's body is not kept: anyone could fill the log with it.
    const body = authenticated
      ? await auditedBody(c.req.raw.headers, alreadyRead, () => c.req.json())
      : suppressed > 0
        ? { suppressedSinceLast: suppressed }
        : undefined;
    const details = note?.details ?? body;
    const event: AuditEvent = {
      at: Date.now(),
      actor: principal.name,
      role: principal.role,
      method: c.req.method,
      path: c.req.path.slice(0, 2048),
      status: c.res.status,
      action: (note?.action ?? `${c.req.method} ${routePath.slice(base.length) || '/'}`).slice(0, 128),
      ...(note?.target === undefined ? {} : { target: note.target.slice(0, 512) }),
      ...(details === undefined
        ? {}
        : { details: capDetails(redactSecrets(details) as Record<string, unknown>) }),
      ...requestIdOf(c.req.header('x-request-id')),
    };
    try {
      await options.log.write(event);
    } catch (err) {
      failures?.inc();
      log.error({ err, event }, 'cannot write the audit event; the call itself went through');
    }
  };
}

function requestIdOf(header: string | undefined): { requestId?: string } {
  return header === undefined || header.length === 0 ? {} : { requestId: header.slice(0, 128) };
}

/** The request's JSON object body when it is in memory or small; undefined otherwise. */
async function auditedBody(
  headers: Headers,
  alreadyRead: boolean,
  read: () => Promise<unknown>,
): Promise<Record<string, unknown> | undefined> {
  if (!(headers.get('content-type') ?? '').includes('application/json')) return undefined;
  const length = Number(headers.get('content-length') ?? Number.NaN);
  // A body the route read is in memory already; another is read only when known to be small.
  if (!alreadyRead && !(length <= MAX_AUDITED_BODY_BYTES)) return undefined;
  try {
    const body = await read();
    return body !== null && typeof body === 'object' && !Array.isArray(body)
      ? (body as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

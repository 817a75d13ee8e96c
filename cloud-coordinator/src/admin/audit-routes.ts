/**
 * `GET /api/v1/audit?limit=100&since=<seq>&actor=&action=` (operator role: the log names who did
 * what, more than a read-only dashboard needs): audit events oldest first. Without `since`, the
 * latest `limit` events; with it, the events after that sequence (page on with `nextSince`).
 * @module
 */
import { Hono } from 'hono';
import { z } from 'zod';
import { auditEventListSchema, invalidInput, parseOrThrow } from '@infermesh/protocols';
import type { AuditLog } from './audit-log.js';
import { requireRole } from './principal.js';
import type { AdminEnv } from './principal.js';
import type { RouteDoc } from './route-doc.js';

/** Events per answer unless `limit` says otherwise, and the most one may hold. */
export const DEFAULT_AUDIT_PAGE_LIMIT = 100;
export const MAX_AUDIT_PAGE_LIMIT = 1_000;

/** The query of `GET /api/v1/audit`, as strings on the wire. */
export const auditQuerySchema = z.object({
  limit: z.string().regex(/^\d+$/).optional().describe(`events per answer, 1-${MAX_AUDIT_PAGE_LIMIT}`),
  since: z.string().regex(/^\d+$/).optional().describe('only events after this stream sequence'),
  actor: z.string().max(256).optional().describe('only events of this user'),
  action: z.string().max(128).optional().describe('only events of this action'),
});

/** The documentation of {@link auditRoutes}. */
export const AUDIT_ROUTE_DOCS: readonly RouteDoc[] = [
  {
    method: 'get',
    path: '/audit',
    summary: 'Audit events of mutating admin calls',
    role: 'operator',
    tag: 'audit',
    query: auditQuerySchema,
    response: auditEventListSchema,
  },
];

/** The audit route, to mount under `/api/v1`. */
export function auditRoutes(log: AuditLog): Hono<AdminEnv> {
  const app = new Hono<AdminEnv>();
  app.get('/audit', requireRole('operator'), async (c) => {
    const query = parseOrThrow(auditQuerySchema, c.req.query(), 'query');
    const limit = query.limit === undefined ? DEFAULT_AUDIT_PAGE_LIMIT : Number(query.limit);
    if (limit < 1 || limit > MAX_AUDIT_PAGE_LIMIT) {
      throw invalidInput(`limit must be an integer from 1 to ${MAX_AUDIT_PAGE_LIMIT}`, { what: 'limit' });
    }
    return c.json(
      await log.read({
        limit,
        since: query.since === undefined ? undefined : Number(query.since),
        actor: query.actor,
        action: query.action,
      }),
    );
  });
  return app;
}

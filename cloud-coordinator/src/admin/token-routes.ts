/**
 * Admin API routes of enrollment tokens (admin role):
 * - `POST /api/v1/tokens` (`CreateEnrollmentTokenRequest`): 201 with the token, shown only here.
 * - `GET /api/v1/tokens`: every token without its secret, with whether it is used or expired.
 * - `DELETE /api/v1/tokens/{id}`: 204; 404 NOT_FOUND for an unknown id.
 * @module
 */
import { Hono } from 'hono';
import {
  createEnrollmentTokenRequestSchema,
  createEnrollmentTokenResponseSchema,
  enrollmentTokenListSchema,
  tokenIdSchema,
} from '@infermesh/protocols';
import type { EnrollmentTokenList } from '@infermesh/protocols';
import type { EnrollmentTokenStore } from '../fleet/enrollment-tokens.js';
import { jsonBody, pathParam } from './http-errors.js';
import { noteAudit, principalOf, requireRole } from './principal.js';
import type { AdminEnv } from './principal.js';
import type { RouteDoc } from './route-doc.js';

/** The documentation of {@link tokenRoutes}. */
export const TOKEN_ROUTE_DOCS: readonly RouteDoc[] = [
  {
    method: 'post',
    path: '/tokens',
    summary: 'Create a one-time enrollment token (shown once)',
    role: 'admin',
    tag: 'tokens',
    body: createEnrollmentTokenRequestSchema,
    response: createEnrollmentTokenResponseSchema,
    status: 201,
  },
  {
    method: 'get',
    path: '/tokens',
    summary: 'Every enrollment token, without secrets',
    role: 'admin',
    tag: 'tokens',
    response: enrollmentTokenListSchema,
  },
  {
    method: 'delete',
    path: '/tokens/{id}',
    summary: 'Delete an enrollment token',
    role: 'admin',
    tag: 'tokens',
    status: 204,
  },
];

/** The enrollment-token routes, to mount under `/api/v1`. */
export function tokenRoutes(tokens: EnrollmentTokenStore): Hono<AdminEnv> {
  const app = new Hono<AdminEnv>();

  app.post('/tokens', requireRole('admin'), async (c) => {
    const request = await jsonBody(c, createEnrollmentTokenRequestSchema, 'create-token request');
    const created = await tokens.create(request.labels, request.ttlMs, principalOf(c).name);
    noteAudit(c, {
      action: 'token.create',
      target: created.id,
      details: { labels: created.labels, ttlMs: request.ttlMs },
    });
    return c.json(created, 201);
  });

  app.get('/tokens', requireRole('admin'), async (c) => {
    const answer: EnrollmentTokenList = { tokens: await tokens.list() };
    return c.json(answer);
  });

  app.delete('/tokens/:id', requireRole('admin'), async (c) => {
    const id = pathParam(c, 'id', tokenIdSchema);
    noteAudit(c, { action: 'token.delete', target: id });
    await tokens.delete(id);
    return c.body(null, 204);
  });

  return app;
}

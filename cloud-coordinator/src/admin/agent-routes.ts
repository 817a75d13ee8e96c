/**
 * Admin API routes of each agent's desired state (`desiredStateBucket()`), set by pinning until
 * rollouts exist (a pin stays an operator's override afterwards):
 * - `GET /api/v1/agents/{id}/models`: the agent's desired versions.
 * - `PUT /api/v1/agents/{id}/models/{name}` with `{ "version": V }`: pin; 404 when V does not exist.
 * - `DELETE /api/v1/agents/{id}/models/{name}`: unpin (204); 404 when nothing was pinned.
 * @module
 */
import { Hono } from 'hono';
import { z } from 'zod';
import {
  desiredModelSchema,
  desiredStateResponseSchema,
  modelNameSchema,
  pinModelRequestSchema,
} from '@infermesh/protocols';
import type { DesiredStateResponse } from '@infermesh/protocols';
import type { ModelRegistry } from '../registry/model-registry.js';
import { jsonBody, pathParam } from './http-errors.js';
import { noteAudit, principalOf, requireRole } from './principal.js';
import type { AdminEnv } from './principal.js';
import type { RouteDoc } from './route-doc.js';

/** Agent ids that can appear in desired-state keys: letters, digits, `_` and `-`. */
const agentIdSchema = z.string().regex(/^[A-Za-z0-9_-]{1,128}$/, "must be 1-128 letters, digits, '_' or '-'");

/** The documentation of {@link agentRoutes}. */
export const AGENT_ROUTE_DOCS: readonly RouteDoc[] = [
  {
    method: 'get',
    path: '/agents/{id}/models',
    summary: "An agent's desired model versions",
    role: 'viewer',
    tag: 'agents',
    response: desiredStateResponseSchema,
  },
  {
    method: 'put',
    path: '/agents/{id}/models/{name}',
    summary: 'Pin an agent to a model version',
    role: 'operator',
    tag: 'agents',
    body: pinModelRequestSchema,
    response: desiredModelSchema,
  },
  {
    method: 'delete',
    path: '/agents/{id}/models/{name}',
    summary: "Remove an agent's pin of a model",
    role: 'operator',
    tag: 'agents',
    status: 204,
  },
];

/** The desired-state routes, to mount under `/api/v1`. */
export function agentRoutes(registry: ModelRegistry): Hono<AdminEnv> {
  const app = new Hono<AdminEnv>();

  app.get('/agents/:id/models', requireRole('viewer'), async (c) => {
    const agentId = pathParam(c, 'id', agentIdSchema);
    const answer: DesiredStateResponse = { agentId, models: await registry.desiredOf(agentId) };
    return c.json(answer);
  });

  app.put('/agents/:id/models/:name', requireRole('operator'), async (c) => {
    const agentId = pathParam(c, 'id', agentIdSchema);
    const name = pathParam(c, 'name', modelNameSchema);
    const { version } = await jsonBody(c, pinModelRequestSchema, 'pin request');
    noteAudit(c, { action: 'agent.pin', target: `${agentId}:${name}@${version}` });
    return c.json(await registry.pin(agentId, name, version, principalOf(c).name));
  });

  app.delete('/agents/:id/models/:name', requireRole('operator'), async (c) => {
    const agentId = pathParam(c, 'id', agentIdSchema);
    const name = pathParam(c, 'name', modelNameSchema);
    noteAudit(c, { action: 'agent.unpin', target: `${agentId}:${name}` });
    await registry.unpin(agentId, name);
    return c.body(null, 204);
  });

  return app;
}

/**
 * Admin API routes of rollouts (mounted under `/api/v1` through the app's `extraRoutes`):
 * - `POST /rollouts` (operator): start one (`CreateRolloutRequest`); 201 with the `Rollout`.
 *   404 MODEL_NOT_FOUND for a version not in the registry, 400 for one without an edge variant or
 *   a selector that picks no target, 409 while another rollout of the model is live.
 * - `GET /rollouts` (viewer): summaries, newest first. `GET /rollouts/{id}` (viewer): the record
 *   (spec, state, steps with per-state counts, last gate, events; no per-agent list).
 * - `GET /rollouts/{id}/agents?cursor=&limit=&step=` (viewer): the target agents in rollout order,
 *   a page at a time (`nextCursor` until the last page).
 * - `POST /rollouts/{id}/pause|resume|abort|rollback` (operator): steer one; 409 when its state
 *   does not allow it, 404 for an unknown id.
 * @module
 */
import { Hono } from 'hono';
import {
  createRolloutRequestSchema,
  parseOrThrow,
  rolloutAgentPageQuerySchema,
  rolloutAgentPageSchema,
  rolloutIdSchema,
  rolloutListSchema,
  rolloutSchema,
  summarizeRollout,
} from '@infermesh/protocols';
import type { RolloutList } from '@infermesh/protocols';
import { jsonBody, pathParam } from '../admin/http-errors.js';
import { noteAudit, principalOf, requireRole } from '../admin/principal.js';
import type { AdminEnv } from '../admin/principal.js';
import type { RouteDoc } from '../admin/route-doc.js';
import type { RolloutService } from './rollout-service.js';

/** What the rollout routes need. */
export interface RolloutRoutesDeps {
  readonly rollouts: RolloutService;
}

const STEERING = ['pause', 'resume', 'abort', 'rollback'] as const;

/** The documentation of the rollout routes (for the OpenAPI document). */
export const ROLLOUT_ROUTE_DOCS: readonly RouteDoc[] = [
  {
    method: 'post',
    path: '/rollouts',
    summary: 'Start a staged rollout of a model version',
    role: 'operator',
    tag: 'rollouts',
    body: createRolloutRequestSchema,
    response: rolloutSchema,
    status: 201,
  },
  {
    method: 'get',
    path: '/rollouts',
    summary: 'Rollouts, newest first',
    role: 'viewer',
    tag: 'rollouts',
    response: rolloutListSchema,
  },
  {
    method: 'get',
    path: '/rollouts/{id}',
    summary: 'One rollout with its steps and their counts, gates and events',
    role: 'viewer',
    tag: 'rollouts',
    response: rolloutSchema,
  },
  {
    method: 'get',
    path: '/rollouts/{id}/agents',
    summary: "A page of a rollout's target agents, in rollout order",
    role: 'viewer',
    tag: 'rollouts',
    query: rolloutAgentPageQuerySchema,
    response: rolloutAgentPageSchema,
  },
  ...STEERING.map((action): RouteDoc => ({
    method: 'post',
    path: `/rollouts/{id}/${action}`,
    summary: `${action[0]?.toUpperCase() ?? ''}${action.slice(1)} a rollout`,
    role: 'operator',
    tag: 'rollouts',
    response: rolloutSchema,
  })),
];

/** The rollout routes. */
export function rolloutRoutes(deps: RolloutRoutesDeps): Hono<AdminEnv> {
  const app = new Hono<AdminEnv>();
  const { rollouts } = deps;

  app.post('/rollouts', requireRole('operator'), async (c) => {
    const spec = await jsonBody(c, createRolloutRequestSchema, 'rollout request');
    noteAudit(c, { action: 'rollout.start', target: `${spec.model}@${spec.version}` });
    const rollout = await rollouts.start(spec, principalOf(c).name);
    noteAudit(c, {
      action: 'rollout.start',
      target: `${spec.model}@${spec.version}`,
      details: { rolloutId: rollout.id, targets: rollout.targets },
    });
    return c.json(rollout, 201);
  });

  app.get('/rollouts', requireRole('viewer'), async (c) => {
    const answer: RolloutList = { rollouts: (await rollouts.list()).map(summarizeRollout) };
    return c.json(answer);
  });

  app.get('/rollouts/:id', requireRole('viewer'), async (c) => {
    const id = pathParam(c, 'id', rolloutIdSchema);
    return c.json(await rollouts.get(id));
  });

  app.get('/rollouts/:id/agents', requireRole('viewer'), async (c) => {
    const id = pathParam(c, 'id', rolloutIdSchema);
    const query = parseOrThrow(rolloutAgentPageQuerySchema, c.req.query(), 'query');
    return c.json(await rollouts.agents(id, query));
  });

  for (const action of STEERING) {
    app.post(`/rollouts/:id/${action}`, requireRole('operator'), async (c) => {
      const id = pathParam(c, 'id', rolloutIdSchema);
      noteAudit(c, { action: `rollout.${action}`, target: id });
      return c.json(await rollouts[action](id, principalOf(c).name));
    });
  }

  return app;
}

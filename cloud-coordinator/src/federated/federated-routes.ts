/**
 * Admin routes of federated learning: `POST /fl/runs` (operator) starts a run, `GET /fl/runs` and
 * `GET /fl/runs/{id}` (viewer) show runs with their last closed rounds in full,
 * `GET /fl/runs/{id}/rounds/{n}` (viewer) any one closed round, `POST /fl/runs/{id}/stop`
 * (operator) stops one. Mounted under `/api/v1` behind the admin authentication.
 * @module
 */
import { Hono } from 'hono';
import { z } from 'zod';
import {
  flRoundRecordSchema,
  flRunDetailSchema,
  flRunListResponseSchema,
  flRunStartRequestSchema,
  flRunStopRequestSchema,
  idSchema,
  MAX_FL_ROUNDS,
  invalidInput,
  parseOrThrow,
} from '@infermesh/protocols';
import type { AdminEnv } from '../admin/principal.js';
import { noteAudit, principalOf, requireRole } from '../admin/principal.js';
import type { RouteDoc } from '../admin/route-doc.js';
import { jsonBody, pathParam } from '../admin/http-errors.js';
import type { FederatedService } from './federated-service.js';

/** What the routes use. */
export interface FederatedRouteDeps {
  readonly federated: FederatedService;
}

/** The routes' documentation (OpenAPI). */
export const FEDERATED_ROUTE_DOCS: RouteDoc[] = [
  {
    method: 'post',
    path: '/fl/runs',
    summary: 'Start a federated training run',
    role: 'operator',
    tag: 'federated',
    body: flRunStartRequestSchema,
    response: flRunDetailSchema,
    status: 201,
  },
  {
    method: 'get',
    path: '/fl/runs',
    summary: 'List federated runs',
    role: 'viewer',
    tag: 'federated',
    response: flRunListResponseSchema,
  },
  {
    method: 'get',
    path: '/fl/runs/{id}',
    summary: 'A federated run with its last closed rounds in full',
    role: 'viewer',
    tag: 'federated',
    response: flRunDetailSchema,
  },
  {
    method: 'get',
    path: '/fl/runs/{id}/rounds/{round}',
    summary: "One closed round's full record",
    role: 'viewer',
    tag: 'federated',
    response: flRoundRecordSchema,
  },
  {
    method: 'post',
    path: '/fl/runs/{id}/stop',
    summary: 'Stop a run at once (registers the last closed round only with register: true)',
    role: 'operator',
    tag: 'federated',
    body: flRunStopRequestSchema,
    response: flRunDetailSchema,
  },
];

/** A round number in a path. */
const roundNumberSchema = z.coerce.number().int().min(1).max(MAX_FL_ROUNDS);

/** Body of a stop: optional (an empty body stops without registering). */
async function stopBody(c: Parameters<typeof jsonBody>[0]): Promise<{ register: boolean }> {
  const text = await c.req.text();
  if (text.trim() === '') return { register: false };
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw invalidInput('the stop request must be a JSON object');
  }
  return parseOrThrow(flRunStopRequestSchema, json, 'stop request');
}

/** The federated routes. */
export function federatedRoutes(deps: FederatedRouteDeps): Hono<AdminEnv> {
  const app = new Hono<AdminEnv>();
  app.post('/fl/runs', requireRole('operator'), async (c) => {
    const request = await jsonBody(c, flRunStartRequestSchema, 'federated run');
    const record = await deps.federated.startRun(request, principalOf(c).name);
    noteAudit(c, {
      action: 'fl.start',
      target: record.id,
      details: {
        model: record.model,
        baseVersion: record.baseVersion,
        rounds: record.rounds,
        strategy: record.strategy,
      },
    });
    return c.json(record, 201);
  });
  app.get('/fl/runs', requireRole('viewer'), async (c) => c.json({ runs: await deps.federated.listRuns() }));
  app.get('/fl/runs/:id', requireRole('viewer'), async (c) =>
    c.json(await deps.federated.getRun(pathParam(c, 'id', idSchema))),
  );
  app.get('/fl/runs/:id/rounds/:round', requireRole('viewer'), async (c) =>
    c.json(
      await deps.federated.getRound(pathParam(c, 'id', idSchema), pathParam(c, 'round', roundNumberSchema)),
    ),
  );
  app.post('/fl/runs/:id/stop', requireRole('operator'), async (c) => {
    const id = pathParam(c, 'id', idSchema);
    const { register } = await stopBody(c);
    const record = await deps.federated.stopRun(id, register);
    noteAudit(c, { action: 'fl.stop', target: id, details: { register } });
    return c.json(record);
  });
  return app;
}

/**
 * Admin API routes of the fleet registry:
 * - `GET /api/v1/fleet/agents?selector=site=eu,hw=x&presence=online,stale&limit=100&cursor=<id>`:
 *   one page of agents in id order (`FleetAgentList`); limit 1-1000, default 100. Only the page's
 *   agents are built, so a page stays cheap with tens of thousands of agents.
 * - `GET /api/v1/fleet/agents/{id}`: one agent (404 NOT_FOUND).
 * - `PATCH /api/v1/fleet/agents/{id}/labels` (operator): set (string) or remove (null) labels.
 * - `DELETE /api/v1/fleet/agents/{id}` (admin): de-enroll (removes the fleet record; 204).
 * @module
 */
import { Hono } from 'hono';
import { z } from 'zod';
import {
  AGENT_PRESENCE,
  fleetAgentListSchema,
  fleetAgentSchema,
  fleetRecordSchema,
  idSchema,
  invalidInput,
  labelsPatchSchema,
  labelsSchema,
  notFound,
  parseOrThrow,
} from '@infermesh/protocols';
import type { AgentPresence, FleetAgentList, Labels } from '@infermesh/protocols';
import type { FleetRegistry } from '../fleet/fleet-registry.js';
import { jsonBody, pathParam } from './http-errors.js';
import { noteAudit, principalOf, requireRole } from './principal.js';
import type { AdminEnv } from './principal.js';
import type { RouteDoc } from './route-doc.js';

/** Agents per page unless `limit` says otherwise. */
export const DEFAULT_FLEET_PAGE_LIMIT = 100;
/** Most agents one page may hold. */
export const MAX_FLEET_PAGE_LIMIT = 1_000;

/** The query of `GET /api/v1/fleet/agents`, as strings on the wire. */
export const fleetAgentsQuerySchema = z.object({
  selector: z
    .string()
    .max(4096)
    .optional()
    .describe('comma-separated key=value labels every agent must have: site=eu,hw=x'),
  presence: z
    .string()
    .max(64)
    .optional()
    .describe(`comma-separated presences: ${AGENT_PRESENCE.join(', ')}`),
  limit: z.string().regex(/^\d+$/).optional().describe(`agents per page, 1-${MAX_FLEET_PAGE_LIMIT}`),
  cursor: z.string().max(128).optional().describe('the nextCursor of the previous page'),
});

/** Parses `site=eu,hw=x` into labels; INVALID_INPUT naming the bad part. */
export function parseSelector(text: string): Labels {
  const labels: Record<string, string> = {};
  for (const part of text.split(',')) {
    if (part.trim() === '') continue;
    const eq = part.indexOf('=');
    if (eq <= 0)
      throw invalidInput(`selector part ${JSON.stringify(part)} is not key=value`, { what: 'selector' });
    labels[part.slice(0, eq).trim()] = part.slice(eq + 1).trim();
  }
  return parseOrThrow(labelsSchema, labels, 'selector');
}

function parsePresence(text: string): AgentPresence[] {
  const presence = text.split(',').filter((p) => p.trim() !== '');
  return parseOrThrow(
    z.array(z.enum(AGENT_PRESENCE)).min(1),
    presence.map((p) => p.trim()),
    'presence',
  );
}

function parseLimit(text: string | undefined): number {
  if (text === undefined) return DEFAULT_FLEET_PAGE_LIMIT;
  const limit = Number(text);
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_FLEET_PAGE_LIMIT) {
    throw invalidInput(`limit must be an integer from 1 to ${MAX_FLEET_PAGE_LIMIT}`, { what: 'limit' });
  }
  return limit;
}

/** The documentation of {@link fleetRoutes}. */
export const FLEET_ROUTE_DOCS: readonly RouteDoc[] = [
  {
    method: 'get',
    path: '/fleet/agents',
    summary: 'One page of agents, filtered by labels and presence',
    role: 'viewer',
    tag: 'fleet',
    query: fleetAgentsQuerySchema,
    response: fleetAgentListSchema,
  },
  {
    method: 'get',
    path: '/fleet/agents/{id}',
    summary: 'One agent',
    role: 'viewer',
    tag: 'fleet',
    response: fleetAgentSchema,
  },
  {
    method: 'patch',
    path: '/fleet/agents/{id}/labels',
    summary: "Set (string) or remove (null) an enrolled agent's labels",
    role: 'operator',
    tag: 'fleet',
    body: labelsPatchSchema,
    response: fleetRecordSchema,
  },
  {
    method: 'delete',
    path: '/fleet/agents/{id}',
    summary: 'De-enroll an agent',
    role: 'admin',
    tag: 'fleet',
    status: 204,
  },
];

/** The fleet routes, to mount under `/api/v1`. */
export function fleetRoutes(fleet: FleetRegistry): Hono<AdminEnv> {
  const app = new Hono<AdminEnv>();

  app.get('/fleet/agents', requireRole('viewer'), (c) => {
    const query = parseOrThrow(fleetAgentsQuerySchema, c.req.query(), 'query');
    const limit = parseLimit(query.limit);
    const selector = query.selector === undefined ? undefined : parseSelector(query.selector);
    const presence = query.presence === undefined ? undefined : parsePresence(query.presence);
    const page = fleet.page(
      { ...(selector ? { selector } : {}), ...(presence ? { presence } : {}) },
      limit,
      query.cursor,
    );
    const answer: FleetAgentList = {
      agents: page.agents,
      total: page.total,
      ...(page.nextCursor === undefined ? {} : { nextCursor: page.nextCursor }),
    };
    return c.json(answer);
  });

  app.get('/fleet/agents/:id', requireRole('viewer'), (c) => {
    const agentId = pathParam(c, 'id', idSchema);
    const agent = fleet.get(agentId);
    if (!agent) throw notFound(`no agent ${agentId} in the fleet`, { agentId });
    return c.json(agent);
  });

  app.patch('/fleet/agents/:id/labels', requireRole('operator'), async (c) => {
    const agentId = pathParam(c, 'id', idSchema);
    const patch = await jsonBody(c, labelsPatchSchema, 'labels patch');
    noteAudit(c, { action: 'fleet.labels.update', target: agentId, details: { patch } });
    return c.json(await fleet.updateLabels(agentId, patch, principalOf(c).name));
  });

  app.delete('/fleet/agents/:id', requireRole('admin'), async (c) => {
    const agentId = pathParam(c, 'id', idSchema);
    noteAudit(c, { action: 'fleet.agent.deenroll', target: agentId });
    await fleet.deleteRecord(agentId);
    return c.body(null, 204);
  });

  return app;
}

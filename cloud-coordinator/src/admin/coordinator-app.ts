/**
 * The coordinator's HTTP API: `GET /healthz` and `GET /metrics` (Prometheus) open to scrapers, and
 * the admin API under `/api/v1`, every route behind a bearer token (`admin-auth.ts`) and a role
 * (`principal.ts`): the routing table (`worker-routes.ts`), the registry's artifacts, models,
 * versions and each agent's desired state, the publisher key, the fleet, enrollment tokens, users,
 * the audit log and the OpenAPI document of all of them. Every mutating call is audited
 * (`audit-middleware.ts`). Routes of other areas (rollouts, federated runs) are mounted through
 * `extraRoutes`. Errors are `{ error, code }` with the catalogue's status.
 * @module
 */
import { Hono } from 'hono';
import pino from 'pino';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { ErrorCode, publisherKeyResponseSchema } from '@infermesh/protocols';
import type { PublisherKeyResponse } from '@infermesh/protocols';
import type { EnrollmentTokenStore } from '../fleet/enrollment-tokens.js';
import type { FleetRegistry } from '../fleet/fleet-registry.js';
import type { ModelRegistry } from '../registry/model-registry.js';
import type { EjectionList } from '../router/ejection.js';
import type { WorkerTable } from '../router/worker-table.js';
import { authenticate } from './admin-auth.js';
import { AGENT_ROUTE_DOCS, agentRoutes } from './agent-routes.js';
import { ARTIFACT_ROUTE_DOCS, artifactRoutes } from './artifact-routes.js';
import type { AuditLog } from './audit-log.js';
import { auditMutations } from './audit-middleware.js';
import { AUDIT_ROUTE_DOCS, auditRoutes } from './audit-routes.js';
import { FLEET_ROUTE_DOCS, fleetRoutes } from './fleet-routes.js';
import { adminErrorHandler, adminNotFound } from './http-errors.js';
import { MODEL_ROUTE_DOCS, modelRoutes } from './model-routes.js';
import { buildOpenApiDocument } from './openapi.js';
import { requireRole } from './principal.js';
import type { AdminEnv } from './principal.js';
import type { RouteDoc } from './route-doc.js';
import { TOKEN_ROUTE_DOCS, tokenRoutes } from './token-routes.js';
import { USER_ROUTE_DOCS, userRoutes } from './user-routes.js';
import type { UsersStore } from './users-store.js';
import { WORKER_ROUTE_DOCS, workerRoutes } from './worker-routes.js';

export type { WorkerRow } from './worker-routes.js';

/** Routes of another area, mounted under `/api/v1` with their documentation. */
export interface AdminRouteModule {
  readonly routes: Hono<AdminEnv>;
  readonly docs: readonly RouteDoc[];
}

/** What the coordinator's app reads. */
export interface CoordinatorAppOptions {
  readonly coordinatorId: string;
  readonly registry: Registry;
  readonly table: WorkerTable;
  readonly ejections: EjectionList;
  readonly natsState: () => string;
  /** Monotonic clock in ms, the one the table and ejections use. */
  readonly now?: () => number;
  /** Bootstrap bearer token (principal `admin`, role admin). */
  readonly adminToken?: string | undefined;
  /** Users and their API tokens; without them only the bootstrap token works. */
  readonly users?: UsersStore | undefined;
  /** The model registry; its routes are absent without it. */
  readonly modelRegistry?: ModelRegistry | undefined;
  /** The fleet registry; the fleet routes are absent without it. */
  readonly fleet?: FleetRegistry | undefined;
  /** Enrollment tokens; their routes are absent without them. */
  readonly enrollmentTokens?: EnrollmentTokenStore | undefined;
  /** The audit log; without it mutating calls are not audited and `/audit` is absent. */
  readonly audit?: AuditLog | undefined;
  /** Routes of other areas (rollouts, federated runs). */
  readonly extraRoutes?: readonly AdminRouteModule[];
  /** Version in the OpenAPI document. */
  readonly apiVersion?: string;
  readonly logger?: Logger;
}

/** The documentation of the routes this module serves itself. */
const CORE_ROUTE_DOCS: readonly RouteDoc[] = [
  {
    method: 'get',
    path: '/openapi.json',
    summary: 'This document',
    role: 'viewer',
    tag: 'meta',
  },
];
const PUBLISHER_KEY_ROUTE_DOCS: readonly RouteDoc[] = [
  {
    method: 'get',
    path: '/publisher-key',
    summary: "The registry's manifest signing key",
    role: 'viewer',
    tag: 'models',
    response: publisherKeyResponseSchema,
  },
];

/** Builds the coordinator's HTTP app. */
export function createCoordinatorApp(options: CoordinatorAppOptions): Hono {
  const logger = options.logger ?? pino({ enabled: false });
  const onError = adminErrorHandler(logger);
  const app = new Hono();
  app.onError(onError);
  app.notFound(adminNotFound);
  app.get('/healthz', (c) => {
    const nats = options.natsState();
    const ok = nats === 'connected';
    return c.json(
      {
        status: ok ? 'ok' : 'unavailable',
        coordinatorId: options.coordinatorId,
        nats,
        workers: options.table.size,
      },
      ok ? 200 : 503,
    );
  });
  app.get('/metrics', async (c) =>
    c.body(await options.registry.metrics(), 200, { 'Content-Type': options.registry.contentType }),
  );
  app.route('/api/v1', adminApi(options, logger));
  return app;
}

/** The `/api/v1` routes, all behind authentication. */
function adminApi(options: CoordinatorAppOptions, logger: Logger): Hono<AdminEnv> {
  const api = new Hono<AdminEnv>();
  api.onError(adminErrorHandler(logger));
  if (options.audit) {
    api.use(
      '*',
      auditMutations({ log: options.audit, logger, metrics: options.registry, basePath: '/api/v1' }),
    );
  }
  api.use('*', authenticate({ adminToken: options.adminToken, users: options.users }));
  const modules: AdminRouteModule[] = [
    {
      routes: workerRoutes({
        table: options.table,
        ejections: options.ejections,
        now: options.now ?? (() => performance.now()),
      }),
      docs: WORKER_ROUTE_DOCS,
    },
  ];
  const registry = options.modelRegistry;
  if (registry) {
    modules.push(
      { routes: artifactRoutes({ registry, logger }), docs: ARTIFACT_ROUTE_DOCS },
      { routes: modelRoutes(registry), docs: MODEL_ROUTE_DOCS },
      { routes: agentRoutes(registry), docs: AGENT_ROUTE_DOCS },
      { routes: publisherKeyRoutes(registry), docs: PUBLISHER_KEY_ROUTE_DOCS },
    );
  }
  if (options.fleet) modules.push({ routes: fleetRoutes(options.fleet), docs: FLEET_ROUTE_DOCS });
  if (options.enrollmentTokens) {
    modules.push({ routes: tokenRoutes(options.enrollmentTokens), docs: TOKEN_ROUTE_DOCS });
  }
  if (options.users) modules.push({ routes: userRoutes(options.users), docs: USER_ROUTE_DOCS });
  if (options.audit) modules.push({ routes: auditRoutes(options.audit), docs: AUDIT_ROUTE_DOCS });
  modules.push(...(options.extraRoutes ?? []));
  const document = buildOpenApiDocument([CORE_ROUTE_DOCS, ...modules.map((m) => m.docs)], {
    title: 'InferMesh coordinator admin API',
    version: options.apiVersion ?? '1',
  });
  api.get('/openapi.json', requireRole('viewer'), (c) => c.json(document));
  for (const module of modules) api.route('/', module.routes);
  return api;
}

function publisherKeyRoutes(registry: ModelRegistry): Hono<AdminEnv> {
  const app = new Hono<AdminEnv>();
  app.get('/publisher-key', requireRole('viewer'), (c) => {
    const publicKey = registry.publicKey;
    if (publicKey === undefined) {
      return c.json({ error: 'no publisher key is configured', code: ErrorCode.UNAVAILABLE }, 503);
    }
    const answer: PublisherKeyResponse = { publicKey };
    return c.json(answer);
  });
  return app;
}

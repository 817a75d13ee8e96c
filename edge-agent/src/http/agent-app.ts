/**
 * The agent's Hono application: API key and body-size limits, shutdown draining, the Open
 * Inference Protocol routes, `/metrics` and `/v1/status`, behind one error boundary. Testable
 * in-process through `app.request()`.
 * @module
 */
import { Hono } from 'hono';
import type { Logger } from 'pino';
import { InferMeshError, ErrorCode } from '@infermesh/protocols';
import type { AgentConfig } from '../config/agent-config.js';
import type { HeartbeatPublisher } from '../heartbeat/heartbeat-publisher.js';
import type { AgentMetrics } from '../metrics/agent-metrics.js';
import type { ModelRepository } from '../models/model-repository.js';
import type { CloudOffload } from '../offload/cloud-offload.js';
import type { InferenceRouter } from '../offload/inference-router.js';
import type { ModelSync } from '../sync/model-sync.js';
import { modelStatusReport } from './agent-status.js';
import { apiKeyMiddleware } from './api-key.js';
import { bodySizeLimit } from './body-size-limit.js';
import { errorResponse, failureOf, handleError } from './error-boundary.js';
import { registerOipRoutes } from './oip-routes.js';
import { registerFeedbackRoutes } from './feedback-routes.js';
import type { ExampleStore } from '../federated/example-store.js';
import type { RoundClient } from '../federated/round-client.js';

const HEALTH_PATHS = new Set(['/v2/health/live', '/v2/health/ready']);

export interface AgentAppContext {
  config: AgentConfig;
  agentVersion: string;
  repository: ModelRepository;
  router: InferenceRouter;
  cloud: CloudOffload | undefined;
  /** Model sync with the registry (agents with a NATS server). */
  sync?: ModelSync | undefined;
  heartbeat?: HeartbeatPublisher | undefined;
  /** Labelled examples for federated training (`POST /v1/feedback`). */
  examples?: ExampleStore | undefined;
  /** The federated-learning client (agents with a NATS server). */
  federated?: RoundClient | undefined;
  metrics: AgentMetrics;
  logger: Logger;
  startedAt: Date;
  /** Ready once the models present at start are loaded. */
  isStarted(): boolean;
  /** True once shutdown began: new requests are refused with 503. */
  isDraining(): boolean;
}

export function createAgentApp(ctx: AgentAppContext): Hono {
  const log = ctx.logger.child({ component: 'agent.http' });
  const app = new Hono();
  app.onError((err, c) => handleError(err, c, log));
  app.notFound((c) =>
    errorResponse(
      c,
      new InferMeshError(ErrorCode.MODEL_NOT_FOUND, `no route for ${c.req.method} ${c.req.path}`),
    ),
  );

  // Every error response is counted once, by code, whichever layer answered it (key, size limit, route).
  app.use('*', async (c, next) => {
    await next();
    const failure = failureOf(c);
    if (failure) ctx.metrics.errors.inc({ model: failure.model ?? '', code: failure.code });
  });

  app.use('*', async (c, next) => {
    // Health probes keep answering while draining (live: true, ready: false with a 4xx, as the protocol says).
    if (ctx.isDraining() && !HEALTH_PATHS.has(c.req.path)) {
      c.header('Connection', 'close');
      throw new InferMeshError(ErrorCode.UNAVAILABLE, 'agent is shutting down', { retryAfterSeconds: 1 });
    }
    await next();
  });
  if (ctx.config.apiKey !== undefined) app.use('*', apiKeyMiddleware(ctx.config.apiKey));
  app.use(
    '/v2/models/*',
    bodySizeLimit({
      maxSize: ctx.config.maxBodyBytes,
      onError: (c) =>
        errorResponse(
          c,
          new InferMeshError(
            ErrorCode.PAYLOAD_TOO_LARGE,
            `request body exceeds the limit of ${ctx.config.maxBodyBytes} bytes`,
          ),
        ),
    }),
  );

  registerOipRoutes(app, {
    agentId: ctx.config.id,
    agentVersion: ctx.agentVersion,
    repository: ctx.repository,
    router: ctx.router,
    cloud: ctx.cloud,
    metrics: ctx.metrics,
    isReady: () => ctx.isStarted() && !ctx.isDraining(),
  });

  if (ctx.examples) {
    registerFeedbackRoutes(app, {
      repository: ctx.repository,
      store: ctx.examples,
      maxBodyBytes: ctx.config.maxBodyBytes,
    });
  }

  app.get('/metrics', async (c) => {
    const { contentType, body } = await ctx.metrics.exposition();
    return c.body(body, 200, { 'content-type': contentType });
  });

  app.get('/v1/status', (c) => {
    const memory = process.memoryUsage();
    return c.json({
      agentId: ctx.config.id,
      version: ctx.agentVersion,
      startedAt: ctx.startedAt.toISOString(),
      uptimeS: Math.round((Date.now() - ctx.startedAt.getTime()) / 1000),
      ready: ctx.isStarted() && !ctx.isDraining(),
      ...modelStatusReport(
        ctx.repository.list(),
        ctx.sync,
        ctx.heartbeat,
        ctx.config.trustedPublisherKeys.length,
      ),
      cloud:
        ctx.cloud === undefined
          ? { configured: false }
          : { configured: true, connected: ctx.cloud.connected, breaker: ctx.cloud.breaker.state },
      ...(ctx.federated ? { federated: ctx.federated.status() } : {}),
      memory: { rssBytes: memory.rss, heapUsedBytes: memory.heapUsed, externalBytes: memory.external },
    });
  });
  return app;
}

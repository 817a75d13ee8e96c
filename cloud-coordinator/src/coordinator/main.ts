/**
 * Entry for `infermesh coordinator`: parse the configuration once, load (or create) the publisher
 * key, connect, start the router, the metadata relay, the model registry and the admin API, and
 * stop cleanly on SIGTERM/SIGINT. The coordinator keeps no state of its own (the registry lives in
 * JetStream), so any number can run and any can be killed.
 * @module
 */
import pino from 'pino';
import type { Logger } from 'pino';
import { connectMesh } from '@infermesh/mesh-client';
import type { MeshConnection } from '@infermesh/mesh-client';
import { AuditLog } from '../admin/audit-log.js';
import { createCoordinatorApp } from '../admin/coordinator-app.js';
import { UsersStore } from '../admin/users-store.js';
import { EnrollmentResponder } from '../fleet/enrollment-responder.js';
import { EnrollmentTokenStore } from '../fleet/enrollment-tokens.js';
import { startHttpEndpoint } from '../admin/http-server.js';
import type { HttpEndpoint } from '../admin/http-server.js';
import { loadCoordinatorConfig } from '../config/coordinator-config.js';
import type { CoordinatorConfig, CoordinatorConfigInput } from '../config/coordinator-config.js';
import type { ConfigSources } from '@infermesh/config';
import { waitForStopSignal } from '../process-signals.js';
import { FleetRegistry } from '../fleet/fleet-registry.js';
import { FederatedService } from '../federated/federated-service.js';
import { FEDERATED_ROUTE_DOCS, federatedRoutes } from '../federated/federated-routes.js';
import { ModelRegistry } from '../registry/model-registry.js';
import { openRollouts } from '../rollout/rollouts-node.js';
import type { RolloutsNode } from '../rollout/rollouts-node.js';
import { loadOrCreatePublisherKey } from '../registry/publisher-key.js';
import { EjectionList } from '../router/ejection.js';
import { MetadataRelay } from '../router/metadata-relay.js';
import { Router } from '../router/router.js';
import { RouterMetrics } from '../router/router-metrics.js';
import { WorkerTable } from '../router/worker-table.js';

/** A running coordinator. */
export interface CoordinatorNode {
  readonly router: Router;
  readonly table: WorkerTable;
  readonly connection: MeshConnection;
  readonly metrics: RouterMetrics;
  readonly http: HttpEndpoint;
  readonly registry: ModelRegistry;
  readonly fleet: FleetRegistry;
  /** Leaves the queue groups, finishes the requests being routed, closes everything. */
  stop(): Promise<void>;
}

/**
 * Connects, starts the admin API, then the router (after its warm-up) and the metadata relay.
 * Resolves once the coordinator takes requests.
 */
export async function startCoordinatorNode(
  config: CoordinatorConfig,
  logger: Logger,
): Promise<CoordinatorNode> {
  const metrics = new RouterMetrics(config.id);
  const table = new WorkerTable({ staleAfterMs: config.workerStaleAfterMs });
  const ejections = new EjectionList({ baseMs: config.ejectionBaseMs, maxMs: config.ejectionMaxMs });
  const publisherKey =
    config.publisherKeyFile === undefined
      ? undefined
      : await loadOrCreatePublisherKey(config.publisherKeyFile, logger);
  if (config.adminToken === undefined) {
    logger.warn('no adminToken configured: the admin API (/api/v1) refuses every call');
  }
  const connection = await connectMesh(config.nats, { name: `coordinator-${config.id}`, logger });
  const registry = new ModelRegistry({
    connection,
    logger,
    publisherKey,
    maxArtifactBytes: config.maxArtifactBytes,
    replicas: config.storeReplicas,
  });
  const fleet = new FleetRegistry({
    connection,
    logger,
    staleAfterMs: config.fleetStaleAfterMs,
    offlineAfterMs: config.fleetOfflineAfterMs,
    requireEnrollment: config.fleetRequireEnrollment,
    replicas: config.storeReplicas,
  });
  const users = new UsersStore({ connection, logger, replicas: config.storeReplicas });
  const enrollmentTokens = new EnrollmentTokenStore({ connection, logger, replicas: config.storeReplicas });
  const audit = new AuditLog({ connection, replicas: config.storeReplicas });
  const enrollment = new EnrollmentResponder({ connection, tokens: enrollmentTokens, fleet, logger });
  const federated = new FederatedService({
    connection,
    registry,
    fleet,
    logger,
    coordinatorId: config.id,
    replicas: config.storeReplicas,
    leaseTtlMs: config.flLeaseTtlMs,
    scanIntervalMs: config.flScanIntervalMs,
  });
  let http: HttpEndpoint;
  let rollouts: RolloutsNode;
  try {
    // Before the HTTP endpoint: user tokens are checked, and mutations audited, from the first call.
    await Promise.all([users.start(), enrollmentTokens.start(), audit.start()]);
    rollouts = await openRollouts({
      connection,
      fleet,
      manifestOf: (model, version) => registry.getManifest(model, version),
      coordinatorId: config.id,
      tickIntervalMs: config.rolloutTickIntervalMs,
      leaseTtlMs: config.rolloutLeaseTtlMs,
      replicas: config.storeReplicas,
      logger,
    });
    http = await startHttpEndpoint(
      createCoordinatorApp({
        coordinatorId: config.id,
        registry: metrics.registry,
        table,
        ejections,
        natsState: () => connection.state,
        adminToken: config.adminToken,
        modelRegistry: registry,
        fleet,
        users,
        enrollmentTokens,
        audit,
        logger,
        extraRoutes: [
          { routes: federatedRoutes({ federated }), docs: FEDERATED_ROUTE_DOCS },
          rollouts.routes,
        ],
      }),
      config.host,
      config.port,
    );
  } catch (err) {
    await users.stop();
    await connection.close();
    throw err;
  }
  const router = new Router({
    connection,
    table,
    ejections,
    metrics,
    settings: {
      ackTimeoutMs: config.ackTimeoutMs,
      maxOutstandingPerCapacity: config.maxOutstandingPerCapacity,
      warmupMs: config.warmupMs,
    },
    logger,
  });
  const relay = new MetadataRelay({
    connection,
    table,
    ejections,
    metrics,
    timeoutMs: config.metadataTimeoutMs,
    logger,
  });
  await Promise.all([router.start(), registry.start(), fleet.start()]);
  await federated.start();
  relay.start();
  enrollment.start();
  rollouts.controller.start();
  logger.info(
    { admin: http.url, workers: table.size, publisherKey: registry.publicKey },
    'coordinator ready',
  );
  let stopping: Promise<void> | undefined;
  return {
    router,
    table,
    connection,
    metrics,
    http,
    registry,
    fleet,
    stop() {
      stopping ??= (async () => {
        await Promise.all([
          router.stop(config.shutdownTimeoutMs),
          relay.stop(),
          enrollment.stop(),
          users.stop(),
          federated.stop(),
        ]);
        await rollouts.controller.stop();
        await fleet.stop();
        await connection.drain();
        await http.close();
        logger.info('coordinator stopped');
      })();
      return stopping;
    },
  };
}

/** Where `infermesh coordinator` reads its settings. */
export type RunCoordinatorOptions = ConfigSources<CoordinatorConfigInput>;

/** Runs a coordinator until SIGTERM/SIGINT; resolves once it has stopped. */
export async function runCoordinatorProcess(options: RunCoordinatorOptions): Promise<void> {
  const config = await loadCoordinatorConfig(options);
  const logger = pino({ level: config.logLevel, base: { coordinatorId: config.id } });
  const node = await startCoordinatorNode(config, logger);
  await waitForStopSignal(logger);
  await node.stop();
}

/**
 * The rollouts part of a coordinator, assembled in one place so the coordinator's entry only opens,
 * mounts, starts and stops it: the rollouts bucket, the service behind the admin routes, the
 * routes with their documentation, and the controller that drives rollouts.
 * @module
 */
import type { Logger } from 'pino';
import { DesiredStateStore } from '@infermesh/mesh-client';
import type { MeshConnection } from '@infermesh/mesh-client';
import type { ModelManifest } from '@infermesh/protocols';
import type { AdminRouteModule } from '../admin/coordinator-app.js';
import { DesiredRemoval } from './desired-removal.js';
import { RolloutController } from './rollout-controller.js';
import type { ControllerFleet } from './rollout-controller.js';
import { ROLLOUT_ROUTE_DOCS, rolloutRoutes } from './rollout-routes.js';
import { RolloutService } from './rollout-service.js';
import { RolloutStore } from './rollout-store.js';

/** What {@link openRollouts} needs. */
export interface RolloutsNodeOptions {
  readonly connection: MeshConnection;
  readonly fleet: ControllerFleet;
  readonly manifestOf: (model: string, version: string) => Promise<ModelManifest>;
  readonly coordinatorId: string;
  readonly tickIntervalMs: number;
  readonly leaseTtlMs: number;
  readonly replicas: number;
  readonly logger: Logger;
}

/** The rollouts of one coordinator. */
export interface RolloutsNode {
  readonly service: RolloutService;
  readonly controller: RolloutController;
  /** The admin routes, for the app's `extraRoutes`. */
  readonly routes: AdminRouteModule;
}

/** Opens the stores and builds the service, routes and controller (not started). */
export async function openRollouts(options: RolloutsNodeOptions): Promise<RolloutsNode> {
  const [store, desired, removal] = await Promise.all([
    RolloutStore.open(options.connection, options.replicas),
    DesiredStateStore.open(options.connection, { create: true, replicas: options.replicas }),
    DesiredRemoval.open(options.connection, options.replicas),
  ]);
  const service = new RolloutService({
    store,
    desired,
    fleet: options.fleet,
    manifestOf: options.manifestOf,
    logger: options.logger,
  });
  const controller = new RolloutController({
    store,
    desired,
    removal,
    fleet: options.fleet,
    coordinatorId: options.coordinatorId,
    logger: options.logger,
    tickIntervalMs: options.tickIntervalMs,
    leaseTtlMs: options.leaseTtlMs,
  });
  return {
    service,
    controller,
    routes: { routes: rolloutRoutes({ rollouts: service }), docs: ROLLOUT_ROUTE_DOCS },
  };
}

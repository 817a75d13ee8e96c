/**
 * The coordinator's configuration (`infermesh coordinator`): one zod schema, from a JSON file,
 * `INFERMESH_*` environment variables and flags (see `loadConfig` of `@infermesh/config`).
 * @module
 */
import { z } from 'zod';
import {
  envVarNames,
  loadConfig,
  logLevelSchema,
  natsServersSchema,
  numeric,
  portSchema,
  positiveIntSchema,
  processIdSchema,
  switchSchema,
} from '@infermesh/config';
import type { ConfigSources } from '@infermesh/config';
import { DEFAULT_HTTP_HOST, DEFAULT_SHUTDOWN_TIMEOUT_MS } from './common.js';

export const DEFAULT_COORDINATOR_PORT = 8090;
/** Time a worker has to acknowledge a forwarded request before it is ejected. */
export const DEFAULT_ACK_TIMEOUT_MS = 500;
/** A worker with no load report for this long is gone. */
export const DEFAULT_WORKER_STALE_AFTER_MS = 1_000;
export const DEFAULT_EJECTION_BASE_MS = 1_000;
export const DEFAULT_EJECTION_MAX_MS = 30_000;
/** Outstanding requests per unit of capacity at which a worker counts as saturated. */
export const DEFAULT_MAX_OUTSTANDING_PER_CAPACITY = 256;
/** Time a new router listens to load reports before it takes requests. */
export const DEFAULT_WARMUP_MS = 500;
export const DEFAULT_METADATA_TIMEOUT_MS = 2_000;
/** Largest artifact the registry accepts: 4 GiB. */
export const DEFAULT_MAX_ARTIFACT_BYTES = 4 * 1024 * 1024 * 1024;
/** Shortest admin token accepted (characters): shorter ones are guessable. */
export const MIN_ADMIN_TOKEN_LENGTH = 16;
export const DEFAULT_FLEET_STALE_AFTER_MS = 15_000;
export const DEFAULT_FLEET_OFFLINE_AFTER_MS = 60_000;
/** Time between two steps of the rollout controller. */
export const DEFAULT_ROLLOUT_TICK_INTERVAL_MS = 1_000;
/** Time a coordinator's lease on a rollout lasts without renewal (then another may drive it). */
export const DEFAULT_ROLLOUT_LEASE_TTL_MS = 15_000;

export const coordinatorConfigSchema = z
  .object({
    id: processIdSchema('coordinator'),
    nats: natsServersSchema,
    /** Address and port of the admin/metrics HTTP API. */
    host: z.string().min(1).default(DEFAULT_HTTP_HOST),
    port: portSchema.default(DEFAULT_COORDINATOR_PORT),
    ackTimeoutMs: positiveIntSchema.default(DEFAULT_ACK_TIMEOUT_MS),
    workerStaleAfterMs: positiveIntSchema.default(DEFAULT_WORKER_STALE_AFTER_MS),
    ejectionBaseMs: positiveIntSchema.default(DEFAULT_EJECTION_BASE_MS),
    ejectionMaxMs: positiveIntSchema.default(DEFAULT_EJECTION_MAX_MS),
    maxOutstandingPerCapacity: numeric(z.number().positive()).default(DEFAULT_MAX_OUTSTANDING_PER_CAPACITY),
    warmupMs: numeric(z.number().int().min(0)).default(DEFAULT_WARMUP_MS),
    metadataTimeoutMs: positiveIntSchema.default(DEFAULT_METADATA_TIMEOUT_MS),
    shutdownTimeoutMs: positiveIntSchema.default(DEFAULT_SHUTDOWN_TIMEOUT_MS),
    /**
     * Bearer token of the admin API (`/api/v1/*`). Without one, every admin call is refused with
     * 401: the API is closed until a token is configured.
     */
    adminToken: z.string().min(MIN_ADMIN_TOKEN_LENGTH).optional(),
    /**
     * PEM file of the ed25519 key that signs manifests. Created (mode 0600) with a fresh key when it
     * does not exist; every coordinator replica must use the same file. Without one, the registry
     * serves reads but refuses to create versions.
     */
    publisherKeyFile: z.string().min(1).optional(),
    maxArtifactBytes: positiveIntSchema.default(DEFAULT_MAX_ARTIFACT_BYTES),
    /** JetStream replicas of the registry's buckets when this coordinator creates them. */
    storeReplicas: numeric(z.number().int().min(1).max(5)).default(1),
    /** An agent silent for this long is `stale` in the fleet registry (3 heartbeats by default). */
    fleetStaleAfterMs: positiveIntSchema.default(DEFAULT_FLEET_STALE_AFTER_MS),
    /** An agent silent for this long is `offline`. */
    fleetOfflineAfterMs: positiveIntSchema.default(DEFAULT_FLEET_OFFLINE_AFTER_MS),
    /**
     * Only enrolled agents count (production): heartbeats of agents without a fleet record are
     * dropped, so they are never rollout targets or federated clients. Off by default for
     * development meshes whose agents have configured ids.
     */
    fleetRequireEnrollment: switchSchema.default(false),
    /** Time between two ticks of the rollout controller. */
    rolloutTickIntervalMs: positiveIntSchema.default(DEFAULT_ROLLOUT_TICK_INTERVAL_MS),
    /** Lease of the coordinator driving a rollout; renewed every tick, so well above the tick. */
    rolloutLeaseTtlMs: positiveIntSchema.default(DEFAULT_ROLLOUT_LEASE_TTL_MS),
    /** Lifetime of a federated run's driver lease: a dead driver's run is taken over after it. */
    flLeaseTtlMs: positiveIntSchema.default(10_000),
    /** How often the coordinator looks for federated runs nobody drives. */
    flScanIntervalMs: positiveIntSchema.default(2_000),
    logLevel: logLevelSchema,
  })
  .strict()
  .refine((c) => c.ejectionMaxMs >= c.ejectionBaseMs, {
    message: 'must be at least ejectionBaseMs',
    path: ['ejectionMaxMs'],
  })
  .refine((c) => c.fleetOfflineAfterMs >= c.fleetStaleAfterMs, {
    message: 'must be at least fleetStaleAfterMs',
    path: ['fleetOfflineAfterMs'],
  });

export type CoordinatorConfig = Readonly<z.infer<typeof coordinatorConfigSchema>>;
export type CoordinatorConfigInput = z.input<typeof coordinatorConfigSchema>;

/** Environment variable of each coordinator setting. */
export const COORDINATOR_ENV_VARS = envVarNames(
  Object.keys(coordinatorConfigSchema.shape) as (keyof CoordinatorConfigInput)[],
);

/** Parses the coordinator configuration; INVALID_INPUT lists every invalid field. */
export function loadCoordinatorConfig(
  sources: ConfigSources<CoordinatorConfigInput>,
): Promise<CoordinatorConfig> {
  return loadConfig(coordinatorConfigSchema, 'coordinator', sources);
}

/**
 * The edge agent's configuration: one zod schema, parsed once at start-up from a JSON file, then
 * `INFERMESH_*` environment variables, then command-line flags (each overriding the one before),
 * reporting every invalid field at once. The result is frozen and passed down.
 * @module
 */
import { z } from 'zod';
import { labelsSchema } from '@infermesh/protocols';
import { parsePublicKey } from '@infermesh/mesh-client';
import {
  envVarNames,
  hostnameId,
  listSchema,
  loadConfig,
  logLevelSchema,
  numeric,
  portSchema,
  positiveIntSchema,
  publisherKeySchema,
} from '@infermesh/config';
import type { ConfigSources } from '@infermesh/config';
import { OFFLOAD_POLICIES } from '../offload/route-decision.js';

export const DEFAULT_AGENT_PORT = 8080;
export const DEFAULT_AGENT_HOST = '127.0.0.1';
export const DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024; // 64 MiB
export const DEFAULT_MAX_QUEUE_DEPTH = 256; // requests waiting per model version
export const DEFAULT_BATCH_WINDOW_MS = 0; // 0: batch what queued while the session was busy, never wait
export const DEFAULT_MAX_BATCH_SIZE = 32;
export const DEFAULT_MAX_CONCURRENT_RUNS = 1; // per model version
export const DEFAULT_WATCH_INTERVAL_MS = 500;
export const DEFAULT_SHUTDOWN_TIMEOUT_MS = 10_000;
export const DEFAULT_OFFLOAD_TIMEOUT_MS = 30_000; // deadline of offloaded requests that carry none
export const DEFAULT_HEARTBEAT_INTERVAL_MS = 5_000;
export const DEFAULT_SYNC_KEEP_VERSIONS = 2; // the serving version and the one before it (rollback)
export const DEFAULT_SYNC_IDLE_TIMEOUT_MS = 15_000; // a download receiving nothing this long is retried

/** Labels as an object in the file, or `key=value` pairs separated by commas from flags and environment. */
const labelsSettingSchema = z.preprocess((value) => {
  if (typeof value !== 'string') return value;
  const pairs = value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  const entries = pairs.map((pair): [string, string | undefined] => [
    pair.split('=')[0] ?? '',
    pair.includes('=') ? pair.slice(pair.indexOf('=') + 1) : undefined,
  ]);
  return Object.fromEntries(entries);
}, labelsSchema);

export const DEFAULT_FEEDBACK_MAX_EXAMPLES = 10_000; // labelled examples kept per model

/** Training data files: an object in the file, `model=path` items from flags (or comma-separated in the environment). */
const trainingDataSettingSchema = z.preprocess(
  (value) => {
    const items: unknown = typeof value === 'string' ? value.split(',') : value;
    if (!Array.isArray(items)) return value;
    const entries = (items as unknown[])
      .map((item) => String(item).trim())
      .filter((item) => item !== '')
      .map((item): [string, string] => {
        const at = item.indexOf('=');
        return at < 0 ? [item, ''] : [item.slice(0, at), item.slice(at + 1)];
      });
    return Object.fromEntries(entries);
  },
  z.record(
    z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/, 'a model name'),
    z.string().min(1, 'a file path'),
  ),
);

export const agentConfigSchema = z
  .object({
    /** Agent id: names this device in the fleet and in response parameters. */
    id: z
      .string()
      .regex(/^[A-Za-z0-9_-]{1,64}$/, 'letters, digits, "_" and "-" only (1-64 characters)')
      .default(() => hostnameId('agent')),
    host: z.string().min(1).default(DEFAULT_AGENT_HOST),
    port: portSchema.default(DEFAULT_AGENT_PORT),
    /** Directory of models: <modelsDir>/<name>/<version>/model.onnx (+ manifest.json). */
    modelsDir: z.string().min(1).default('./models'),
    /** NATS server URL for offload to the cloud; without it every request is served locally. */
    nats: z.string().url().optional(),
    /** Offload policy of models whose manifest and request name none (DESIGN.md section 5). */
    defaultOffloadPolicy: z.enum(OFFLOAD_POLICIES).default('auto'),
    offloadTimeoutMs: positiveIntSchema.default(DEFAULT_OFFLOAD_TIMEOUT_MS),
    /** When set, every request except health checks must carry it (Authorization: Bearer, or X-API-Key). */
    apiKey: z.string().min(8, 'at least 8 characters').optional(),
    maxBodyBytes: positiveIntSchema.default(DEFAULT_MAX_BODY_BYTES),
    maxQueueDepth: positiveIntSchema.default(DEFAULT_MAX_QUEUE_DEPTH),
    batchWindowMs: numeric(z.number().min(0).max(1_000)).default(DEFAULT_BATCH_WINDOW_MS),
    maxBatchSize: positiveIntSchema.default(DEFAULT_MAX_BATCH_SIZE),
    maxConcurrentRuns: positiveIntSchema.default(DEFAULT_MAX_CONCURRENT_RUNS),
    /** ONNX Runtime intra-op threads per session; 0 lets ONNX Runtime choose. */
    intraOpThreads: numeric(z.number().int().min(0)).default(0),
    backend: z.enum(['native', 'wasm']).default('native'),
    watchIntervalMs: positiveIntSchema.default(DEFAULT_WATCH_INTERVAL_MS),
    shutdownTimeoutMs: positiveIntSchema.default(DEFAULT_SHUTDOWN_TIMEOUT_MS),
    /**
     * Publisher keys whose signed manifests the agent accepts when it syncs models from the registry
     * (with `nats`): base64 of the raw ed25519 key or PEM. With none, every registry version is refused.
     */
    trustedPublisherKeys: listSchema(publisherKeySchema(parsePublicKey)).default([]),
    /** How often the agent publishes its heartbeat (with `nats`). */
    heartbeatIntervalMs: positiveIntSchema.default(DEFAULT_HEARTBEAT_INTERVAL_MS),
    /** Synced versions kept per model: the serving one and the most recent others (1: no rollback copy). */
    syncKeepVersions: positiveIntSchema.default(DEFAULT_SYNC_KEEP_VERSIONS),
    /** A model download that receives nothing for this long is abandoned and resumed (ms). */
    syncIdleTimeoutMs: positiveIntSchema.default(DEFAULT_SYNC_IDLE_TIMEOUT_MS),
    logLevel: logLevelSchema,
    /**
     * One-time enrollment token (`infermesh tokens create`): on first start the agent enrolls with
     * it and is known by the enrolled id and labels from then on (with `nats`). Unused once enrolled.
     */
    enrollToken: z.string().min(1).max(256).optional(),
    /** The agent's key pair and enrolled id (mode 0600); default `<modelsDir>/../identity.json`. */
    identityFile: z.string().min(1).optional(),
    /** Labels reported in heartbeats (`site=x,hw=y`); enrolled labels replace the same keys. */
    labels: labelsSettingSchema.default({}),
    /** Where `POST /v1/feedback` keeps labelled examples, one JSONL file per model; default `<modelsDir>/.feedback`. */
    feedbackDir: z.string().min(1).optional(),
    /** Labelled examples kept per model; past it the oldest are dropped. */
    feedbackMaxExamples: positiveIntSchema.default(DEFAULT_FEEDBACK_MAX_EXAMPLES),
    /** Local labelled-example files (JSONL) per model for federated training: `{ "spam": "/data/spam.jsonl" }`. */
    trainingData: trainingDataSettingSchema.default({}),
  })
  .strict();

export type AgentConfig = Readonly<z.infer<typeof agentConfigSchema>>;
export type AgentConfigInput = z.input<typeof agentConfigSchema>;

/** Environment variable of each field: INFERMESH_ + the field in SCREAMING_SNAKE_CASE. */
export const AGENT_ENV_VARS = envVarNames(Object.keys(agentConfigSchema.shape) as (keyof AgentConfigInput)[]);

/** Where the agent's settings come from: a JSON file, `INFERMESH_*` variables and flags. */
export type LoadAgentConfigOptions = ConfigSources<AgentConfigInput>;

/**
 * Builds the agent config from file < environment < flags, validating the merged result once.
 * Throws INVALID_INPUT listing every invalid field, with where it came from.
 */
export function loadAgentConfig(options: LoadAgentConfigOptions = {}): Promise<AgentConfig> {
  return loadConfig(agentConfigSchema, 'agent', options);
}

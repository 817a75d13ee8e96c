/**
 * A rollout's per-agent entries (see `rollout.ts`): each target agent's state, its desired value
 * before the rollout (to restore it), and its counters when a bake began. They live in chunks of
 * {@link ROLLOUT_AGENT_CHUNK_SIZE} under `rolloutAgentChunkKey(id, n)`, never in the rollout record,
 * so every KV value stays bounded whatever the fleet size; the API pages them.
 * @module
 */
import { z } from 'zod';
import { desiredModelSchema } from './registry.js';
import { modelVersionSchema } from './model-ref.js';
import { epochMsSchema } from './primitives.js';
import { rolloutAgentStateSchema, rolloutIdSchema } from './rollout.js';

/** Agents per chunk of a rollout's agent entries (each chunk stays far below NATS' 1 MB payload). */
export const ROLLOUT_AGENT_CHUNK_SIZE = 100;

/** Counters of the rolled-out version on one agent when its bake began. */
export const counterSnapshotSchema = z.object({
  version: modelVersionSchema,
  requests: z.number().int().nonnegative(),
  errors: z.number().int().nonnegative(),
});
export type CounterSnapshot = z.infer<typeof counterSnapshotSchema>;

/** One target agent of a rollout. */
export const rolloutAgentSchema = z.object({
  agentId: z.string(),
  /** Index of the step that covers it. */
  step: z.number().int().nonnegative(),
  state: rolloutAgentStateSchema,
  /** Its desired value before the rollout wrote it (null: none), once captured. */
  previous: desiredModelSchema.nullable().optional(),
  /** True once `previous` is captured (null is a captured "none"). */
  captured: z.boolean().default(false),
  appliedAt: epochMsSchema.optional(),
  /** Why it failed or was skipped. */
  reason: z.string().max(1024).optional(),
  /** Counters at the start of the current bake (also kept for the rest). */
  baseline: counterSnapshotSchema.optional(),
});
export type RolloutAgent = z.infer<typeof rolloutAgentSchema>;

/** A chunk of a rollout's target agents, stored under `rolloutAgentChunkKey(rolloutId, chunk)`. */
export const rolloutAgentChunkSchema = z.object({
  rolloutId: rolloutIdSchema,
  chunk: z.number().int().nonnegative(),
  /** The step all its agents belong to. */
  step: z.number().int().nonnegative(),
  agents: z.array(rolloutAgentSchema).max(ROLLOUT_AGENT_CHUNK_SIZE),
});
export type RolloutAgentChunk = z.infer<typeof rolloutAgentChunkSchema>;

/** Largest page of `GET /api/v1/rollouts/{id}/agents`. */
export const MAX_ROLLOUT_AGENT_PAGE = 1_000;

/** Query of `GET /api/v1/rollouts/{id}/agents`: `cursor` from the previous page, `limit`, `step`. */
export const rolloutAgentPageQuerySchema = z
  .object({
    /** Opaque: the previous page's `nextCursor` (absent: from the first agent). */
    cursor: z
      .string()
      .regex(/^\d{1,9}:\d{1,4}$/, "must be a cursor from a previous page's nextCursor")
      .optional(),
    limit: z.coerce.number().int().min(1).max(MAX_ROLLOUT_AGENT_PAGE).default(100),
    /** Only the agents of this step. */
    step: z.coerce.number().int().nonnegative().optional(),
  })
  .strict();
export type RolloutAgentPageQuery = z.output<typeof rolloutAgentPageQuerySchema>;

/** `GET /api/v1/rollouts/{id}/agents`: agents in rollout order; `nextCursor` absent on the last page. */
export const rolloutAgentPageSchema = z.object({
  agents: z.array(rolloutAgentSchema),
  nextCursor: z.string().optional(),
});
export type RolloutAgentPage = z.infer<typeof rolloutAgentPageSchema>;

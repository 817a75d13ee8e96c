/**
 * Rollout contracts (DESIGN.md section 8): moving one model version across the agents a label
 * selector picks, through a canary cohort and waves, with a bake and health gates per step and an
 * automatic rollback.
 *
 * Storage layout, for everyone who reads it directly:
 * - `rolloutsBucket()` (KV): key `rolloutKey(id)` = `rollout.<id>`, value a {@link Rollout} (JSON),
 *   written only with compare-and-set on the revision (the API and the driving coordinator both
 *   write it). It holds the spec, state, steps with per-state counts, and bounded lists only (events,
 *   skipped agents, gate reasons), so its size does not grow with the fleet. The target agents live
 *   in chunks of at most `ROLLOUT_AGENT_CHUNK_SIZE` (`rollout-agents.ts`): key `rolloutAgentChunkKey(id, n)` =
 *   `rollout.<id>.agents.<n>`, value a {@link RolloutAgentChunk} (JSON), written only by the driver
 *   with compare-and-set on the chunk's revision, after checking the record is still at the revision
 *   it drives from (a takeover or an operator's change stops an old driver at the next chunk). Each
 *   chunk holds agents of one step; step `i` owns chunks `firstChunk .. firstChunk + chunkCount - 1`.
 *   Key `rolloutLeaseKey(id)` = `lease.<id>`, value a `Lease` (JSON, `lease.ts`): the
 *   coordinator instance that drives the rollout, until `expiresAt` unless it renews; key
 *   `rolloutActiveKey(model)` = `active.<model>`, value an {@link ActiveRolloutClaim} (JSON): the one
 *   live rollout of the model, created with compare-and-set when it starts (or a rollback of a
 *   finished one makes it live again) and deleted when it ends. A claim naming a rollout that is
 *   final, or that was never stored within {@link ACTIVE_CLAIM_STALE_MS}, is free to replace.
 * - Desired state: the rollout writes `desiredModelKey(agent, model)` with `source: 'rollout'` and
 *   `setBy: rolloutSetBy(id)`, only where the key is absent or holds another `rollout` value, and
 *   keeps each touched agent's previous value in its {@link RolloutAgent} entry (in its chunk) to
 *   restore it; a rollback restores or removes only with compare-and-set on the revision it read.
 *
 * Rules the controller follows (see `cloud-coordinator/src/rollout/`):
 * - Targets are the agents matching the selector at start that are online or stale (not offline,
 *   not unknown); agents pinned to any version of the model are skipped and listed.
 * - The canary is `canaryPercent` of the targets (at least one agent); each wave's percent is
 *   cumulative (`[25, 50, 100]`: a quarter, then half, then all); empty steps are dropped.
 * - A step writes its cohort's desired state, waits until every agent of the cohort serves the
 *   version (`readyTimeoutMs`: then it pauses), bakes for `bakeMs`, then evaluates the gates.
 * - Gates: any failed load in the cohort (a refusal, a failed self-test) fails at once; the
 *   cohort's error rate over the bake (errors / (requests + errors), from heartbeat counter deltas)
 *   fails when above `maxErrorRate`, unless the rest saw enough traffic (100 requests, or
 *   `minRequests` when higher) at a rate within `maxErrorRate` of the cohort's (a fleet-wide rise
 *   excuses the cohort, a quiet rest does not); its p95 latency fails when above
 *   `maxP95Ms`. Fewer than `minRequests` in the cohort: the bake goes on up to `maxBakeMs`, then the
 *   rollout pauses. A failed gate rolls back (or pauses, with `onGateFailure: 'pause'`).
 * - The p95 gate's samples (request-weighted heartbeat p95s) are folded into the step's
 *   `bakeLatency` as the bake goes, so a coordinator taking over mid-bake judges the whole bake.
 * @module
 */
import { z } from 'zod';
import { modelNameSchema, modelVersionSchema } from './model-ref.js';
import { epochMsSchema, labelsSchema } from './primitives.js';

/** Longest history of events kept in a rollout record (the oldest are dropped). */
export const MAX_ROLLOUT_EVENTS = 100;
/** Longest event message kept in a rollout record (longer ones are cut). */
export const MAX_ROLLOUT_EVENT_MESSAGE = 512;
/** Skipped agents listed by name in a rollout record (`skippedTotal` counts them all). */
export const MAX_LISTED_SKIPPED = 100;
/** Failed loads and reasons a gate evaluation lists by name (the counts are whole). */
export const MAX_GATE_LISTED = 20;

/** A rollout id: `ro-` and lowercase letters and digits; usable as a KV key token. */
export const rolloutIdSchema = z
  .string()
  .regex(/^ro-[a-z0-9]{6,40}$/, "must be 'ro-' followed by 6-40 lowercase letters or digits");

/** `setBy` of the desired values a rollout writes. */
export function rolloutSetBy(id: string): string {
  return `rollout:${id}`;
}

/** A percentage of the targets, above 0 and at most 100. */
const percentSchema = z.number().gt(0).max(100);

/** What happens when a gate fails. */
export const GATE_FAILURE_ACTIONS = ['rollback', 'pause'] as const;
export const gateFailureActionSchema = z.enum(GATE_FAILURE_ACTIONS);
export type GateFailureAction = z.infer<typeof gateFailureActionSchema>;

/** Defaults of a create request. */
export const ROLLOUT_DEFAULTS = {
  canaryPercent: 5,
  waves: [25, 50, 100],
  /** 10 minutes. */
  bakeMs: 600_000,
  maxErrorRate: 0.01,
  minRequests: 0,
  /** 10 minutes. */
  readyTimeoutMs: 600_000,
  onGateFailure: 'rollback',
} as const;

/** `POST /api/v1/rollouts`. */
export const createRolloutRequestSchema = z
  .object({
    model: modelNameSchema,
    version: modelVersionSchema,
    /** Labels every target must carry (empty: every agent). */
    selector: labelsSchema.default({}),
    canaryPercent: percentSchema.default(ROLLOUT_DEFAULTS.canaryPercent),
    /** Cumulative percentages after the canary, strictly increasing, the last one 100. */
    waves: z
      .array(percentSchema)
      .min(1)
      .max(20)
      .default([...ROLLOUT_DEFAULTS.waves])
      .refine((w) => w.every((p, i) => i === 0 || p > (w[i - 1] as number)), 'must be strictly increasing')
      .refine((w) => w.at(-1) === 100, 'must end with 100'),
    /** Time each step bakes once its cohort serves the version, ms. */
    bakeMs: z
      .number()
      .int()
      .min(0)
      .max(7 * 24 * 3_600_000)
      .default(ROLLOUT_DEFAULTS.bakeMs),
    /** Longest bake while the cohort has fewer than `minRequests` (default 3 x bakeMs), ms. */
    maxBakeMs: z
      .number()
      .int()
      .min(0)
      .max(7 * 24 * 3_600_000)
      .optional(),
    /** Highest error rate (0..1) of the cohort over the bake. */
    maxErrorRate: z.number().min(0).max(1).default(ROLLOUT_DEFAULTS.maxErrorRate),
    /** Highest p95 latency of the cohort over the bake, ms (no latency gate when absent). */
    maxP95Ms: z.number().positive().optional(),
    /** Requests (successful and failed) the cohort must see during a bake before it is judged. */
    minRequests: z.number().int().min(0).default(ROLLOUT_DEFAULTS.minRequests),
    /** Time a cohort has to serve the version before the rollout pauses, ms. */
    readyTimeoutMs: z
      .number()
      .int()
      .positive()
      .max(24 * 3_600_000)
      .default(ROLLOUT_DEFAULTS.readyTimeoutMs),
    onGateFailure: gateFailureActionSchema.default(ROLLOUT_DEFAULTS.onGateFailure),
  })
  .strict()
  .refine((r) => r.maxBakeMs === undefined || r.maxBakeMs >= r.bakeMs, {
    message: 'must be at least bakeMs',
    path: ['maxBakeMs'],
  });
export type CreateRolloutRequest = z.input<typeof createRolloutRequestSchema>;
/** A create request with its defaults filled: the spec a rollout runs by. */
export type RolloutSpec = z.output<typeof createRolloutRequestSchema>;
export const rolloutSpecSchema = createRolloutRequestSchema;

/** Where a rollout stands. `running` and `paused` are live; the others are final. */
export const ROLLOUT_STATES = ['running', 'paused', 'succeeded', 'rolled_back', 'aborted', 'failed'] as const;
export const rolloutStateSchema = z.enum(ROLLOUT_STATES);
export type RolloutState = z.infer<typeof rolloutStateSchema>;

/** True for the states a rollout never leaves. */
export function isFinalRolloutState(state: RolloutState): boolean {
  return state !== 'running' && state !== 'paused';
}

/**
 * Where the current step stands: `applying` (writing the cohort's desired state), `waiting_ready`
 * (until the cohort serves the version), `baking`, `rolling_back` (restoring every touched agent),
 * `done`.
 */
export const ROLLOUT_PHASES = ['applying', 'waiting_ready', 'baking', 'rolling_back', 'done'] as const;
export const rolloutPhaseSchema = z.enum(ROLLOUT_PHASES);
export type RolloutPhase = z.infer<typeof rolloutPhaseSchema>;

/**
 * Latency of a group of agents over part of a bake: the request-weighted mean of the heartbeats'
 * p95 and the requests it weighs. Two of them fold into one without losing the weighted mean.
 */
export const latencyTotalSchema = z.object({
  p95Ms: z.number().nonnegative(),
  requests: z.number().int().nonnegative(),
});
export type LatencyTotal = z.infer<typeof latencyTotalSchema>;

/** What the p95 gate saw of the current bake so far, saved by the driver as the bake goes. */
export const bakeLatencySchema = z.object({
  cohort: latencyTotalSchema,
  rest: latencyTotalSchema,
  /** When the driver last folded its samples in. */
  savedAt: epochMsSchema,
});
export type BakeLatency = z.infer<typeof bakeLatencySchema>;

/**
 * One target agent's state: `pending` (not written yet), `applied` (desired state names the version),
 * `ready` (serves it), `failed` (refused it or failed its self-test), `restored` (rolled back),
 * `skipped` (pinned meanwhile, left alone).
 */
export const ROLLOUT_AGENT_STATES = ['pending', 'applied', 'ready', 'failed', 'restored', 'skipped'] as const;
export const rolloutAgentStateSchema = z.enum(ROLLOUT_AGENT_STATES);
export type RolloutAgentState = z.infer<typeof rolloutAgentStateSchema>;

/** How many agents of a step (or a rollout) are in each state. */
export const rolloutAgentCountsSchema = z.object({
  pending: z.number().int().nonnegative(),
  applied: z.number().int().nonnegative(),
  ready: z.number().int().nonnegative(),
  failed: z.number().int().nonnegative(),
  restored: z.number().int().nonnegative(),
  skipped: z.number().int().nonnegative(),
});
export type RolloutAgentCounts = z.infer<typeof rolloutAgentCountsSchema>;

/** Counts of `agents` by state. */
export function countRolloutAgents(agents: readonly { state: RolloutAgentState }[]): RolloutAgentCounts {
  const counts: RolloutAgentCounts = { pending: 0, applied: 0, ready: 0, failed: 0, restored: 0, skipped: 0 };
  for (const agent of agents) counts[agent.state] += 1;
  return counts;
}

/** One step: the canary (index 0) or a wave. */
export const rolloutStepSchema = z.object({
  /** `canary` or `wave`. */
  kind: z.enum(['canary', 'wave']),
  /** Cumulative percent of the targets once this step is done. */
  percent: z.number(),
  /** How many agents this step adds. */
  agents: z.number().int().nonnegative(),
  /** Its agents' states, as the driver last counted them. */
  counts: rolloutAgentCountsSchema,
  /** The first of its agent chunks (`rolloutAgentChunkKey(id, n)`). */
  firstChunk: z.number().int().nonnegative(),
  chunkCount: z.number().int().nonnegative(),
  startedAt: epochMsSchema.optional(),
  readyAt: epochMsSchema.optional(),
  bakeStartedAt: epochMsSchema.optional(),
  passedAt: epochMsSchema.optional(),
  /** Latency samples of the current bake saved so far (absent before any). */
  bakeLatency: bakeLatencySchema.optional(),
});
export type RolloutStep = z.infer<typeof rolloutStepSchema>;

/** Health of one group of agents over a bake. */
export const cohortHealthSchema = z.object({
  agents: z.number().int().nonnegative(),
  requests: z.number().int().nonnegative(),
  errors: z.number().int().nonnegative(),
  /** errors / (requests + errors); absent without traffic. */
  errorRate: z.number().optional(),
  /** Request-weighted mean of the heartbeats' p95 over the bake, ms. */
  p95Ms: z.number().optional(),
  /** Agents whose load failed (the first {@link MAX_GATE_LISTED} in a stored evaluation). */
  failedLoads: z.array(z.string()),
  /** How many agents' load failed, when more than are listed. */
  failedLoadCount: z.number().int().nonnegative().optional(),
});
export type CohortHealth = z.infer<typeof cohortHealthSchema>;

/** Outcome of one gate evaluation: `pass`, `fail`, or `wait` (too little traffic yet). */
export const gateEvaluationSchema = z.object({
  step: z.number().int().nonnegative(),
  at: epochMsSchema,
  verdict: z.enum(['pass', 'fail', 'wait']),
  /** Why it failed or waits, one line each. */
  reasons: z.array(z.string()),
  cohort: cohortHealthSchema,
  rest: cohortHealthSchema,
});
export type GateEvaluation = z.infer<typeof gateEvaluationSchema>;

/** One entry of a rollout's history. */
export const rolloutEventSchema = z.object({
  at: epochMsSchema,
  /** `created`, `driver`, `step.applied`, `step.ready`, `step.baking`, `gate`, `paused`, ... */
  type: z.string().min(1).max(64),
  message: z.string().max(2048),
  /** The step it concerns. */
  step: z.number().int().optional(),
  /** The coordinator instance that wrote it (absent for API calls). */
  driver: z.string().max(256).optional(),
  /** The operator, for API calls. */
  actor: z.string().max(256).optional(),
  /** Facts about it (a takeover's previous holder and when its lease expired, ...). */
  details: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).optional(),
});
export type RolloutEvent = z.infer<typeof rolloutEventSchema>;

/** A rollout as stored under `rolloutKey(id)`. */
export const rolloutSchema = z.object({
  id: rolloutIdSchema,
  spec: rolloutSpecSchema,
  state: rolloutStateSchema,
  /** Why it is paused, failed, rolled back or aborted. */
  reason: z.string().max(2048).optional(),
  /** Index into `steps`. */
  step: z.number().int().nonnegative(),
  phase: rolloutPhaseSchema,
  steps: z.array(rolloutStepSchema),
  /** Target agents (all steps); each one's entry is in the agent chunks. */
  targets: z.number().int().nonnegative(),
  /**
   * Agents matching the selector that were left out, with why (`pinned to 2`, `offline`): the
   * first {@link MAX_LISTED_SKIPPED}; `skippedTotal` counts them all.
   */
  skipped: z.array(z.object({ agentId: z.string(), reason: z.string().max(256) })),
  skippedTotal: z.number().int().nonnegative(),
  lastGate: gateEvaluationSchema.optional(),
  events: z.array(rolloutEventSchema),
  /** The coordinator instance driving it now (set by whoever holds the lease). */
  driver: z.string().max(256).optional(),
  createdBy: z.string().min(1).max(256),
  createdAt: epochMsSchema,
  updatedAt: epochMsSchema,
  finishedAt: epochMsSchema.optional(),
});
export type Rollout = z.infer<typeof rolloutSchema>;

/** A claim older than this whose rollout record does not exist is left over from a failed start. */
export const ACTIVE_CLAIM_STALE_MS = 30_000;

/** The value under `rolloutActiveKey(model)`: the model's one live rollout. */
export const activeRolloutClaimSchema = z.object({
  rolloutId: rolloutIdSchema,
  claimedAt: epochMsSchema,
});
export type ActiveRolloutClaim = z.infer<typeof activeRolloutClaimSchema>;

/** One row of `GET /api/v1/rollouts`. */
export const rolloutSummarySchema = z.object({
  id: rolloutIdSchema,
  model: modelNameSchema,
  version: modelVersionSchema,
  state: rolloutStateSchema,
  phase: rolloutPhaseSchema,
  step: z.number().int().nonnegative(),
  steps: z.number().int().nonnegative(),
  /** Agents serving the version / targets. */
  ready: z.number().int().nonnegative(),
  targets: z.number().int().nonnegative(),
  reason: z.string().optional(),
  createdBy: z.string(),
  createdAt: epochMsSchema,
  updatedAt: epochMsSchema,
});
export type RolloutSummary = z.infer<typeof rolloutSummarySchema>;

/** `GET /api/v1/rollouts`: newest first. */
export const rolloutListSchema = z.object({ rollouts: z.array(rolloutSummarySchema) });
export type RolloutList = z.infer<typeof rolloutListSchema>;

/** Counts of every step summed: where the rollout's agents stand. */
export function rolloutCounts(rollout: Pick<Rollout, 'steps'>): RolloutAgentCounts {
  const total: RolloutAgentCounts = { pending: 0, applied: 0, ready: 0, failed: 0, restored: 0, skipped: 0 };
  for (const step of rollout.steps) {
    for (const state of ROLLOUT_AGENT_STATES) total[state] += step.counts[state];
  }
  return total;
}

/** The summary row of a rollout. */
export function summarizeRollout(rollout: Rollout): RolloutSummary {
  return {
    id: rollout.id,
    model: rollout.spec.model,
    version: rollout.spec.version,
    state: rollout.state,
    phase: rollout.phase,
    step: rollout.step,
    steps: rollout.steps.length,
    ready: rolloutCounts(rollout).ready,
    targets: rollout.targets,
    ...(rollout.reason !== undefined ? { reason: rollout.reason } : {}),
    createdBy: rollout.createdBy,
    createdAt: rollout.createdAt,
    updatedAt: rollout.updatedAt,
  };
}

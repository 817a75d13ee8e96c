/**
 * Federated training runs as the operator sees them (DESIGN.md section 9): the start request of
 * `POST /api/v1/fl/runs`, and the run record the coordinator keeps in `roundsBucket()` (settings,
 * state, the round in progress and a bounded summary of the closed rounds), each closed round's
 * full record (its own key), and the run as the API answers it (the record with its last rounds in
 * full). The per-round wire messages (task, update, secure aggregation) are in `federated.ts`.
 * @module
 */
import { z } from 'zod';
import { flHyperparametersSchema, flPrivacySchema } from './federated.js';
import { labelledExampleSchema } from './feedback.js';
import { modelNameSchema, modelVersionSchema } from './model-ref.js';
import { epochMsSchema, idSchema, sha256HexSchema } from './primitives.js';

/** Most held-out examples one run may carry. */
export const MAX_FL_HELDOUT_EXAMPLES = 50_000;
/** Most rounds of one run. */
export const MAX_FL_ROUNDS = 10_000;
/** Most clients of one round. */
export const MAX_FL_CLIENTS_PER_ROUND = 10_000;
/** Refused updates a round record lists (the rest are only counted): anyone can publish junk. */
export const MAX_FL_REJECTED_LISTED = 100;
/** Closed rounds summed up in the run record (each round's full record has its own key). */
export const FL_RECENT_ROUNDS = 100;
/** Closed rounds `GET /api/v1/fl/runs/{id}` answers in full (the newest). */
export const FL_RUN_DETAIL_ROUNDS = 20;

/** Hyper-parameters with defaults for a start request. */
const startHyperparametersSchema = flHyperparametersSchema.extend({
  localEpochs: flHyperparametersSchema.shape.localEpochs.default(1),
  batchSize: flHyperparametersSchema.shape.batchSize.default(32),
  learningRate: flHyperparametersSchema.shape.learningRate.default(0.1),
});

/** `POST /api/v1/fl/runs`: start a federated training run. */
export const flRunStartRequestSchema = z
  .object({
    model: modelNameSchema,
    /** The version whose graph and weights training starts from; the latest when absent. */
    baseVersion: modelVersionSchema.optional(),
    rounds: z.number().int().min(1).max(MAX_FL_ROUNDS),
    clientsPerRound: z.number().int().min(1).max(MAX_FL_CLIENTS_PER_ROUND),
    /** Fewest accepted clients a round needs; fewer -> the round is retried, then the run fails. */
    minClients: z.number().int().min(1).default(1),
    /** How long clients have to train and publish (ms). */
    roundTimeoutMs: z.number().int().min(500).max(86_400_000).default(60_000),
    /** A strategy name as `createStrategy` takes it (`fedavg`, `krum`, ...). */
    strategy: z.string().min(1).max(64).default('fedavg'),
    /** Options of the strategy, named as in `@infermesh/federated` (`f`, `beta`, `eta`, ...). */
    strategyOptions: z.record(z.string().min(1).max(64), z.number()).default({}),
    hyperparameters: startHyperparametersSchema.default({
      localEpochs: 1,
      batchSize: 32,
      learningRate: 0.1,
      proximalMu: 0,
    }),
    privacy: flPrivacySchema.optional(),
    /** Secure aggregation (linear strategies only). */
    secure: z.boolean().default(false),
    /** The operator's held-out examples: every round's global model is evaluated on them. */
    evaluationExamples: z.array(labelledExampleSchema).min(1).max(MAX_FL_HELDOUT_EXAMPLES),
    /** Version name of the trained model; `<baseVersion>-fl-<n>` when absent. */
    resultVersion: modelVersionSchema.optional(),
    /** Seeds client selection and the clients' shuffling. */
    seed: z.number().int().nonnegative().max(0xffffffff).optional(),
  })
  .strict()
  .refine((r) => r.minClients <= r.clientsPerRound, {
    message: 'minClients must not exceed clientsPerRound',
    path: ['minClients'],
  });
export type FlRunStartRequest = z.input<typeof flRunStartRequestSchema>;
export type FlRunStartRequestParsed = z.output<typeof flRunStartRequestSchema>;

/** `POST /api/v1/fl/runs/{id}/stop`. */
export const flRunStopRequestSchema = z
  .object({
    /** Register a version with the weights of the last closed round. */
    register: z.boolean().default(false),
  })
  .strict();
export type FlRunStopRequest = z.input<typeof flRunStopRequestSchema>;

export const FL_RUN_STATES = ['running', 'stopping', 'succeeded', 'failed', 'stopped'] as const;
export const flRunStateSchema = z.enum(FL_RUN_STATES);
export type FlRunState = z.infer<typeof flRunStateSchema>;

/** The global model's quality on the held-out data. */
export const flEvaluationSchema = z.object({
  accuracy: z.number().min(0).max(1),
  /** Mean cross-entropy of the predicted probabilities (absent without a probabilities output). */
  loss: z.number().nonnegative().optional(),
  examples: z.number().int().nonnegative(),
});
export type FlEvaluation = z.infer<typeof flEvaluationSchema>;

/** An update the aggregator refused, and why. */
export const flRejectedUpdateSchema = z.object({
  agentId: z.string().max(256),
  reason: z.string().max(512),
});

/** One closed round. */
export const flRoundRecordSchema = z.object({
  round: z.number().int().min(1),
  roundId: idSchema,
  /** Attempts this round took (a round with too few acceptances is retried). */
  attempts: z.number().int().min(1),
  selected: z.array(idSchema),
  accepted: z.array(idSchema),
  /** Agents whose valid update arrived by the deadline and was aggregated. */
  received: z.array(idSchema),
  /** Accepted agents with no valid update by the deadline (stragglers). */
  dropped: z.array(idSchema),
  /** The first {@link MAX_FL_REJECTED_LISTED} refused updates. */
  rejected: z.array(flRejectedUpdateSchema).max(MAX_FL_REJECTED_LISTED),
  /** Every refused update, listed or not (absent in records written before the cap). */
  rejectedCount: z.number().int().nonnegative().optional(),
  /** L2 norm of (new global - old global). */
  updateNorm: z.number().nonnegative(),
  /** Mean of the clients' reported training loss. */
  meanTrainLoss: z.number().nonnegative().optional(),
  /** Secure rounds: how the key exchange went (`received` are the survivors whose sum was unmasked). */
  secure: z
    .object({
      /** t: shares needed to unmask. */
      threshold: z.number().int().min(2),
      /** Clients that advertised keys (the roster). */
      roster: z.number().int().nonnegative(),
      /** Clients that shared keys: the masks were built among them. */
      shared: z.number().int().nonnegative(),
      /** Clients that shared keys but sent no masked update: their masks were recovered from shares. */
      recovered: z.array(idSchema),
    })
    .optional(),
  /** Server-side DP: the clip norm C the round used, C for the next round (adaptive), the noise σ. */
  privacy: z
    .object({
      clipNorm: z.number().positive(),
      nextClipNorm: z.number().positive(),
      /** Updates whose delta norm was <= clipNorm (the adaptive rule's count, before its noise). */
      belowClipCount: z.number().int().nonnegative(),
      /** σ of the Gaussian noise added to each coordinate of the mean delta. */
      noiseStddev: z.number().nonnegative(),
    })
    .optional(),
  evaluation: flEvaluationSchema.optional(),
  startedAt: epochMsSchema,
  closedAt: epochMsSchema,
  durationsMs: z.object({
    tasks: z.number().nonnegative(),
    collect: z.number().nonnegative(),
    aggregate: z.number().nonnegative(),
    evaluate: z.number().nonnegative(),
  }),
});
export type FlRoundRecord = z.infer<typeof flRoundRecordSchema>;

/**
 * One closed round in a few numbers, independent of the number of clients: what the run record
 * keeps of its last {@link FL_RECENT_ROUNDS} rounds (the CLI's progress view).
 */
export const flRoundSummarySchema = z.object({
  round: z.number().int().min(1),
  roundId: idSchema,
  attempts: z.number().int().min(1),
  selected: z.number().int().nonnegative(),
  accepted: z.number().int().nonnegative(),
  received: z.number().int().nonnegative(),
  dropped: z.number().int().nonnegative(),
  rejected: z.number().int().nonnegative(),
  updateNorm: z.number().nonnegative(),
  meanTrainLoss: z.number().nonnegative().optional(),
  evaluation: flEvaluationSchema.optional(),
  startedAt: epochMsSchema,
  closedAt: epochMsSchema,
});
export type FlRoundSummary = z.infer<typeof flRoundSummarySchema>;

/** The round in progress: enough for another coordinator to finish it after a restart. */
export const flRoundInProgressSchema = z.object({
  round: z.number().int().min(1),
  roundId: idSchema,
  attempt: z.number().int().min(1),
  selected: z.array(idSchema),
  accepted: z.array(idSchema),
  /**
   * The example count each accepting agent announced in its task reply: its update may not claim
   * more (absent in records written before the check).
   */
  acceptedExamples: z.record(z.string(), z.number().int().nonnegative()).optional(),
  /**
   * `tasking` (tasks being sent), `collecting` (waiting for updates), `failed` (the attempt did
   * not close; the next one starts afresh).
   */
  phase: z.enum(['tasking', 'collecting', 'failed']),
  /** Why the attempt failed. */
  failure: z.string().max(1024).optional(),
  deadlineAt: epochMsSchema,
  startedAt: epochMsSchema,
  tasksMs: z.number().nonnegative().default(0),
});
export type FlRoundInProgress = z.infer<typeof flRoundInProgressSchema>;

/**
 * A run as stored in `roundsBucket()` under `run.<id>`: its settings, state, the round in progress
 * and a bounded summary of the closed rounds, so the record stays small whatever the number of
 * rounds and clients. Each closed round's full record has its own key (`flRunRoundKey`), written
 * before `roundsDone` counts it.
 */
export const flRunRecordSchema = z.object({
  id: idSchema,
  model: modelNameSchema,
  baseVersion: modelVersionSchema,
  rounds: z.number().int().min(1),
  clientsPerRound: z.number().int().min(1),
  minClients: z.number().int().min(1),
  roundTimeoutMs: z.number().int().positive(),
  strategy: z.string(),
  strategyOptions: z.record(z.string(), z.number()),
  hyperparameters: flHyperparametersSchema,
  privacy: flPrivacySchema.optional(),
  secure: z.boolean(),
  seed: z.number().int().nonnegative(),
  /** The held-out examples, as JSON lines in the artifacts object store. */
  evaluationData: z.object({ sha256: sha256HexSchema, examples: z.number().int().min(1) }),
  resultVersion: modelVersionSchema,
  /** The trainable initializers, in task order. */
  trainable: z.array(z.string()),
  state: flRunStateSchema,
  /** Register a version when the run is stopped early. */
  registerOnStop: z.boolean().default(false),
  createdBy: z.string(),
  createdAt: epochMsSchema,
  updatedAt: epochMsSchema,
  finishedAt: epochMsSchema.optional(),
  /** The coordinator driving the run (the lease holder when it last wrote). */
  driver: z.string().optional(),
  /** The base version's quality on the held-out data, before any round. */
  baseline: flEvaluationSchema.optional(),
  /** Digest (artifacts object store) of the global weights after the last closed round. */
  globalWeightsSha256: sha256HexSchema,
  /**
   * Digest of the server state after the last closed round: the strategy's buffers (momentum,
   * moments) and, with adaptive server-side DP, the clip norm.
   */
  strategyStateSha256: sha256HexSchema.optional(),
  current: flRoundInProgressSchema.optional(),
  /** Closed rounds (the global weights are those of round `roundsDone`). */
  roundsDone: z.number().int().nonnegative().default(0),
  /** Summaries of the last closed rounds (at most {@link FL_RECENT_ROUNDS}), oldest first. */
  recentRounds: z.array(flRoundSummarySchema).max(FL_RECENT_ROUNDS).default([]),
  /** The version registered from the final weights. */
  registeredVersion: modelVersionSchema.optional(),
  error: z.string().max(4096).optional(),
});
export type FlRunRecord = z.infer<typeof flRunRecordSchema>;

/**
 * `GET /api/v1/fl/runs/{id}` (and the answers of start and stop): the run record with the full
 * records of its last closed rounds (at most {@link FL_RUN_DETAIL_ROUNDS}, oldest first);
 * `GET /api/v1/fl/runs/{id}/rounds/{n}` gives any one round.
 */
export const flRunDetailSchema = flRunRecordSchema.extend({
  history: z.array(flRoundRecordSchema).max(FL_RUN_DETAIL_ROUNDS),
});
export type FlRunDetail = z.infer<typeof flRunDetailSchema>;

/** One row of `GET /api/v1/fl/runs`. */
export const flRunSummarySchema = flRunRecordSchema.pick({
  id: true,
  model: true,
  baseVersion: true,
  rounds: true,
  strategy: true,
  state: true,
  createdAt: true,
  registeredVersion: true,
  resultVersion: true,
});
export type FlRunSummary = z.infer<typeof flRunSummarySchema>;

/** `GET /api/v1/fl/runs`. */
export const flRunListResponseSchema = z.object({
  runs: z.array(flRunSummarySchema.extend({ roundsDone: z.number().int().nonnegative() })),
});
export type FlRunListResponse = z.infer<typeof flRunListResponseSchema>;

/**
 * Federated learning contracts (DESIGN.md section 9): the round task the aggregator sends each
 * selected agent, the update an agent publishes to the durable updates stream, the messages of
 * secure aggregation's key exchange, and the run state kept in `roundsBucket()`.
 *
 * Flow of one round:
 * 1. The aggregator picks clients among online agents that have the model and sends each an
 *    {@link FlRoundTask} by request on `flRoundTaskSubject(agentId)`; the agent answers at once
 *    with an {@link FlTaskReply} (accepted, or refused with a reason such as no labelled data).
 * 2. Each accepted client trains the model's trainable initializers (the manifest's `trainable`)
 *    from the task's global weights on its own examples, and publishes an {@link FlUpdate} with
 *    JetStream to `flUpdateSubject(roundId)` (captured by `updatesStream()`, so an update survives
 *    an aggregator restart). The update holds the weight delta (new - global), the example count
 *    and local metrics, never examples.
 * 3. The round closes when every accepted client has reported or at `deadlineAt` (later updates
 *    are dropped as stragglers); the aggregator aggregates with the run's strategy, evaluates on the
 *    operator's held-out data, and starts the next round. After the last round it registers a new
 *    model version with the updated initializers.
 *
 * With `secure`, clients advertise keys (`flSecureToAggregatorSubject`), receive the roster and
 * their inbox of encrypted shares (`flSecureToClientsSubject`), publish a masked update (the
 * `masked` field instead of `delta`: fixed-point, weighted by the example count, with the count as
 * the vector's last element), and answer the unmask request with their shares. Only the sum is
 * ever visible to the aggregator, so secure rounds support the linear strategies only.
 * @module
 */
import { z } from 'zod';
import { modelNameSchema, modelVersionSchema } from './model-ref.js';
import { epochMsSchema, idSchema } from './primitives.js';

const binary = z.custom<Uint8Array>((v) => v instanceof Uint8Array, 'must be binary data (Uint8Array)');

/** One float32 tensor of trainable weights: raw little-endian bytes, `4 * product(dims)` of them. */
export const flTensorSchema = z
  .object({
    name: z.string().min(1).max(256),
    dims: z.array(z.number().int().nonnegative()).max(8),
    data: binary,
  })
  .refine((t) => t.data.byteLength === 4 * t.dims.reduce((a, b) => a * b, 1), {
    message: 'data must hold 4 * product(dims) bytes (float32)',
  });
export type FlTensor = z.infer<typeof flTensorSchema>;

/** Local training settings of a round (FedProx's `proximalMu` is 0 for plain local SGD). */
export const flHyperparametersSchema = z.object({
  localEpochs: z.number().int().min(1).max(100),
  batchSize: z.number().int().min(1).max(4096),
  learningRate: z.number().positive().max(10),
  proximalMu: z.number().nonnegative().default(0),
});
export type FlHyperparameters = z.infer<typeof flHyperparametersSchema>;

/**
 * Differential privacy of a run. `client`: each client clips its delta to `clipNorm` and adds
 * Gaussian noise of stddev `noiseMultiplier * clipNorm` before sending; `server`: clients send
 * deltas as they are, the aggregator clips each and noises the aggregate.
 */
export const flPrivacySchema = z.object({
  mode: z.enum(['client', 'server']),
  clipNorm: z.number().positive(),
  noiseMultiplier: z.number().nonnegative(),
  /** Adaptive clipping (Andrew et al. 2021): the quantile of unclipped norms the clip norm tracks. */
  targetQuantile: z.number().gt(0).lt(1).optional(),
});
export type FlPrivacy = z.infer<typeof flPrivacySchema>;

/** A client's part in a secure round. */
export const flSecureTaskSchema = z.object({
  /** The client's id in the round (>= 1, also its Shamir evaluation point). */
  clientId: z.number().int().min(1),
  /** Shares needed to unmask (t). */
  threshold: z.number().int().min(2),
  /** Fixed-point fractional bits. */
  fractionalBits: z.number().int().min(0).max(30),
});
export type FlSecureTask = z.infer<typeof flSecureTaskSchema>;

/** What the aggregator sends one selected agent on `flRoundTaskSubject(agentId)`. */
export const flRoundTaskSchema = z.object({
  runId: idSchema,
  /** Unique per round (`<runId>-r<round>`): the update subject's token. */
  roundId: idSchema,
  /** 1-based. */
  round: z.number().int().min(1),
  model: modelNameSchema,
  /** The registry version whose graph the weights belong to. */
  baseVersion: modelVersionSchema,
  /** The global trainable weights, in the manifest's `trainable` order. */
  weights: z.array(flTensorSchema).min(1),
  hyperparameters: flHyperparametersSchema,
  privacy: flPrivacySchema.optional(),
  secure: flSecureTaskSchema.optional(),
  /** Updates published after this instant (ms since the epoch) are dropped. */
  deadlineAt: epochMsSchema,
  /** Seed for the client's shuffling (runs are reproducible given the same data). */
  seed: z.number().int().nonnegative().optional(),
});
export type FlRoundTask = z.infer<typeof flRoundTaskSchema>;

/** The agent's immediate answer to a task. */
export const flTaskReplySchema = z.object({
  accepted: z.boolean(),
  /** Labelled examples the client will train on. */
  examples: z.number().int().nonnegative(),
  /** Why a task was refused (`no-data`, `model-missing`, `busy`, `incompatible-weights`). */
  reason: z.string().max(256).optional(),
});
export type FlTaskReply = z.infer<typeof flTaskReplySchema>;

/** Local metrics a client reports with its update (on its own training data). */
export const flLocalMetricsSchema = z.object({
  /** Mean loss over the last local epoch. */
  loss: z.number().nonnegative(),
  /** Training accuracy after local training. */
  accuracy: z.number().min(0).max(1),
  trainMs: z.number().nonnegative(),
});
export type FlLocalMetrics = z.infer<typeof flLocalMetricsSchema>;

/** What a client publishes to `flUpdateSubject(roundId)`. Exactly one of `delta` and `masked`. */
export const flUpdateSchema = z
  .object({
    runId: idSchema,
    roundId: idSchema,
    round: z.number().int().min(1),
    agentId: idSchema,
    numExamples: z.number().int().min(1),
    /** new - global, per trainable tensor in task order. */
    delta: z.array(flTensorSchema).optional(),
    /** Secure rounds: the masked fixed-point vector (uint32 little-endian). */
    masked: binary.optional(),
    metrics: flLocalMetricsSchema,
    /** Client-side DP: the delta's L2 norm before clipping, and whether it was clipped. */
    privacy: z.object({ norm: z.number().nonnegative(), clipped: z.boolean() }).optional(),
  })
  .refine((u) => (u.delta === undefined) !== (u.masked === undefined), {
    message: 'exactly one of delta and masked is required',
  });
export type FlUpdate = z.infer<typeof flUpdateSchema>;

/** Secure aggregation, client -> aggregator. */
export const flSecureUpMessageSchema = z.discriminatedUnion('phase', [
  z.object({
    phase: z.literal('keys'),
    agentId: idSchema,
    clientId: z.number().int().min(1),
    maskPublicKey: binary,
    encryptionPublicKey: binary,
  }),
  z.object({
    phase: z.literal('shares'),
    agentId: idSchema,
    clientId: z.number().int().min(1),
    shares: z.array(
      z.object({ from: z.number().int().min(1), to: z.number().int().min(1), ciphertext: binary }),
    ),
  }),
  z.object({
    phase: z.literal('unmask'),
    agentId: idSchema,
    clientId: z.number().int().min(1),
    selfMaskShares: z.array(z.object({ owner: z.number().int().min(1), y: binary })),
    maskKeyShares: z.array(z.object({ owner: z.number().int().min(1), y: binary })),
  }),
]);
export type FlSecureUpMessage = z.infer<typeof flSecureUpMessageSchema>;

/** Secure aggregation, aggregator -> the round's clients. */
export const flSecureDownMessageSchema = z.discriminatedUnion('phase', [
  z.object({
    phase: z.literal('roster'),
    roster: z.array(
      z.object({ clientId: z.number().int().min(1), maskPublicKey: binary, encryptionPublicKey: binary }),
    ),
  }),
  z.object({
    phase: z.literal('inbox'),
    to: z.number().int().min(1),
    shares: z.array(
      z.object({ from: z.number().int().min(1), to: z.number().int().min(1), ciphertext: binary }),
    ),
  }),
  z.object({
    phase: z.literal('unmask'),
    survivors: z.array(z.number().int().min(1)),
    dropped: z.array(z.number().int().min(1)),
  }),
]);
export type FlSecureDownMessage = z.infer<typeof flSecureDownMessageSchema>;

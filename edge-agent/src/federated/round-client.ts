/**
 * The agent's federated-learning client (DESIGN.md section 9, issue 7): answers round tasks on
 * `flRoundTaskSubject(agentId)` at once (accepted with its example count, or refused with a
 * reason: `model-missing`, `incompatible-weights`, `no-data`, `busy`, `deadline-passed`,
 * `unsupported`), then trains locally (yielding between batches so serving goes on), applies
 * client-side differential privacy when the run asks for it, and publishes the update with
 * JetStream until acknowledged or past the round's deadline. Examples never leave the device.
 *
 * With `secure`, the update is masked (see {@link SecureRoundSession}): the aggregator only ever
 * learns the sum over the round's clients.
 * @module
 */
import type { Logger } from 'pino';
import type { MeshConnection } from '@infermesh/mesh-client';
import { publishError } from '@infermesh/mesh-client';
import {
  decode,
  encode,
  flRoundTaskSchema,
  flRoundTaskSubject,
  flTaskReplySchema,
} from '@infermesh/protocols';
import type { FlRoundTask, FlTaskReply, FlUpdate } from '@infermesh/protocols';
import type { MessageSigner } from '../fleet/message-signer.js';
import { privatizeUpdate } from '@infermesh/federated';
import type { TrainingResult } from '@infermesh/trainer';
import type { FederatedMetrics } from './federated-metrics.js';
import type { RefusalReason, RoundTrainers } from './round-trainers.js';
import { SecureRoundSession, secureVector } from './secure-round.js';
import { publishUpdate } from './update-publisher.js';

/** The last round this agent was asked to join, for `/v1/status`. */
export interface LastRound {
  readonly runId: string;
  readonly roundId: string;
  readonly round: number;
  readonly model: string;
  readonly state: 'refused' | 'training' | 'published' | 'dropped' | 'failed';
  readonly reason?: string;
  readonly examples?: number;
  readonly loss?: number;
  readonly accuracy?: number;
  readonly trainMs?: number;
  readonly clipped?: boolean;
  readonly at: string;
}

export interface RoundClientOptions {
  readonly agentId: string;
  readonly trainers: RoundTrainers;
  readonly metrics: FederatedMetrics;
  readonly logger: Logger;
  readonly now?: () => number;
  /** Signs updates with the enrolled identity's key (the coordinator verifies enrolled agents'). */
  readonly signer?: MessageSigner | undefined;
}

/** True when `next` is a later round, or a later attempt of the round, of `current`'s run. */
export function supersedes(next: FlRoundTask, current: FlRoundTask): boolean {
  if (next.runId !== current.runId || next.roundId === current.roundId) return false;
  return next.round > current.round || (next.round === current.round && next.deadlineAt > current.deadlineAt);
}

/** Subscribes to round tasks and runs them, one at a time. */
export class RoundClient {
  readonly #o: RoundClientOptions;
  readonly #log: Logger;
  readonly #now: () => number;
  #connection: MeshConnection | undefined;
  #subscription: ReturnType<MeshConnection['nc']['subscribe']> | undefined;
  #busy = false;
  #running: Promise<void> | undefined;
  /** The round being trained, and how to cancel it when a newer attempt of its run supersedes it. */
  #current: { readonly task: FlRoundTask; readonly cancel: AbortController } | undefined;
  #abort = new AbortController();
  #lastRound: LastRound | undefined;
  #stopped = false;
  readonly #secureSessions = new Set<SecureRoundSession>();

  constructor(options: RoundClientOptions) {
    this.#o = options;
    this.#log = options.logger.child({ component: 'agent.fl', agentId: options.agentId });
    this.#now = options.now ?? Date.now;
  }

  /** Starts answering tasks over `connection` (once). */
  attach(connection: MeshConnection): void {
    if (this.#connection || this.#stopped) return;
    this.#connection = connection;
    this.#subscription = connection.nc.subscribe(flRoundTaskSubject(this.#o.agentId), {
      callback: (err, msg) => {
        if (err) return;
        void this.#onTask(msg.data, msg.reply, (reply) => msg.respond(reply));
      },
    });
  }

  /** The last round task, and whether one is training now. */
  status(): { training: boolean; lastRound?: LastRound } {
    return { training: this.#busy, ...(this.#lastRound ? { lastRound: this.#lastRound } : {}) };
  }

  /** Waits for the round in progress (for tests and shutdown). */
  async idle(): Promise<void> {
    await this.#running;
  }

  /** Stops answering, aborts training in progress, and releases the trainers. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#subscription?.unsubscribe();
    this.#abort.abort(new Error('agent stopping'));
    for (const session of this.#secureSessions) session.close('agent stopping');
    await this.#running;
    await this.#o.trainers.release();
  }

  async #onTask(
    data: Uint8Array,
    replySubject: string | undefined,
    respond: (reply: Uint8Array) => boolean,
  ): Promise<void> {
    let task: FlRoundTask;
    try {
      task = decode(flRoundTaskSchema, data, 'round task');
    } catch (err) {
      this.#log.warn({ err: (err as Error).message }, 'invalid round task');
      if (replySubject && this.#connection) publishError(this.#connection.nc, replySubject, err);
      return;
    }
    const answer = (reply: FlTaskReply): void => {
      respond(encode(flTaskReplySchema, reply, 'task reply'));
    };
    const refuse = (reason: RefusalReason, detail: string): void => {
      this.#o.metrics.rounds.inc({ model: task.model, outcome: 'refused', reason });
      this.#record(task, { state: 'refused', reason: `${reason}: ${detail}` });
      this.#log.info({ roundId: task.roundId, model: task.model, reason, detail }, 'round task refused');
      answer({ accepted: false, examples: 0, reason: `${reason}: ${detail}`.slice(0, 256) });
    };

    if (task.deadlineAt <= this.#now()) return refuse('deadline-passed', 'the round deadline has passed');
    // A newer round or attempt of the same run supersedes the one training: the aggregator has
    // given that one up (too few clients, a restart), so its result would be dropped anyway. A later
    // round, or the same round with a later deadline (a new attempt), is newer; anything else waits.
    const current = this.#current;
    if (this.#busy && current && supersedes(task, current.task)) {
      this.#log.info(
        { previous: current.task.roundId, roundId: task.roundId },
        'a newer attempt of the run supersedes the round in training',
      );
      current.cancel.abort(new Error(`superseded by ${task.roundId}`));
      await this.#running;
    }
    if (this.#busy) return refuse('busy', 'a round is already training');
    this.#busy = true;
    let prepared;
    try {
      prepared = await this.#o.trainers.prepare(task);
    } catch (err) {
      this.#busy = false;
      this.#log.error({ err, roundId: task.roundId }, 'round task preparation failed');
      if (replySubject && this.#connection) publishError(this.#connection.nc, replySubject, err);
      return;
    }
    if (prepared.type === 'refused') {
      this.#busy = false;
      return refuse(prepared.reason, prepared.detail);
    }
    this.#o.metrics.rounds.inc({ model: task.model, outcome: 'joined', reason: '' });
    this.#record(task, { state: 'training', examples: prepared.examples.length });
    answer({ accepted: true, examples: prepared.examples.length });
    const secure = task.secure ? this.#secureSession({ ...task, secure: task.secure }) : undefined;
    const cancel = new AbortController();
    this.#current = { task, cancel };
    this.#running = this.#train(task, prepared, secure, cancel.signal)
      .catch((err: unknown) => {
        // Whatever went wrong with this round must not take the agent (and its serving) down.
        secure?.close('round failed');
        this.#o.metrics.updates.inc({ model: task.model, outcome: 'failed' });
        this.#record(task, { state: 'failed', reason: (err as Error).message });
        this.#log.error({ err, roundId: task.roundId }, 'round failed');
      })
      .finally(() => {
        this.#busy = false;
        if (this.#current?.task === task) this.#current = undefined;
      });
  }

  async #train(
    task: FlRoundTask,
    prepared: Extract<Awaited<ReturnType<RoundTrainers['prepare']>>, { type: 'ready' }>,
    secure: SecureRoundSession | undefined,
    cancelled: AbortSignal,
  ): Promise<void> {
    const log = this.#log.child({ roundId: task.roundId, model: task.model });
    const deadline = new AbortController();
    const timer = setTimeout(
      () => deadline.abort(new Error('round deadline passed')),
      Math.max(0, task.deadlineAt - this.#now()),
    );
    const signal = AbortSignal.any([deadline.signal, this.#abort.signal, cancelled]);
    let result: TrainingResult;
    try {
      result = await prepared.trainer.train(
        prepared.examples,
        task.weights.map((w) => ({ name: w.name, data: float32(w.data) })),
        { ...task.hyperparameters, ...(task.seed !== undefined ? { seed: task.seed } : {}) },
        { signal },
      );
    } catch (err) {
      clearTimeout(timer);
      secure?.close('training failed');
      const late = deadline.signal.aborted || cancelled.aborted;
      this.#o.metrics.updates.inc({ model: task.model, outcome: late ? 'dropped' : 'failed' });
      this.#record(task, { state: late ? 'dropped' : 'failed', reason: (err as Error).message });
      log.warn(
        { err: (err as Error).message },
        late ? 'training passed the round deadline: no update' : 'training failed',
      );
      return;
    }
    this.#o.metrics.trainingTime.observe({ model: task.model }, result.trainMs / 1000);
    if (!Number.isFinite(result.loss) || !result.delta.every((layer) => layer.every(Number.isFinite))) {
      clearTimeout(timer);
      secure?.close('training diverged');
      this.#o.metrics.updates.inc({ model: task.model, outcome: 'failed' });
      this.#record(task, { state: 'failed', reason: 'training diverged: non-finite loss or weights' });
      log.warn({ loss: result.loss }, 'training diverged (try a lower learning rate): no update');
      return;
    }

    let delta = result.delta;
    // Client-side DP: clip then noise. The unclipped norm (and whether clipping happened) stays on
    // the device: it is an un-noised function of the local data.
    let clipped: boolean | undefined;
    if (task.privacy?.mode === 'client') {
      const privatized = privatizeUpdate(delta, {
        clipNorm: task.privacy.clipNorm,
        noiseMultiplier: task.privacy.noiseMultiplier,
      });
      delta = privatized.update;
      clipped = privatized.scale < 1;
    }
    let masked: Uint8Array | undefined;
    if (secure) {
      try {
        masked = await Promise.race([
          secure.mask(secureVector(delta, result.numExamples)),
          new Promise<never>((_, reject) => {
            if (signal.aborted) reject(new Error('round deadline passed'));
            signal.addEventListener('abort', () => reject(new Error('round deadline passed')), {
              once: true,
            });
          }),
        ]);
      } catch (err) {
        clearTimeout(timer);
        secure.close((err as Error).message);
        this.#o.metrics.updates.inc({ model: task.model, outcome: 'dropped' });
        this.#record(task, { state: 'dropped', reason: `secure aggregation: ${(err as Error).message}` });
        log.warn({ err: (err as Error).message }, 'masked update not made: dropped');
        return;
      }
    }
    clearTimeout(timer);
    const update: FlUpdate = {
      runId: task.runId,
      roundId: task.roundId,
      round: task.round,
      agentId: this.#o.agentId,
      numExamples: result.numExamples,
      ...(masked
        ? { masked }
        : {
            delta: task.weights.map((w, i) => ({
              name: w.name,
              dims: w.dims,
              data: littleEndianBytes(delta[i]!),
            })),
          }),
      metrics: { loss: result.loss, accuracy: result.accuracy, trainMs: result.trainMs },
    };
    const connection = this.#connection!;
    const outcome = await publishUpdate(connection.nc, update, {
      signer: this.#o.signer,
      deadlineAt: task.deadlineAt,
      now: this.#now,
      signal: AbortSignal.any([this.#abort.signal, cancelled]),
    });
    const metrics = {
      examples: result.numExamples,
      loss: result.loss,
      accuracy: result.accuracy,
      trainMs: result.trainMs,
    };
    if (outcome.type === 'published') {
      this.#o.metrics.updates.inc({ model: task.model, outcome: 'published' });
      this.#record(task, {
        state: 'published',
        ...metrics,
        ...(clipped === undefined ? {} : { clipped }),
      });
      log.info({ ...metrics, attempts: outcome.attempts }, 'update published');
    } else {
      this.#o.metrics.updates.inc({ model: task.model, outcome: 'dropped' });
      this.#record(task, {
        state: 'dropped',
        reason: outcome.lastError ?? 'round deadline passed',
        ...metrics,
      });
      log.warn(
        { attempts: outcome.attempts, lastError: outcome.lastError },
        'update not acknowledged before the deadline: dropped',
      );
    }
  }

  #secureSession(task: FlRoundTask & { secure: NonNullable<FlRoundTask['secure']> }): SecureRoundSession {
    const vectorLength = task.weights.reduce((n, w) => n + w.data.byteLength / 4, 0) + 1;
    const session = new SecureRoundSession(this.#connection!, task, this.#o.agentId, vectorLength, this.#log);
    this.#secureSessions.add(session);
    const forget = (): boolean => this.#secureSessions.delete(session);
    session.onClose(forget);
    session.start();
    return session;
  }

  #record(task: FlRoundTask, fields: Omit<LastRound, 'runId' | 'roundId' | 'round' | 'model' | 'at'>): void {
    this.#lastRound = {
      runId: task.runId,
      roundId: task.roundId,
      round: task.round,
      model: task.model,
      ...fields,
      at: new Date(this.#now()).toISOString(),
    };
  }
}

/** float32 values of little-endian bytes (copied: the bytes may sit at any offset). */
export function float32(bytes: Uint8Array): Float32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return Float32Array.from({ length: bytes.byteLength / 4 }, (_, i) => view.getFloat32(i * 4, true));
}

/** Little-endian bytes of float32 values. */
export function littleEndianBytes(values: Float32Array): Uint8Array {
  const out = new Uint8Array(values.length * 4);
  const view = new DataView(out.buffer);
  for (let i = 0; i < values.length; i += 1) view.setFloat32(i * 4, values[i]!, true);
  return out;
}

/**
 * A bounded queue between the heartbeat subscription and the registry: NATS delivers heartbeats in
 * bursts (hundreds per socket read), and checking each one (schema, ed25519 signature: ~0.1 ms)
 * inline would hold the event loop for tens of milliseconds, stalling the admin API. The intake
 * takes messages as they come and processes them in slices of a few milliseconds, yielding to
 * other work between slices. Past `maxPending` the oldest waiting heartbeats are dropped (a newer
 * one from the same agent follows within an interval) and counted.
 * @module
 */

/** One heartbeat as received, before any check. */
export interface ReceivedHeartbeat {
  readonly subject: string;
  readonly data: Uint8Array;
  readonly receivedAt: number;
  readonly signature: string | undefined;
}

/** Options of {@link HeartbeatIntake}. */
export interface HeartbeatIntakeOptions {
  readonly process: (heartbeat: ReceivedHeartbeat) => void;
  /** Longest slice of processing before yielding, in ms (default 4). */
  readonly sliceMs?: number;
  /** Most heartbeats waiting (default 100,000). */
  readonly maxPending?: number;
}

/** Time-sliced processing of received heartbeats. */
export class HeartbeatIntake {
  readonly #process: (heartbeat: ReceivedHeartbeat) => void;
  readonly #sliceMs: number;
  readonly #maxPending: number;
  #queue: ReceivedHeartbeat[] = [];
  #head = 0;
  #scheduled = false;
  #closed = false;
  /** Held until {@link resume}: nothing is checked before the fleet records are loaded. */
  #paused = true;
  /** Heartbeats dropped because too many were waiting. */
  dropped = 0;

  constructor(options: HeartbeatIntakeOptions) {
    this.#process = options.process;
    this.#sliceMs = options.sliceMs ?? 4;
    this.#maxPending = options.maxPending ?? 100_000;
  }

  /** Heartbeats waiting to be processed. */
  get pending(): number {
    return this.#queue.length - this.#head;
  }

  push(heartbeat: ReceivedHeartbeat): void {
    if (this.#closed) return;
    if (this.pending >= this.#maxPending) {
      this.#head += 1;
      this.dropped += 1;
    }
    this.#queue.push(heartbeat);
    this.#schedule();
  }

  /**
   * Starts processing (heartbeats pushed before wait): the registry resumes once it knows which
   * agents are enrolled, so none is judged without its record.
   */
  resume(): void {
    this.#paused = false;
    this.#schedule();
  }

  #schedule(): void {
    if (this.#scheduled || this.#paused || this.pending === 0) return;
    this.#scheduled = true;
    setImmediate(() => this.#drain());
  }

  /** Stops taking and processing heartbeats; those waiting are discarded. */
  close(): void {
    this.#closed = true;
    this.#queue = [];
    this.#head = 0;
  }

  #drain(): void {
    this.#scheduled = false;
    const until = performance.now() + this.#sliceMs;
    while (this.#head < this.#queue.length && !this.#closed) {
      this.#process(this.#queue[this.#head] as ReceivedHeartbeat);
      this.#head += 1;
      if (performance.now() >= until) break;
    }
    if (this.#head >= this.#queue.length) {
      this.#queue = [];
      this.#head = 0;
    } else if (this.#head > 4_096 && this.#head * 2 > this.#queue.length) {
      // Drop the processed prefix now and then, so the array does not grow without bound.
      this.#queue = this.#queue.slice(this.#head);
      this.#head = 0;
    }
    if (!this.#closed) this.#schedule();
  }
}

/**
 * Prometheus metrics of the agent's federated client, registered on the agent's own registry:
 * round tasks answered (joined or refused, by reason), updates published or dropped, and local
 * training time.
 * @module
 */
import { Counter, Histogram } from 'prom-client';
import type { Registry } from 'prom-client';

/** Training time buckets in seconds: 10 ms to 10 minutes. */
const TRAINING_BUCKETS_S = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];

export class FederatedMetrics {
  /** Round tasks by outcome (`joined`, `refused`) and refusal reason (empty when joined). */
  readonly rounds: Counter<'model' | 'outcome' | 'reason'>;
  /** Updates by outcome: `published`, `dropped` (past the deadline), `failed` (training failed). */
  readonly updates: Counter<'model' | 'outcome'>;
  readonly trainingTime: Histogram<'model'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.rounds = new Counter({
      name: 'infermesh_agent_fl_rounds_total',
      help: 'Federated round tasks answered, by model, outcome (joined, refused) and refusal reason.',
      labelNames: ['model', 'outcome', 'reason'],
      registers,
    });
    this.updates = new Counter({
      name: 'infermesh_agent_fl_updates_total',
      help: 'Federated updates by model and outcome (published, dropped past the deadline, failed).',
      labelNames: ['model', 'outcome'],
      registers,
    });
    this.trainingTime = new Histogram({
      name: 'infermesh_agent_fl_training_seconds',
      help: 'Local training time of a federated round (featurisation included), by model.',
      labelNames: ['model'],
      buckets: TRAINING_BUCKETS_S,
      registers,
    });
  }
}

/**
 * The health gates of a rollout step, with no I/O: from agents' heartbeats, whether a cohort agent
 * serves the version, failed to load it, or is still on its way; the counters of a version on an
 * agent; and the verdict of a bake (pass, fail, or wait for more traffic).
 *
 * Heartbeat counters (`requests`: answered successfully, `errors`: answered with an error) are
 * monotonic since the agent started, so the bake's traffic is the difference between the counters
 * at its start (the baseline kept in the rollout record) and now; a counter that went down means
 * the agent restarted, and then the counter itself is the traffic since.
 * @module
 */
import type {
  AgentHeartbeat,
  CohortHealth,
  CounterSnapshot,
  GateEvaluation,
  RolloutAgent,
  RolloutSpec,
} from '@infermesh/protocols';

/** Where one agent stands with the rolled-out version. */
export type LoadStatus =
  | { readonly status: 'ready' }
  | { readonly status: 'failed'; readonly reason: string }
  | { readonly status: 'pending' };

/**
 * Reads from a heartbeat whether `model@version` serves (sync `synced` with that serving version,
 * or, for agents without a registry sync, a `ready` model entry that is the only one), failed
 * (a sync refusal naming that desired version, or a `failed` model entry), or neither yet.
 */
export function loadStatusOf(
  heartbeat: AgentHeartbeat | undefined,
  model: string,
  version: string,
): LoadStatus {
  if (heartbeat === undefined) return { status: 'pending' };
  const sync = heartbeat.sync?.find((s) => s.name === model);
  if (sync?.desiredVersion === version && sync.state === 'refused') {
    return { status: 'failed', reason: `${sync.reason ?? 'refused'}${sync.error ? `: ${sync.error}` : ''}` };
  }
  const entry = heartbeat.models.find((m) => m.name === model && m.version === version);
  if (entry?.state === 'failed') return { status: 'failed', reason: entry.error ?? 'load failed' };
  if (sync?.servingVersion === version && sync.state === 'synced') return { status: 'ready' };
  return { status: 'pending' };
}

/** The version serving `model` on an agent, per its heartbeat. */
export function servingVersionOf(heartbeat: AgentHeartbeat | undefined, model: string): string | undefined {
  return heartbeat?.sync?.find((s) => s.name === model)?.servingVersion;
}

/** The counters of `model@version` in a heartbeat; undefined when it does not list that version. */
export function countersOf(
  heartbeat: AgentHeartbeat | undefined,
  model: string,
  version: string | undefined,
): CounterSnapshot | undefined {
  if (version === undefined) return undefined;
  const entry = heartbeat?.models.find((m) => m.name === model && m.version === version);
  return entry ? { version, requests: entry.requests, errors: entry.errors } : undefined;
}

/** Traffic between two snapshots of the same version (a restart resets counters: then `now` is it). */
export function counterDelta(
  baseline: CounterSnapshot | undefined,
  now: CounterSnapshot | undefined,
): { requests: number; errors: number } {
  if (now === undefined) return { requests: 0, errors: 0 };
  if (baseline === undefined || baseline.version !== now.version) return { requests: 0, errors: 0 };
  if (now.requests < baseline.requests || now.errors < baseline.errors) {
    return { requests: now.requests, errors: now.errors };
  }
  return { requests: now.requests - baseline.requests, errors: now.errors - baseline.errors };
}

/** One agent's part in a gate evaluation. */
export interface GateAgent {
  readonly agentId: string;
  /** Counters when the bake started. */
  readonly baseline?: CounterSnapshot | undefined;
  /** Counters now (same version as the baseline to count). */
  readonly current?: CounterSnapshot | undefined;
  /** Why its load failed, when it did. */
  readonly failedLoad?: string | undefined;
}

/**
 * An agent of a rollout as a gate sees it: its baseline, its counters of `counted` now (the
 * version it serves when undefined), and why its load of `model@version` failed, if it did (agents
 * of steps up to `currentStep` only).
 */
export function gateAgentOf(
  agent: RolloutAgent,
  heartbeat: AgentHeartbeat | undefined,
  model: string,
  version: string,
  currentStep: number,
  counted: string | undefined,
): GateAgent {
  const status = agent.step <= currentStep ? loadStatusOf(heartbeat, model, version) : undefined;
  return {
    agentId: agent.agentId,
    baseline: agent.baseline,
    current: countersOf(heartbeat, model, counted ?? servingVersionOf(heartbeat, model)),
    ...(agent.state === 'failed'
      ? { failedLoad: agent.reason ?? 'load failed' }
      : status?.status === 'failed'
        ? { failedLoad: status.reason }
        : {}),
  };
}

/** A latency sample: one heartbeat's p95 and the requests it covers. */
export interface LatencySample {
  readonly p95Ms: number;
  readonly requests: number;
}

/** Everything a gate evaluation reads. */
export interface GateInput {
  readonly step: number;
  readonly now: number;
  readonly spec: Pick<RolloutSpec, 'maxErrorRate' | 'maxP95Ms' | 'minRequests'>;
  readonly cohort: readonly GateAgent[];
  readonly rest: readonly GateAgent[];
  /** The cohort's latency samples over the bake. */
  readonly cohortLatency: readonly LatencySample[];
  readonly restLatency?: readonly LatencySample[];
}

/** Request-weighted mean of the samples' p95 (samples without requests are ignored). */
export function weightedP95(samples: readonly LatencySample[]): number | undefined {
  let weight = 0;
  let sum = 0;
  for (const s of samples) {
    if (s.requests <= 0) continue;
    weight += s.requests;
    sum += s.p95Ms * s.requests;
  }
  return weight === 0 ? undefined : sum / weight;
}

/** The health of a group of agents over the bake. */
export function groupHealth(agents: readonly GateAgent[], latency: readonly LatencySample[]): CohortHealth {
  let requests = 0;
  let errors = 0;
  const failedLoads: string[] = [];
  for (const agent of agents) {
    const delta = counterDelta(agent.baseline, agent.current);
    requests += delta.requests;
    errors += delta.errors;
    if (agent.failedLoad !== undefined) failedLoads.push(agent.agentId);
  }
  const total = requests + errors;
  const p95Ms = weightedP95(latency);
  return {
    agents: agents.length,
    requests,
    errors,
    ...(total > 0 ? { errorRate: errors / total } : {}),
    ...(p95Ms !== undefined ? { p95Ms: Math.round(p95Ms * 1000) / 1000 } : {}),
    failedLoads,
  };
}

const percent = (rate: number): string => `${(rate * 100).toFixed(2)}%`;

/**
 * Fewest requests (successful and failed) the rest must have seen over the bake before its error
 * rate may excuse the cohort's; `minRequests` raises it. Below it the rest's rate is noise (one
 * error in one request is 100 %).
 */
export const REST_MIN_REQUESTS_FLOOR = 100;

/**
 * Whether the cohort's error rate fails the gate: above `maxErrorRate`, unless the rest saw enough
 * traffic ({@link REST_MIN_REQUESTS_FLOOR}, or `minRequests` when higher) with a rate so high
 * that the cohort's is within `maxErrorRate` of it: a fleet-wide rise (clients sending bad input)
 * is not the new version's fault, but the version may add at most `maxErrorRate` on top of it.
 * Answers the reason when it fails.
 */
export function errorRateFailure(
  cohort: CohortHealth,
  rest: CohortHealth,
  spec: Pick<RolloutSpec, 'maxErrorRate' | 'minRequests'>,
): string | undefined {
  const rate = cohort.errorRate ?? 0;
  if (rate <= spec.maxErrorRate) return undefined;
  const total = cohort.requests + cohort.errors;
  const restTotal = rest.requests + rest.errors;
  const restFloor = Math.max(REST_MIN_REQUESTS_FLOOR, spec.minRequests);
  const head =
    `error rate ${percent(rate)} (${cohort.errors} of ${total}) is above maxErrorRate ` +
    `${percent(spec.maxErrorRate)}`;
  if (rest.errorRate === undefined || restTotal < restFloor) {
    return `${head} (the rest saw ${restTotal} requests, too few to compare with; ${restFloor} needed)`;
  }
  if (rate > rest.errorRate + spec.maxErrorRate) {
    return `${head} and the rest's ${percent(rest.errorRate)} by more than maxErrorRate`;
  }
  return undefined;
}

/**
 * Judges a bake. `fail` when a cohort agent failed to load the version, when the cohort's error
 * rate fails {@link errorRateFailure}, or when its p95 is above `maxP95Ms`; `wait` when the
 * cohort has seen fewer than `minRequests` requests; `pass` otherwise.
 * @example
 * evaluateGates({ step: 0, now, spec, cohort, rest, cohortLatency }).verdict; // 'pass'
 */
export function evaluateGates(input: GateInput): GateEvaluation {
  const cohort = groupHealth(input.cohort, input.cohortLatency);
  const rest = groupHealth(input.rest, input.restLatency ?? []);
  const reasons: string[] = [];
  for (const agent of input.cohort) {
    if (agent.failedLoad !== undefined) reasons.push(`${agent.agentId} failed to load: ${agent.failedLoad}`);
  }
  const result = (verdict: GateEvaluation['verdict']): GateEvaluation => ({
    step: input.step,
    at: input.now,
    verdict,
    reasons,
    cohort,
    rest,
  });
  if (reasons.length > 0) return result('fail');
  const total = cohort.requests + cohort.errors;
  if (total < input.spec.minRequests) {
    reasons.push(`the cohort saw ${total} requests, fewer than minRequests ${input.spec.minRequests}`);
    return result('wait');
  }
  const errorRate = errorRateFailure(cohort, rest, input.spec);
  if (errorRate !== undefined) reasons.push(errorRate);
  const maxP95 = input.spec.maxP95Ms;
  if (maxP95 !== undefined && cohort.p95Ms !== undefined && cohort.p95Ms > maxP95) {
    reasons.push(`p95 latency ${cohort.p95Ms.toFixed(1)} ms is above maxP95Ms ${maxP95} ms`);
  }
  return result(reasons.length > 0 ? 'fail' : 'pass');
}

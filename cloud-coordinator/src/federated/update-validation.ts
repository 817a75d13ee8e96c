/**
 * Checks one published update against the round it claims to belong to, before it reaches the
 * aggregation: the schema, the run and round ids, that its agent was selected and accepted the
 * task and has not sent one already, that the tensors are the task's (names, dims, order) and
 * every value is finite. A bad update is refused with a reason for the log and the round record;
 * it never stops the round.
 * @module
 */
import { flUpdateSchema } from '@infermesh/protocols';
import type { FlUpdate } from '@infermesh/protocols';
import { decode } from '@infermesh/protocols';
import type { GlobalWeights } from './global-weights.js';
import { tensorValues } from './global-weights.js';

/** The round an update must belong to, and who has reported already. */
export interface RoundIdentity {
  readonly runId: string;
  readonly roundId: string;
  readonly round: number;
  /** Agents whose update has been taken already. */
  readonly received: ReadonlySet<string>;
}

/** What an update must match. */
export interface RoundExpectation extends RoundIdentity {
  /** Agents that accepted the task. */
  readonly accepted: ReadonlySet<string>;
  readonly global: GlobalWeights;
  /** Secure rounds carry `masked`, the others `delta`. */
  readonly secure: boolean;
}

/** An update that passed: the client's delta as float32 layers. */
export interface ValidUpdate {
  readonly ok: true;
  readonly update: FlUpdate;
  readonly delta: Float32Array[];
}

/** An update refused, with the agent when the message named one. */
export interface RejectedUpdate {
  readonly ok: false;
  readonly agentId: string;
  readonly reason: string;
}

const rejected = (agentId: string, reason: string): RejectedUpdate => ({ ok: false, agentId, reason });

/**
 * Decodes an update and checks what every round checks: the schema, the run and round ids, that
 * `member` admits its agent (undefined, or the reason it does not) and that it is the agent's first.
 */
export function decodeRoundUpdate(
  bytes: Uint8Array,
  expected: RoundIdentity,
  member: (agentId: string) => string | undefined,
): { readonly ok: true; readonly update: FlUpdate } | RejectedUpdate {
  let update: FlUpdate;
  try {
    update = decode(flUpdateSchema, bytes, 'federated update');
  } catch (err) {
    return rejected('unknown', (err as Error).message.slice(0, 500));
  }
  const agent = update.agentId;
  if (update.runId !== expected.runId)
    return rejected(agent, `runId ${update.runId} is not ${expected.runId}`);
  if (update.roundId !== expected.roundId || update.round !== expected.round) {
    return rejected(agent, `update is for round ${update.roundId}, not ${expected.roundId}`);
  }
  const refusal = member(agent);
  if (refusal !== undefined) return rejected(agent, refusal);
  if (expected.received.has(agent)) return rejected(agent, 'duplicate update from this agent');
  return { ok: true, update };
}

/** Decodes and checks one update message. */
export function checkUpdate(bytes: Uint8Array, expected: RoundExpectation): ValidUpdate | RejectedUpdate {
  const decoded = decodeRoundUpdate(bytes, expected, (agent) =>
    expected.accepted.has(agent) ? undefined : 'agent was not selected or did not accept the task',
  );
  if (!decoded.ok) return decoded;
  const { update } = decoded;
  const agent = update.agentId;
  if (expected.secure || update.delta === undefined) {
    return rejected(agent, expected.secure ? 'secure rounds take masked updates' : 'update has no delta');
  }
  const { shapes } = expected.global;
  if (update.delta.length !== shapes.length) {
    return rejected(agent, `update has ${update.delta.length} tensors, the model ${shapes.length}`);
  }
  const delta: Float32Array[] = [];
  for (let i = 0; i < shapes.length; i += 1) {
    const tensor = update.delta[i]!;
    const shape = shapes[i]!;
    if (tensor.name !== shape.name)
      return rejected(agent, `tensor ${i} is ${tensor.name}, expected ${shape.name}`);
    if (tensor.dims.length !== shape.dims.length || tensor.dims.some((d, k) => d !== shape.dims[k])) {
      return rejected(
        agent,
        `tensor ${tensor.name} has dims [${tensor.dims.join(',')}], expected [${shape.dims.join(',')}]`,
      );
    }
    const values = tensorValues(tensor);
    for (let k = 0; k < values.length; k += 1) {
      if (!Number.isFinite(values[k]!))
        return rejected(agent, `tensor ${tensor.name} holds a non-finite value`);
    }
    delta.push(values);
  }
  return { ok: true, update, delta };
}

/** The client's full new weights: global + delta (what the strategies take). */
export function applyDelta(global: readonly Float32Array[], delta: readonly Float32Array[]): Float32Array[] {
  return global.map((layer, l) => {
    const d = delta[l]!;
    const out = new Float32Array(layer.length);
    for (let i = 0; i < layer.length; i += 1) out[i] = layer[i]! + d[i]!;
    return out;
  });
}

/**
 * Checks one published update against the round it claims to belong to, before it reaches the
 * aggregation: the schema, the run and round ids, that an update claiming an enrolled agent's id
 * carries that agent's signature (its NATS header: anyone can publish on the update subject, and
 * de-duplication ids carry a nonce, so only this check tells a forgery from the agent's update;
 * unenrolled agents' updates are taken unsigned, for development meshes), that its agent was
 * selected and accepted the task and has not sent one already, that it claims no more examples
 * than the agent announced in its task reply (a client inflating its count would dominate FedAvg),
 * that the tensors are the task's (names, dims, order) and
 * every value is finite, and — in a run with client-side DP — that the delta's norm fits the clip
 * norm plus what the clients' Gaussian noise can add ({@link clientDpNormLimit}), so a client that
 * skips clipping cannot outweigh the others. A bad update is refused with a reason for the log and
 * the round record; it never stops the round.
 * @module
 */
import { flUpdateSchema } from '@infermesh/protocols';
import type { FlPrivacy, FlUpdate } from '@infermesh/protocols';
import { decode } from '@infermesh/protocols';
import type { GlobalWeights } from './global-weights.js';
import { tensorValues } from './global-weights.js';

/** Who can sign updates: the fleet registry's enrolled agents and their identity keys. */
export interface UpdateSigners {
  /** The agent's fleet record; undefined when it is not enrolled. */
  recordOf(agentId: string): object | undefined;
  /** True when `signature` is the enrolled agent's signature over `data`. */
  signedBy(agentId: string, data: Uint8Array, signature: string | undefined): boolean;
}

/** The round an update must belong to, and who has reported already. */
export interface RoundIdentity {
  readonly runId: string;
  readonly roundId: string;
  readonly round: number;
  /** Agents whose update has been taken already. */
  readonly received: ReadonlySet<string>;
  /** Enrolled agents must sign their updates. */
  readonly signers: UpdateSigners;
  /** What each accepting agent announced in its task reply (absent in rounds recorded before). */
  readonly acceptedExamples?: Readonly<Record<string, number>> | undefined;
}

/** What an update must match. */
export interface RoundExpectation extends RoundIdentity {
  /** Agents that accepted the task. */
  readonly accepted: ReadonlySet<string>;
  readonly global: GlobalWeights;
  /** Secure rounds carry `masked`, the others `delta`. */
  readonly secure: boolean;
  /** The run's privacy settings: with `mode: 'client'` every delta's norm is bounded. */
  readonly privacy?: FlPrivacy | undefined;
}

/**
 * A clipped delta of `size` values with N(0, (z·C)²) noise per value has a norm below
 * C + z·C·(√size + t) but with probability e^(−t²/2) (Gaussian concentration); t = 10 makes a
 * false refusal of an honest client practically impossible (~2e-22).
 */
const NOISE_TAIL_STDDEVS = 10;

/** The largest delta norm an honest client-side DP client can send. */
export function clientDpNormLimit(
  privacy: Pick<FlPrivacy, 'clipNorm' | 'noiseMultiplier'>,
  size: number,
): number {
  const noise = privacy.noiseMultiplier * privacy.clipNorm * (Math.sqrt(size) + NOISE_TAIL_STDDEVS);
  // float32 rounding of a delta clipped to exactly C
  return privacy.clipNorm * (1 + 1e-5) + noise;
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
  /**
   * True when the message cannot be the named agent's own (unsigned or badly signed for an
   * enrolled agent): the round keeps waiting for the agent's genuine update.
   */
  readonly unauthenticated?: true;
}

const rejected = (agentId: string, reason: string): RejectedUpdate => ({ ok: false, agentId, reason });

/** The reason an update's signature is refused, or undefined when it passes. */
export function signatureRefusal(
  signers: UpdateSigners,
  agentId: string,
  bytes: Uint8Array,
  signature: string | undefined,
): string | undefined {
  if (signers.recordOf(agentId) === undefined) return undefined;
  if (signers.signedBy(agentId, bytes, signature)) return undefined;
  return signature === undefined
    ? `update claims enrolled agent ${agentId} but is not signed`
    : `update claims enrolled agent ${agentId} but its signature is not that agent's`;
}

/**
 * Decodes an update and checks what every round checks: the schema, the run and round ids, the
 * signature of an enrolled agent (`signature`: the message's `AGENT_SIGNATURE_HEADER`), that
 * `member` admits its agent (undefined, or the reason it does not), that it is the agent's first,
 * and that it claims no more examples than the agent announced.
 */
export function decodeRoundUpdate(
  bytes: Uint8Array,
  signature: string | undefined,
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
  const forged = signatureRefusal(expected.signers, agent, bytes, signature);
  if (forged !== undefined) return { ...rejected(agent, forged), unauthenticated: true };
  const refusal = member(agent);
  if (refusal !== undefined) return rejected(agent, refusal);
  if (expected.received.has(agent)) return rejected(agent, 'duplicate update from this agent');
  const announced = expected.acceptedExamples?.[agent];
  if (announced !== undefined && update.numExamples > announced) {
    return rejected(
      agent,
      `update claims ${update.numExamples} examples, the agent announced ${announced} in its task reply`,
    );
  }
  return { ok: true, update };
}

/** Decodes and checks one update message (`signature`: its `AGENT_SIGNATURE_HEADER`). */
export function checkUpdate(
  bytes: Uint8Array,
  signature: string | undefined,
  expected: RoundExpectation,
): ValidUpdate | RejectedUpdate {
  const decoded = decodeRoundUpdate(bytes, signature, expected, (agent) =>
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
  let squares = 0;
  let size = 0;
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
      squares += values[k]! * values[k]!;
    }
    size += values.length;
    delta.push(values);
  }
  const privacy = expected.privacy;
  if (privacy?.mode === 'client') {
    const norm = Math.sqrt(squares);
    const limit = clientDpNormLimit(privacy, size);
    if (norm > limit) {
      return rejected(
        agent,
        `delta norm ${norm.toPrecision(4)} exceeds the run's client-side clip norm ${privacy.clipNorm} ` +
          `(at most ${limit.toPrecision(4)} with noise): not clipped`,
      );
    }
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

/**
 * Checks one update of a secure round before its masked vector reaches the masked sum: the
 * schema, the run and round ids, that its agent shared keys in this round (only those clients'
 * masks cancel) and has not sent one already, and that it carries `masked` (never `delta`) of the
 * round's vector length. The masked bytes are passed on as they are; nothing here can read them.
 * @module
 */
import { decode, flUpdateSchema } from '@infermesh/protocols';
import type { FlUpdate } from '@infermesh/protocols';

/** What a secure round's update must match. */
export interface SecureRoundExpectation {
  readonly runId: string;
  readonly roundId: string;
  readonly round: number;
  /** The client id of each agent that shared keys (U2). */
  readonly sharedClients: ReadonlyMap<string, number>;
  /** Agents whose masked update is in the sum already. */
  readonly received: ReadonlySet<string>;
  readonly vectorLength: number;
}

/** An update that passed: its masked bytes and the client they belong to. */
export interface ValidMaskedUpdate {
  readonly ok: true;
  readonly update: FlUpdate;
  readonly clientId: number;
  readonly masked: Uint8Array;
}

/** An update refused, with the agent when the message named one. */
export interface RejectedMaskedUpdate {
  readonly ok: false;
  readonly agentId: string;
  readonly reason: string;
}

const rejected = (agentId: string, reason: string): RejectedMaskedUpdate => ({ ok: false, agentId, reason });

/** Decodes and checks one update message of a secure round. */
export function checkMaskedUpdate(
  bytes: Uint8Array,
  expected: SecureRoundExpectation,
): ValidMaskedUpdate | RejectedMaskedUpdate {
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
  const clientId = expected.sharedClients.get(agent);
  if (clientId === undefined) return rejected(agent, 'agent did not share keys in this secure round');
  if (expected.received.has(agent)) return rejected(agent, 'duplicate update from this agent');
  if (update.masked === undefined) return rejected(agent, 'secure rounds take masked updates');
  if (update.masked.byteLength !== expected.vectorLength * 4) {
    return rejected(
      agent,
      `masked vector has ${update.masked.byteLength} bytes, expected ${expected.vectorLength * 4}`,
    );
  }
  return { ok: true, update, clientId, masked: update.masked };
}

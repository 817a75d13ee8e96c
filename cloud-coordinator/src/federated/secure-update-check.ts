/**
 * Checks one update of a secure round before its masked vector reaches the masked sum: the
 * schema, the run and round ids, an enrolled agent's signature, the example count it claims
 * against what it announced (the count inside the masked vector is checked on the unmasked sum),
 * that its agent shared keys in this round (only those clients'
 * masks cancel) and has not sent one already, and that it carries `masked` (never `delta`) of the
 * round's vector length. The masked bytes are passed on as they are; nothing here can read them.
 * @module
 */
import type { FlUpdate } from '@infermesh/protocols';
import { decodeRoundUpdate } from './update-validation.js';
import type { RejectedUpdate, RoundIdentity } from './update-validation.js';

/** What a secure round's update must match. */
export interface SecureRoundExpectation extends RoundIdentity {
  /** The client id of each agent that shared keys (U2). */
  readonly sharedClients: ReadonlyMap<string, number>;
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
export type RejectedMaskedUpdate = RejectedUpdate;

const rejected = (agentId: string, reason: string): RejectedMaskedUpdate => ({ ok: false, agentId, reason });

/** Decodes and checks one update message of a secure round (`signature`: its `AGENT_SIGNATURE_HEADER`). */
export function checkMaskedUpdate(
  bytes: Uint8Array,
  signature: string | undefined,
  expected: SecureRoundExpectation,
): ValidMaskedUpdate | RejectedMaskedUpdate {
  const decoded = decodeRoundUpdate(bytes, signature, expected, (agent) =>
    expected.sharedClients.has(agent) ? undefined : 'agent did not share keys in this secure round',
  );
  if (!decoded.ok) return decoded;
  const { update } = decoded;
  const agent = update.agentId;
  const clientId = expected.sharedClients.get(agent) as number;
  if (update.masked === undefined) return rejected(agent, 'secure rounds take masked updates');
  if (update.masked.byteLength !== expected.vectorLength * 4) {
    return rejected(
      agent,
      `masked vector has ${update.masked.byteLength} bytes, expected ${expected.vectorLength * 4}`,
    );
  }
  return { ok: true, update, clientId, masked: update.masked };
}

/**
 * Signs what an enrolled agent publishes (heartbeats, federated updates) with its ed25519 identity
 * key, so the coordinator can tell its messages from anyone else's: the signature over the exact
 * body rides in the `AGENT_SIGNATURE_HEADER` NATS header.
 * @module
 */
import { createPrivateKey, sign } from 'node:crypto';
import { AGENT_SIGNATURE_HEADER } from '@infermesh/protocols';
import { toMsgHdrs } from '@infermesh/mesh-client';
import type { AgentIdentity } from './agent-identity.js';

/** Signs a message body; returns the base64 signature. */
export type MessageSigner = (body: Uint8Array) => string;

/** A signer with the identity's private key (parsed once). */
export function createMessageSigner(identity: AgentIdentity): MessageSigner {
  const key = createPrivateKey(identity.privateKeyPem);
  return (body) => sign(null, body, key).toString('base64');
}

/** NATS headers carrying the signature of `body`; undefined without a signer (unenrolled agent). */
export function signatureHeaders(
  signer: MessageSigner | undefined,
  body: Uint8Array,
): ReturnType<typeof toMsgHdrs> | undefined {
  return signer ? toMsgHdrs({ [AGENT_SIGNATURE_HEADER]: signer(body) }) : undefined;
}

import { generateKeyPairSync, sign } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pino from 'pino';
import {
  decode,
  encode,
  enrollRequestSchema,
  enrollResponseSchema,
  enrollSubject,
  enrollmentProofText,
} from '@infermesh/protocols';
import type { EnrollRequest, EnrollResponse } from '@infermesh/protocols';
import { connectMesh, replyError } from '@infermesh/mesh-client';
import type { MeshConnection } from '@infermesh/mesh-client';
import { startNatsServer } from '../../../test/harness/nats-server.js';
import type { NatsServer } from '../../../test/harness/nats-server.js';
import { EnrollmentResponder, agentIdOfPublicKey } from './enrollment-responder.js';
import { EnrollmentTokenStore } from './enrollment-tokens.js';
import { FleetRegistry } from './fleet-registry.js';

const logger = pino({ enabled: false });
let nats: NatsServer;
let connection: MeshConnection;
let tokens: EnrollmentTokenStore;
let fleet: FleetRegistry;
/** Two coordinators' responders in the queue group, so concurrent requests race across them. */
const responders: EnrollmentResponder[] = [];

interface AgentKey {
  readonly publicKey: string;
  readonly privateKey: KeyObject;
}

function agentKey(): AgentKey {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const x = publicKey.export({ format: 'jwk' }).x as string;
  return { publicKey: Buffer.from(x, 'base64url').toString('base64'), privateKey };
}

function request(token: string, key: AgentKey, signer: KeyObject = key.privateKey): EnrollRequest {
  const proof = Buffer.from(enrollmentProofText(token, key.publicKey));
  return { token, publicKey: key.publicKey, signature: sign(null, proof, signer).toString('base64') };
}

/** The enrollment answer, or the coded error of the reply. */
async function enroll(body: EnrollRequest): Promise<EnrollResponse | { code: string; message: string }> {
  const reply = await connection.nc.request(enrollSubject(), encode(enrollRequestSchema, body), {
    timeout: 5_000,
  });
  const error = replyError(reply);
  if (error) return { code: error.code, message: error.message };
  return decode(enrollResponseSchema, reply.data);
}

beforeAll(async () => {
  nats = await startNatsServer();
  connection = await connectMesh(nats.url, { name: 'enrollment-test' });
  tokens = new EnrollmentTokenStore({ connection, logger });
  await tokens.start();
  fleet = new FleetRegistry({ connection, logger });
  await fleet.start();
  for (let i = 0; i < 2; i++) {
    const responder = new EnrollmentResponder({ connection, tokens, fleet, logger });
    responder.start();
    responders.push(responder);
  }
});

afterAll(async () => {
  for (const responder of responders) await responder.stop();
  await fleet?.stop();
  await connection?.close();
  await nats?.dispose();
});

describe('enrollment responder', () => {
  it('enrolls an agent with an id derived from its key and the token labels', async () => {
    const { token } = await tokens.create({ site: 'eu', hw: 'pi5' }, 60_000, 'admin');
    const key = agentKey();
    const answer = await enroll({ ...request(token, key), hostname: 'pi-7' });
    expect(answer).toMatchObject({
      agentId: agentIdOfPublicKey(key.publicKey),
      labels: { site: 'eu', hw: 'pi5' },
    });
    expect(agentIdOfPublicKey(key.publicKey)).toMatch(/^ag-[0-9a-f]{16}$/);
    expect(fleet.recordOf(agentIdOfPublicKey(key.publicKey))).toMatchObject({
      publicKey: key.publicKey,
      hostname: 'pi-7',
      labels: { site: 'eu', hw: 'pi5' },
    });
  });

  it('refuses a used token to any other key, and answers the same key again (a retried enrollment)', async () => {
    const { token } = await tokens.create({ site: 'x' }, 60_000, 'admin');
    const key = agentKey();
    const first = await enroll(request(token, key));
    expect(first).toHaveProperty('agentId');
    // The reply was lost, or the agent restarted before storing it: the same key gets it again.
    expect(await enroll(request(token, key))).toEqual(first);
    expect(await enroll(request(token, agentKey()))).toMatchObject({
      code: 'UNAUTHENTICATED',
      message: /already used/,
    });
  });

  it('lets exactly one of two concurrent uses of a token win', async () => {
    for (let round = 0; round < 5; round++) {
      const { token } = await tokens.create({}, 60_000, 'admin');
      const answers = await Promise.all([
        enroll(request(token, agentKey())),
        enroll(request(token, agentKey())),
      ]);
      expect(answers.filter((a) => 'agentId' in a)).toHaveLength(1);
      expect(answers.filter((a) => 'code' in a && a.code === 'UNAUTHENTICATED')).toHaveLength(1);
    }
  });

  it('refuses an expired token and an unknown one', async () => {
    const { token } = await tokens.create({}, 1, 'admin');
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(await enroll(request(token, agentKey()))).toMatchObject({
      code: 'UNAUTHENTICATED',
      message: /expired/,
    });
    const unknown = `imt_${'1'.repeat(16)}_${'2'.repeat(64)}`;
    expect(await enroll(request(unknown, agentKey()))).toMatchObject({ code: 'UNAUTHENTICATED' });
    expect(await enroll(request('not-a-token', agentKey()))).toMatchObject({ code: 'UNAUTHENTICATED' });
  });

  it('refuses a bad proof without using the token', async () => {
    const { token, id } = await tokens.create({}, 60_000, 'admin');
    const key = agentKey();
    expect(await enroll(request(token, key, agentKey().privateKey))).toMatchObject({ code: 'INVALID_INPUT' });
    expect(await enroll({ ...request(token, key), token: `${token.slice(0, -1)}0` })).toMatchObject({
      code: 'INVALID_INPUT',
    });
    expect((await tokens.list()).find((t) => t.id === id)).toMatchObject({ used: false });
    expect(await enroll(request(token, key))).toHaveProperty('agentId');
  });

  it('answers a malformed request with INVALID_INPUT', async () => {
    const reply = await connection.nc.request(enrollSubject(), new TextEncoder().encode('{}'), {
      timeout: 5_000,
    });
    expect(replyError(reply)?.code).toBe('INVALID_INPUT');
  });

  it('re-enrolls the same key with a fresh token, keeping its id and merging labels', async () => {
    const key = agentKey();
    const first = await tokens.create({ site: 'eu', hw: 'pi5' }, 60_000, 'admin');
    const enrolled = (await enroll(request(first.token, key))) as EnrollResponse;
    const second = await tokens.create({ site: 'us' }, 60_000, 'admin');
    const again = (await enroll(request(second.token, key))) as EnrollResponse;
    expect(again.agentId).toBe(enrolled.agentId);
    expect(again.labels).toEqual({ site: 'us', hw: 'pi5' });
    expect(again.enrolledAt).toBe(enrolled.enrolledAt);
    expect(fleet.recordOf(enrolled.agentId)).toMatchObject({
      enrollmentTokenId: second.id,
      labels: again.labels,
    });
  });
});

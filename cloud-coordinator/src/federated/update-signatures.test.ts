import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pino from 'pino';
import { jetstream } from '@nats-io/jetstream';
import {
  AGENT_SIGNATURE_HEADER,
  MAX_FL_REJECTED_LISTED,
  encode,
  flUpdateSchema,
  flUpdateSubject,
} from '@infermesh/protocols';
import type { FlUpdate } from '@infermesh/protocols';
import { connectMesh, toMsgHdrs } from '@infermesh/mesh-client';
import type { MeshConnection } from '@infermesh/mesh-client';
import { startNatsServer } from '../../../test/harness/index.js';
import type { NatsServer } from '../../../test/harness/index.js';
import { FleetRegistry } from '../fleet/fleet-registry.js';
import type { GlobalWeights } from './global-weights.js';
import { toFlTensor } from './global-weights.js';
import { UpdateTally } from './update-tally.js';
import { checkUpdate } from './update-validation.js';
import { ensureUpdatesStream, readRoundUpdates } from './updates-stream.js';

const logger = pino({ enabled: false });
let nats: NatsServer;
let conn: MeshConnection;
let fleet: FleetRegistry;

const enrolledKey = generateKeyPairSync('ed25519');
const intruderKey = generateKeyPairSync('ed25519');
const rawPublicKey = (key: KeyObject): string =>
  Buffer.from(key.export({ format: 'jwk' }).x as string, 'base64url').toString('base64');
const signature = (body: Uint8Array, key: KeyObject): string => sign(null, body, key).toString('base64');

const global: GlobalWeights = {
  shapes: [{ name: 'w', dims: [2] }],
  layers: [Float32Array.of(1, 2)],
};

function update(roundId: string, agentId: string, overrides: Partial<FlUpdate> = {}): Uint8Array {
  return encode(flUpdateSchema, {
    runId: 'run1',
    roundId,
    round: 1,
    agentId,
    numExamples: 10,
    delta: [toFlTensor(global.shapes[0]!, Float32Array.of(0.5, -0.5))],
    metrics: { loss: 0.2, accuracy: 0.9, trainMs: 3 },
    ...overrides,
  });
}

const expected = (roundId: string, received: ReadonlySet<string> = new Set()) => ({
  runId: 'run1',
  roundId,
  round: 1,
  accepted: new Set(['ag-enrolled', 'dev-1']),
  received,
  signers: fleet,
  acceptedExamples: { 'ag-enrolled': 10, 'dev-1': 10 },
  global,
  secure: false,
});

beforeAll(async () => {
  nats = await startNatsServer();
  conn = await connectMesh(nats.url, { name: 'fl-signature-test', logger });
  fleet = new FleetRegistry({ connection: conn, logger });
  await fleet.start();
  await fleet.createRecord({
    agentId: 'ag-enrolled',
    publicKey: rawPublicKey(enrolledKey.publicKey),
    labels: {},
    enrolledAt: Date.now(),
    enrollmentTokenId: '0123456789abcdef',
  });
  await ensureUpdatesStream(conn, 1);
});

afterAll(async () => {
  await fleet?.stop();
  await conn?.close();
  await nats?.stop();
});

describe('federated update signatures', () => {
  it("refuses an update claiming an enrolled agent's id without its signature, and takes the genuine one", () => {
    const body = update('run1-r1', 'ag-enrolled');
    const unsigned = checkUpdate(body, undefined, expected('run1-r1'));
    expect(unsigned).toMatchObject({
      ok: false,
      agentId: 'ag-enrolled',
      reason: 'update claims enrolled agent ag-enrolled but is not signed',
      unauthenticated: true,
    });
    const forged = checkUpdate(body, signature(body, intruderKey.privateKey), expected('run1-r1'));
    expect(forged).toMatchObject({
      ok: false,
      reason: "update claims enrolled agent ag-enrolled but its signature is not that agent's",
      unauthenticated: true,
    });
    // A genuine signature does not carry over to another body (say, a bigger example count).
    const altered = update('run1-r1', 'ag-enrolled', { numExamples: 9 });
    expect(checkUpdate(altered, signature(body, enrolledKey.privateKey), expected('run1-r1')).ok).toBe(false);
    const genuine = checkUpdate(body, signature(body, enrolledKey.privateKey), expected('run1-r1'));
    expect(genuine.ok).toBe(true);
    // Unenrolled agents (development meshes) need no signature.
    expect(checkUpdate(update('run1-r1', 'dev-1'), undefined, expected('run1-r1')).ok).toBe(true);
  });

  it('reads the signature header from the stream: a forgery stored first does not keep out the genuine update', async () => {
    const roundId = `run1-r${Date.now()}`;
    const js = jetstream(conn.nc);
    const publish = (body: Uint8Array, agentId: string, key?: KeyObject) =>
      js.publish(flUpdateSubject(roundId), body, {
        msgID: `${roundId}.${agentId}.${randomBytes(8).toString('hex')}`,
        ...(key ? { headers: toMsgHdrs({ [AGENT_SIGNATURE_HEADER]: signature(body, key) }) } : {}),
      });
    // The forger is first, claiming the enrolled agent with a big count and its own key.
    await publish(update(roundId, 'ag-enrolled', { numExamples: 5 }), 'ag-enrolled', intruderKey.privateKey);
    await publish(update(roundId, 'ag-enrolled', { numExamples: 3 }), 'ag-enrolled');
    await publish(update(roundId, 'dev-1'), 'dev-1');
    const genuine = update(roundId, 'ag-enrolled');
    await publish(genuine, 'ag-enrolled', enrolledKey.privateKey);

    const tally = new UpdateTally(new Set(['ag-enrolled', 'dev-1']));
    const taken: FlUpdate[] = [];
    await readRoundUpdates(conn, {
      roundId,
      deadlineAt: Date.now() + 5_000,
      logger,
      onMessage: (data, _storedAt, signatureHeader) => {
        const checked = checkUpdate(data, signatureHeader, expected(roundId, tally.received));
        if (checked.ok) {
          tally.take(checked.update);
          taken.push(checked.update);
        } else tally.reject(checked);
        return tally.everyoneIn();
      },
    });
    expect([...tally.received].sort()).toEqual(['ag-enrolled', 'dev-1']);
    expect(taken.find((u) => u.agentId === 'ag-enrolled')?.numExamples).toBe(10);
    expect(tally.rejected.map((r) => r.reason)).toEqual([
      "update claims enrolled agent ag-enrolled but its signature is not that agent's",
      'update claims enrolled agent ag-enrolled but is not signed',
    ]);
    expect(tally.refused.size).toBe(0);
  });
});

describe('UpdateTally', () => {
  it('lists the first refused updates and counts them all; an agent refused for its own update is not waited for', () => {
    const tally = new UpdateTally(new Set(['a', 'b']));
    for (let i = 0; i < 1_000; i += 1) tally.reject({ agentId: `junk-${i}`, reason: 'x'.repeat(600) });
    expect(tally.rejected).toHaveLength(MAX_FL_REJECTED_LISTED);
    expect(tally.rejected[0]!.reason).toHaveLength(500);
    expect(tally.rejectedCount).toBe(1_000);
    tally.reject({ agentId: 'a', reason: 'duplicate update from this agent' });
    expect(tally.rejectedCount).toBe(1_000);
    tally.reject({ agentId: 'a', reason: 'forged', unauthenticated: true });
    expect(tally.everyoneIn()).toBe(false);
    tally.reject({ agentId: 'a', reason: 'tensor 0 holds a non-finite value' });
    expect(tally.everyoneIn()).toBe(false);
    tally.take({
      runId: 'r',
      roundId: 'r-r1',
      round: 1,
      agentId: 'b',
      numExamples: 1,
      metrics: { loss: 0.5, accuracy: 1, trainMs: 1 },
    });
    expect(tally.everyoneIn()).toBe(true);
    expect(tally.trainLoss).toBe(0.5);
  });
});

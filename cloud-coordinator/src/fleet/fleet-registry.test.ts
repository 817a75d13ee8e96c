import { generateKeyPairSync, sign } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pino from 'pino';
import {
  AGENT_SIGNATURE_HEADER,
  ErrorCode,
  agentHeartbeatSubject,
  encode,
  agentHeartbeatSchema,
} from '@infermesh/protocols';
import type { AgentHeartbeat, FleetRecord } from '@infermesh/protocols';
import { connectMesh, toMsgHdrs } from '@infermesh/mesh-client';
import type { MeshConnection } from '@infermesh/mesh-client';
import { startNatsServer } from '../../../test/harness/index.js';
import type { NatsServer } from '../../../test/harness/index.js';
import { FleetRegistry, matchesSelector } from './fleet-registry.js';

const logger = pino({ enabled: false });
let nats: NatsServer;
let conn: MeshConnection;
// Starts at the wall clock: replayed heartbeats are judged by the stream's own timestamps.
let clock = Date.now();
const now = (): number => clock;

function heartbeat(agentId: string, labels: Record<string, string> = {}): AgentHeartbeat {
  return {
    agentId,
    at: clock,
    uptimeS: 1,
    health: 'ok',
    labels,
    models: [{ name: 'spam', version: '1', state: 'ready', requests: 10, errors: 0, p95Ms: 3 }],
  };
}

function record(agentId: string, labels: Record<string, string>): FleetRecord {
  return {
    agentId,
    publicKey: rawPublicKey(enrolledKey.publicKey),
    labels,
    enrolledAt: clock,
    enrollmentTokenId: '0123456789abcdef',
  };
}

const enrolledKey = generateKeyPairSync('ed25519');
const rawPublicKey = (key: KeyObject): string =>
  Buffer.from(key.export({ format: 'jwk' }).x as string, 'base64url').toString('base64');

/** Publishes a heartbeat, signed with `key` when given (as an enrolled agent does). */
async function publish(hb: AgentHeartbeat, subjectAgent = hb.agentId, key?: KeyObject): Promise<void> {
  const body = encode(agentHeartbeatSchema, hb);
  const headers = key
    ? toMsgHdrs({ [AGENT_SIGNATURE_HEADER]: sign(null, body, key).toString('base64') })
    : undefined;
  conn.nc.publish(agentHeartbeatSubject(subjectAgent), body, headers ? { headers } : undefined);
  await conn.nc.flush();
}

async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 10));
  expect(check()).toBe(true);
}

beforeAll(async () => {
  nats = await startNatsServer();
  conn = await connectMesh(nats.url, { name: 'fleet-test', logger });
});

afterAll(async () => {
  await conn?.close();
  await nats?.stop();
});

describe('FleetRegistry', () => {
  it('tracks heartbeats, enrolled records, presence, selectors and pages, and rebuilds after a restart', async () => {
    const fleet = new FleetRegistry({
      connection: conn,
      logger,
      now,
      staleAfterMs: 1_000,
      offlineAfterMs: 5_000,
    });
    await fleet.start();
    await fleet.createRecord(record('ag-enrolled', { site: 'eu', hw: 'pi' }));
    await expect(fleet.createRecord(record('ag-enrolled', {}))).rejects.toMatchObject({
      code: ErrorCode.CONFLICT,
    });
    for (let i = 0; i < 5; i++) await publish(heartbeat(`dev-${i}`, { site: i % 2 === 0 ? 'eu' : 'us' }));
    // The enrolled agent's record labels win over what its heartbeat says.
    await publish(heartbeat('ag-enrolled', { site: 'elsewhere' }), 'ag-enrolled', enrolledKey.privateKey);
    await until(() => fleet.get('dev-4') !== undefined && fleet.get('ag-enrolled')?.heartbeat !== undefined);

    expect(fleet.size).toBe(6);
    const enrolled = fleet.get('ag-enrolled')!;
    expect(enrolled).toMatchObject({ enrolled: true, presence: 'online', labels: { site: 'eu', hw: 'pi' } });
    expect(fleet.get('dev-0')).toMatchObject({ enrolled: false, presence: 'online', labels: { site: 'eu' } });
    expect(fleet.list({ selector: { site: 'eu' } }).map((a) => a.agentId)).toEqual([
      'ag-enrolled',
      'dev-0',
      'dev-2',
      'dev-4',
    ]);

    const first = fleet.page({}, 4);
    expect(first.total).toBe(6);
    expect(first.agents.map((a) => a.agentId)).toEqual(['ag-enrolled', 'dev-0', 'dev-1', 'dev-2']);
    const second = fleet.page({}, 4, first.nextCursor);
    expect(second.agents.map((a) => a.agentId)).toEqual(['dev-3', 'dev-4']);
    expect(second.nextCursor).toBeUndefined();

    clock += 2_000;
    expect(fleet.get('dev-0')?.presence).toBe('stale');
    clock += 5_000;
    expect(fleet.list({ presence: ['offline'] })).toHaveLength(6);
    await publish(heartbeat('dev-1'));
    await until(() => fleet.get('dev-1')?.presence === 'online');

    const updated = await fleet.updateLabels('ag-enrolled', { hw: null, ring: 'canary' }, 'ops');
    expect(updated.labels).toEqual({ site: 'eu', ring: 'canary' });
    expect(updated.labelsUpdatedBy).toBe('ops');
    await expect(fleet.updateLabels('dev-0', { a: 'b' }, 'ops')).rejects.toMatchObject({
      code: ErrorCode.NOT_FOUND,
    });
    await fleet.stop();

    // Another coordinator (or this one restarted) sees the same fleet from JetStream alone.
    const again = new FleetRegistry({
      connection: conn,
      logger,
      now,
      staleAfterMs: 1_000,
      offlineAfterMs: 5_000,
    });
    await again.start();
    expect(again.size).toBe(6);
    expect(again.get('ag-enrolled')?.labels).toEqual({ site: 'eu', ring: 'canary' });
    expect(again.get('dev-3')?.heartbeat?.models[0]?.requests).toBe(10);
    await again.deleteRecord('ag-enrolled');
    expect(again.get('ag-enrolled')?.enrolled).toBe(false);
    await again.stop();
  });

  it('drops invalid heartbeats and heartbeats sent under another agent’s subject, and keeps going', async () => {
    const fleet = new FleetRegistry({ connection: conn, logger, now });
    await fleet.start();
    const seen: string[] = [];
    fleet.onHeartbeat((hb) => seen.push(hb.agentId));
    conn.nc.publish(agentHeartbeatSubject('garbage'), new Uint8Array([1, 2, 3]));
    await publish(heartbeat('victim'), 'attacker');
    await publish(heartbeat('honest'));
    await until(() => seen.includes('honest'));
    expect(fleet.rejectedHeartbeats).toBe(2);
    expect(seen).toEqual(['honest']);
    await fleet.stop();
  });

  it('takes an enrolled agent’s heartbeats only with its signature, and drops unenrolled ones when enrollment is required', async () => {
    const { publicKey, privateKey } = generateKeyPairSync('ed25519');
    const raw = rawPublicKey(publicKey);
    const fleet = new FleetRegistry({ connection: conn, logger, now, requireEnrollment: true });
    await fleet.start();
    await fleet.createRecord({ ...record('ag-signed', { site: 'eu' }), publicKey: raw });
    const seen: number[] = [];
    fleet.onHeartbeat((hb) => seen.push(hb.at));
    const send = (hb: AgentHeartbeat, key?: KeyObject): Promise<void> => publish(hb, hb.agentId, key);
    const base = clock;
    const rejected = fleet.rejectedHeartbeats;
    await send({ ...heartbeat('ag-signed'), at: base + 100 }); // unsigned
    await send({ ...heartbeat('ag-signed'), at: base + 101 }, generateKeyPairSync('ed25519').privateKey); // someone else's key
    await send({ ...heartbeat('stranger'), at: base + 102 }); // not enrolled
    await send({ ...heartbeat('ag-signed'), at: base + 103 }, privateKey);
    await until(() => seen.includes(base + 103));
    expect(fleet.rejectedHeartbeats - rejected).toBe(3);
    expect(fleet.get('stranger')).toBeUndefined();
    // A replayed (validly signed) heartbeat, or an older one, is not taken again, and one far off
    // the coordinator's clock is refused.
    await send({ ...heartbeat('ag-signed'), at: base + 103 }, privateKey);
    await send({ ...heartbeat('ag-signed'), at: base + 50 }, privateKey);
    await send({ ...heartbeat('ag-signed'), at: base + 86_400_000 }, privateKey);
    await send({ ...heartbeat('ag-signed'), at: base + 104 }, privateKey);
    await until(() => seen.includes(base + 104));
    expect(seen).toEqual([base + 103, base + 104]);
    await fleet.stop();
    // A restarted registry checks the stored heartbeats' signatures too.
    const again = new FleetRegistry({ connection: conn, logger, now, requireEnrollment: true });
    await again.start();
    expect(again.get('ag-signed')?.heartbeat?.at).toBe(base + 104);
    await again.stop();
  });

  it('matches selectors on every key', () => {
    expect(matchesSelector({ site: 'eu', hw: 'pi' }, { site: 'eu' })).toBe(true);
    expect(matchesSelector({ site: 'eu' }, { site: 'eu', hw: 'pi' })).toBe(false);
    expect(matchesSelector({}, {})).toBe(true);
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pino from 'pino';
import type { KV } from '@nats-io/kv';
import { connectMesh, openRegistryKv } from '@infermesh/mesh-client';
import type { MeshConnection } from '@infermesh/mesh-client';
import { startNatsServer } from '../../../test/harness/index.js';
import type { NatsServer } from '../../../test/harness/index.js';
import { acquireLease, readLease, releaseLease } from './kv-lease.js';

let nats: NatsServer;
let conn: MeshConnection;
let kv: KV;

beforeAll(async () => {
  nats = await startNatsServer();
  conn = await connectMesh(nats.url, { name: 'lease-test', logger: pino({ enabled: false }) });
  kv = await openRegistryKv(conn, 'im_v1_lease_test', 'lease test', { create: true });
});

afterAll(async () => {
  await conn?.close();
  await nats?.stop();
});

describe('KV leases', () => {
  it('has one holder at a time: renewals keep it, others wait for expiry, release frees it', async () => {
    const first = await acquireLease(kv, 'lease.a', 'one', 1_000, 10_000);
    expect(first).toMatchObject({ held: true, acquired: true });
    expect(await acquireLease(kv, 'lease.a', 'two', 1_000, 10_500)).toEqual({
      held: false,
      holder: 'one',
      expiresAt: 11_000,
    });
    const renewed = await acquireLease(kv, 'lease.a', 'one', 1_000, 10_800);
    expect(renewed).toMatchObject({
      held: true,
      acquired: false,
      lease: { acquiredAt: 10_000, expiresAt: 11_800 },
    });
    // Expired: the other takes it over and learns whose lease it replaced.
    const takeover = await acquireLease(kv, 'lease.a', 'two', 1_000, 12_000);
    expect(takeover).toMatchObject({ held: true, acquired: true, previous: { holder: 'one' } });
    // A former holder's release does not free someone else's lease.
    await releaseLease(kv, 'lease.a', 'one');
    expect((await readLease(kv, 'lease.a')).lease?.holder).toBe('two');
    await releaseLease(kv, 'lease.a', 'two');
    expect((await readLease(kv, 'lease.a')).lease).toBeNull();
    expect(await acquireLease(kv, 'lease.a', 'three', 1_000, 12_100)).toMatchObject({ held: true });
  });

  it('lets exactly one of many concurrent contenders win a free lease', async () => {
    for (let round = 0; round < 5; round++) {
      const key = `lease.race${round}`;
      const outcomes = await Promise.all(
        Array.from({ length: 6 }, (_, i) => acquireLease(kv, key, `c${i}`, 5_000, 1_000)),
      );
      expect(outcomes.filter((o) => o.held)).toHaveLength(1);
    }
  });

  it('throws UNAVAILABLE instead of reporting a lost race while NATS is down, and works again after', async () => {
    const own = await startNatsServer();
    const ownConn = await connectMesh(own.url, { name: 'lease-down', logger: pino({ enabled: false }) });
    try {
      const ownKv = await openRegistryKv(ownConn, 'im_v1_lease_down', 'lease test', { create: true });
      expect(await acquireLease(ownKv, 'lease.d', 'one', 60_000, 1_000)).toMatchObject({ held: true });
      await own.stop();
      // A renewal during the outage: not a lost race, so the holder keeps believing it holds it.
      const during = await acquireLease(ownKv, 'lease.d', 'one', 60_000, 2_000).then(
        (outcome) => ({ outcome }),
        (err: unknown) => ({ err: err as { code?: string; name?: string } }),
      );
      expect(during).toMatchObject({ err: { name: 'InferMeshError', code: 'UNAVAILABLE' } });
      await own.restart();
      await waitForLease(() => acquireLease(ownKv, 'lease.d', 'one', 60_000, 3_000));
      // Someone else still loses the race once the server is back.
      expect(await acquireLease(ownKv, 'lease.d', 'two', 60_000, 3_100)).toMatchObject({
        held: false,
        holder: 'one',
      });
    } finally {
      await ownConn.close();
      await own.stop();
    }
  }, 30_000);
});

/** Retries `call` while it throws UNAVAILABLE (the client reconnecting), until it answers held. */
async function waitForLease(call: () => ReturnType<typeof acquireLease>): Promise<void> {
  const until = Date.now() + 15_000;
  for (;;) {
    try {
      expect(await call()).toMatchObject({ held: true, acquired: false });
      return;
    } catch (err) {
      if ((err as { code?: string }).code !== 'UNAVAILABLE' || Date.now() > until) throw err;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}

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
});

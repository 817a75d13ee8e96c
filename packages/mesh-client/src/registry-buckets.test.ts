import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNatsServer } from '../../../test/harness/nats-server.js';
import type { NatsServer } from '../../../test/harness/nats-server.js';
import { connectMesh } from './connection.js';
import type { MeshConnection } from './connection.js';
import { listKeys, openRegistryKv } from './registry-buckets.js';

let nats: NatsServer;
let conn: MeshConnection;

beforeAll(async () => {
  nats = await startNatsServer();
  conn = await connectMesh(nats.url, { name: 'list-keys-test' });
});

afterAll(async () => {
  await conn?.close();
  await nats?.stop();
});

describe('listKeys', () => {
  it('names every matching key once, also while the values are being rewritten', async () => {
    const kv = await openRegistryKv(conn, 'im_v1_list_keys_test', 'test', { create: true });
    const keys = Array.from({ length: 300 }, (_, i) => `run.k${i}`);
    await Promise.all(keys.map((k) => kv.put(k, '0')));
    await kv.put('other.k', '0');
    // Rewrites race the listing (as a rollout driver's ticks do).
    const writing = (async () => {
      for (let round = 1; round <= 3; round++) await Promise.all(keys.map((k) => kv.put(k, String(round))));
    })();
    const listed = await listKeys(kv, 'run.*');
    await writing;
    expect(new Set(listed).size).toBe(listed.length);
    expect([...listed].sort()).toEqual([...keys].sort());
    expect(await listKeys(kv)).toHaveLength(301);
  });
});

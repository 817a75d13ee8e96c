import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pino from 'pino';
import type { KV } from '@nats-io/kv';
import { connectMesh, openRegistryKv } from '@infermesh/mesh-client';
import type { MeshConnection } from '@infermesh/mesh-client';
import { ACTIVE_CLAIM_STALE_MS, rolloutActiveKey } from '@infermesh/protocols';
import { startNatsServer } from '../../../test/harness/index.js';
import type { NatsServer } from '../../../test/harness/index.js';
import { claimActiveRollout, releaseActiveRollout } from './active-rollout.js';
import type { ClaimedRolloutStatus } from './active-rollout.js';

let nats: NatsServer;
let conn: MeshConnection;
let kv: KV;

beforeAll(async () => {
  nats = await startNatsServer();
  conn = await connectMesh(nats.url, { name: 'active-rollout-test', logger: pino({ enabled: false }) });
  kv = await openRegistryKv(conn, 'im_v1_active_rollout_test', 'active rollout test', { create: true });
});

afterAll(async () => {
  await conn?.close();
  await nats?.stop();
});

/** Rollout states as a store would report them. */
function statuses(
  known: Record<string, ClaimedRolloutStatus>,
): (id: string) => Promise<ClaimedRolloutStatus> {
  return (id) => Promise.resolve(known[id] ?? 'missing');
}

const claimant = async (model: string): Promise<string | undefined> => {
  const entry = await kv.get(rolloutActiveKey(model));
  return entry?.operation === 'PUT' ? entry.json<{ rolloutId: string }>().rolloutId : undefined;
};

describe('the live-rollout claim of a model', () => {
  it('lets exactly one of many concurrent starts claim a model; the others learn who won', async () => {
    for (let round = 0; round < 5; round++) {
      const model = `race${round}`;
      const ids = Array.from({ length: 6 }, (_, i) => `ro-race${round}x${i}`);
      const outcomes = await Promise.all(
        ids.map((id) => claimActiveRollout(kv, model, id, 1_000, statuses({}))),
      );
      const winners = outcomes.filter((o) => o.claimed);
      expect(winners).toHaveLength(1);
      const winner = ids[outcomes.findIndex((o) => o.claimed)];
      expect(await claimant(model)).toBe(winner);
      for (const outcome of outcomes) {
        if (!outcome.claimed) expect(outcome.rolloutId).toBe(winner);
      }
    }
  });

  it('keeps a live rollout, replaces an ended one, and a start that never stored its record once stale', async () => {
    expect(await claimActiveRollout(kv, 'm1', 'ro-first1', 10_000, statuses({}))).toMatchObject({
      claimed: true,
    });
    // Claiming again for the same rollout (a rollback retried) is a no-op success.
    expect(await claimActiveRollout(kv, 'm1', 'ro-first1', 10_001, statuses({}))).toMatchObject({
      claimed: true,
    });
    const live = statuses({ 'ro-first1': 'live' });
    expect(await claimActiveRollout(kv, 'm1', 'ro-second1', 20_000, live)).toEqual({
      claimed: false,
      rolloutId: 'ro-first1',
    });
    // Ended, but its release was lost (a coordinator died): the claim is stale.
    const ended = statuses({ 'ro-first1': 'final' });
    expect(await claimActiveRollout(kv, 'm1', 'ro-second1', 20_000, ended)).toMatchObject({ claimed: true });
    expect(await claimant('m1')).toBe('ro-second1');
    // A claim whose record does not exist: a start in progress, until it is older than the limit.
    expect(await claimActiveRollout(kv, 'm1', 'ro-third1', 20_000 + 1_000, statuses({}))).toEqual({
      claimed: false,
      rolloutId: 'ro-second1',
    });
    const later = 20_000 + ACTIVE_CLAIM_STALE_MS + 1;
    expect(await claimActiveRollout(kv, 'm1', 'ro-third1', later, statuses({}))).toMatchObject({
      claimed: true,
    });
  });

  it('is released only by the rollout it names, and then free for the next one', async () => {
    await claimActiveRollout(kv, 'm2', 'ro-owner2', 1_000, statuses({}));
    await releaseActiveRollout(kv, 'm2', 'ro-other2');
    expect(await claimant('m2')).toBe('ro-owner2');
    await releaseActiveRollout(kv, 'm2', 'ro-owner2');
    expect(await claimant('m2')).toBeUndefined();
    const live = statuses({ 'ro-owner2': 'live' });
    expect(await claimActiveRollout(kv, 'm2', 'ro-next2', 2_000, live)).toMatchObject({ claimed: true });
    expect(await claimant('m2')).toBe('ro-next2');
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pino from 'pino';
import { DesiredStateStore, connectMesh } from '@infermesh/mesh-client';
import type { MeshConnection } from '@infermesh/mesh-client';
import { ROLLOUT_DEFAULTS, rolloutSetBy } from '@infermesh/protocols';
import type { DesiredModel, Rollout } from '@infermesh/protocols';
import { startNatsServer } from '../../../test/harness/index.js';
import type { NatsServer } from '../../../test/harness/index.js';
import { DesiredRemoval } from './desired-removal.js';
import { chunkPlannedSteps } from './rollout-agents.js';
import { RolloutDriver } from './rollout-driver.js';
import { RolloutStore } from './rollout-store.js';

let nats: NatsServer;
let conn: MeshConnection;
let store: RolloutStore;
let desired: DesiredStateStore;
let removal: DesiredRemoval;
const logger = pino({ enabled: false });

beforeAll(async () => {
  nats = await startNatsServer();
  conn = await connectMesh(nats.url, { name: 'rollback-restore-test', logger });
  store = await RolloutStore.open(conn);
  desired = await DesiredStateStore.open(conn, { create: true });
  removal = await DesiredRemoval.open(conn);
});

afterAll(async () => {
  await conn?.close();
  await nats?.stop();
});

const MODEL = 'rb';
const pin = (version: string): DesiredModel => ({
  model: MODEL,
  version,
  source: 'pin',
  setBy: 'ops',
  at: 2,
});

/** A rollout of `rb@2` to `agents` that wrote them all and is rolling back now. */
async function rollingBack(id: string, agents: string[]): Promise<void> {
  const { steps, chunks } = chunkPlannedSteps(id, [{ kind: 'canary', percent: 100, agents }]);
  for (const chunk of chunks) {
    chunk.agents = chunk.agents.map((a) => ({ ...a, state: 'applied', captured: true, previous: null }));
  }
  const rollout: Rollout = {
    id,
    spec: { ...ROLLOUT_DEFAULTS, waves: [100], model: MODEL, version: '2', selector: {} },
    state: 'running',
    step: 0,
    phase: 'rolling_back',
    steps,
    targets: agents.length,
    skipped: [],
    skippedTotal: 0,
    events: [],
    createdBy: 'test',
    createdAt: 1,
    updatedAt: 1,
  };
  await store.create(rollout, chunks);
  for (const agentId of agents) {
    await desired.set(agentId, {
      model: MODEL,
      version: '2',
      source: 'rollout',
      setBy: rolloutSetBy(id),
      at: 1,
    });
  }
}

function driverWith(desiredView: DesiredStateStore): RolloutDriver {
  return new RolloutDriver({
    store,
    desired: desiredView,
    removal,
    fleet: { list: () => [], get: () => undefined },
    holder: 'test',
    logger,
    now: Date.now,
    latencyOf: () => ({ cohort: [], rest: [] }),
    resetLatency: () => undefined,
    consumeLatency: () => undefined,
    latencySaveIntervalMs: 1_000,
  });
}

describe('rollback restores with compare-and-set', () => {
  it("removes the rollout's value only where it still stands", async () => {
    await rollingBack('ro-rbplain1', ['rb-a', 'rb-b']);
    const driver = driverWith(desired);
    const done = await driver.advance(await store.require('ro-rbplain1'));
    expect(done?.rollout.state).toBe('rolled_back');
    expect(await desired.getModel('rb-a', MODEL)).toBeNull();
    expect(await desired.getModel('rb-b', MODEL)).toBeNull();
  });

  it("keeps an operator's pin made between the rollback's read and its removal", async () => {
    await rollingBack('ro-rbrace01', ['rb-pinned', 'rb-other']);
    // The operator pins rb-pinned right after the driver has read the rollout's value there.
    let pinned = false;
    const racing = new Proxy(desired, {
      get(target, property, receiver) {
        if (property !== 'getModel') return Reflect.get(target, property, receiver) as unknown;
        return async (agentId: string, model: string) => {
          const entry = await target.getModel(agentId, model);
          if (agentId === 'rb-pinned' && !pinned) {
            pinned = true;
            await target.set(agentId, pin('1'));
          }
          return entry;
        };
      },
    });
    const driver = driverWith(racing);
    let stored = await store.require('ro-rbrace01');
    for (let i = 0; i < 5 && stored.rollout.state !== 'rolled_back'; i += 1) {
      stored = (await driver.advance(stored)) ?? (await store.require('ro-rbrace01'));
    }
    expect(pinned).toBe(true);
    expect(stored.rollout.state).toBe('rolled_back');
    expect((await desired.getModel('rb-pinned', MODEL))?.desired).toEqual(pin('1'));
    expect(await desired.getModel('rb-other', MODEL)).toBeNull();
    const [chunk] = await store.chunks('ro-rbrace01', 0, 1);
    expect(chunk?.chunk.agents.find((a) => a.agentId === 'rb-pinned')).toMatchObject({
      state: 'restored',
      reason: 'desired state changed by someone else; left alone',
    });
  });

  it('refuses to remove a value that changed since the given revision', async () => {
    const written = await desired.set('rb-c', {
      model: MODEL,
      version: '2',
      source: 'rollout',
      setBy: 'x',
      at: 1,
    });
    await desired.set('rb-c', pin('1'));
    await expect(removal.removeIfAt('rb-c', MODEL, written)).rejects.toMatchObject({ code: 'CONFLICT' });
    expect((await desired.getModel('rb-c', MODEL))?.desired.source).toBe('pin');
  });
});

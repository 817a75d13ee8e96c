/**
 * Rollouts survive their coordinator, with real processes: two `infermesh coordinator` processes
 * share the rollouts bucket and four `infermesh agent` processes. While both run, exactly one
 * drives a rollout (the record names one driver, every step it wrote is its own); SIGKILLed mid-
 * rollout, the other takes over only once the dead one's lease expired, and finishes. A lone
 * coordinator SIGKILLed mid-rollout and started again resumes where it was and finishes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Rollout, RolloutEvent } from '@infermesh/protocols';
import {
  MODEL,
  goodModel,
  rolloutAgents,
  seedFirstVersion,
  startRollout,
  startRolloutMesh,
  waitRollout,
  waitServing,
  rolloutEnded,
} from './rollout-support.js';
import type { RolloutMesh } from './rollout-support.js';

const LEASE_TTL_MS = 2_000;
let mesh: RolloutMesh;

beforeAll(async () => {
  mesh = await startRolloutMesh({
    agents: 4,
    coordinators: ['c-a', 'c-b'],
    leaseTtlMs: LEASE_TTL_MS,
    tickIntervalMs: 200,
  });
  await seedFirstVersion(mesh, '1', goodModel(1));
}, 90_000);

afterAll(async () => {
  await mesh?.dispose();
});

const coordinatorOf = (holder: string | undefined): string => (holder ?? '').split('/')[0] as string;

/** Starts a rollout of `version` baking 2.5 s per step, and waits until its second step began. */
async function rolloutMidway(version: string): Promise<Rollout> {
  await mesh.admin().pushVersion(MODEL, version, goodModel(Number(version)));
  const started = await startRollout(mesh, {
    model: MODEL,
    version,
    canaryPercent: 25,
    waves: [50, 100],
    bakeMs: 2_500,
    readyTimeoutMs: 20_000,
  });
  expect(started.steps.map((s) => s.agents)).toEqual([1, 1, 2]);
  return waitRollout(
    mesh,
    started.id,
    (r) => r.step >= 1 && r.driver !== undefined,
    'the second step',
    20_000,
  );
}

/** Checks that the events show one driver at a time, each taking over only after the lease before expired. */
function expectOneDriverAtATime(events: readonly RolloutEvent[]): RolloutEvent[] {
  const takeovers = events.filter((e) => e.type === 'driver');
  let current: string | undefined;
  for (const event of events) {
    if (event.type === 'driver') {
      if (current !== undefined) {
        expect(event.details?.['previousHolder']).toBe(current);
        expect(event.at).toBeGreaterThanOrEqual(event.details?.['previousExpiresAt'] as number);
      }
      current = event.driver;
      continue;
    }
    if (event.driver !== undefined) expect(event.driver).toBe(current);
  }
  return takeovers;
}

describe('rollouts across coordinator failures', () => {
  it('is driven by one of two coordinators at a time; the other takes over after the lease of a killed one expires', async () => {
    const midway = await rolloutMidway('2');
    const driver = coordinatorOf(midway.driver);
    expect(['c-a', 'c-b']).toContain(driver);
    // Both run: the record names one driver, and nobody else has taken over.
    expect(midway.events.filter((e) => e.type === 'driver')).toHaveLength(1);
    await mesh.coordinators.get(driver)?.process.kill();

    const done = await waitRollout(mesh, midway.id, rolloutEnded, 'the rollout to finish after the takeover');
    expect(done.state).toBe('succeeded');
    const takeovers = expectOneDriverAtATime(done.events);
    expect(takeovers.map((e) => coordinatorOf(e.driver))).toEqual([driver, driver === 'c-a' ? 'c-b' : 'c-a']);
    await waitServing(mesh, mesh.agentIds, '2');
  });

  it('resumes a rollout where it was when its lone coordinator is killed and started again', async () => {
    const survivor = [...mesh.coordinators.entries()].find(
      ([, c]) => c.process.child.exitCode === null && c.process.child.signalCode === null,
    )?.[0] as string;
    const midway = await rolloutMidway('3');
    expect(coordinatorOf(midway.driver)).toBe(survivor);
    await mesh.coordinators.get(survivor)?.process.kill();
    const stepAtKill = midway.step;
    await mesh.startCoordinator(survivor);

    const done = await waitRollout(mesh, midway.id, rolloutEnded, 'the resumed rollout to finish');
    expect(done.state).toBe('succeeded');
    const takeovers = expectOneDriverAtATime(done.events);
    // The restarted process is a new holder that waited for its former life's lease.
    expect(takeovers).toHaveLength(2);
    expect(takeovers.map((e) => coordinatorOf(e.driver))).toEqual([survivor, survivor]);
    expect(takeovers[0]?.driver).not.toBe(takeovers[1]?.driver);
    // Steps passed before the kill were not run again.
    const passed = done.events.filter((e) => e.type === 'gate.passed').map((e) => e.step);
    expect(passed).toEqual([0, 1, 2]);
    expect(stepAtKill).toBeGreaterThanOrEqual(1);
    expect(done.steps.reduce((sum, s) => sum + s.counts.ready, 0)).toBe(4);
    expect((await rolloutAgents(mesh, done.id)).every((a) => a.state === 'ready')).toBe(true);
    await waitServing(mesh, mesh.agentIds, '3');
  });
});

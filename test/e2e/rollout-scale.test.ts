/**
 * Rollouts at fleet scale: 5,000 simulated agents (real heartbeats over NATS to a real coordinator
 * process, no agent processes) go through a canary and a wave, then the finished rollout is rolled
 * back. Every KV value written meanwhile stays far below NATS' 1 MB payload (the rollout record
 * keeps counts; agents live in bounded chunks), the record answers per-step counts, and the agents
 * page through `GET /rollouts/{id}/agents`; the rollback restores exactly (a seeded value comes
 * back, an agent that had none has none again).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rolloutsBucket } from '@infermesh/protocols';
import type { Rollout, RolloutAgent, RolloutAgentPage } from '@infermesh/protocols';
import { MODEL, goodModel, startRollout, startRolloutMesh, waitRollout } from './rollout-support.js';
import type { RolloutMesh } from './rollout-support.js';
import { recordKvValueSizes, startSimulatedFleet } from './rollout-simulated-fleet.js';
import type { SimulatedFleet } from './rollout-simulated-fleet.js';

const AGENTS = 5_000;
/** Largest KV value the test accepts (NATS refuses anything above 1 MB). */
const MAX_VALUE_BYTES = 256 * 1024;

let mesh: RolloutMesh;
let fleet: SimulatedFleet;
let sizes: ReturnType<typeof recordKvValueSizes>;
const agentIds = Array.from({ length: AGENTS }, (_, i) => `sim-${i.toString().padStart(5, '0')}`);
/** Half the agents hold version 1 from an earlier rollout; the others hold no desired value. */
const seeded = agentIds.filter((_, i) => i % 2 === 0);

beforeAll(async () => {
  mesh = await startRolloutMesh({ agents: 0, coordinators: ['c-scale'], leaseTtlMs: 6_000 });
  sizes = recordKvValueSizes(mesh.connection);
  await mesh.admin().pushVersion(MODEL, '1', goodModel(1));
  await mesh.admin().pushVersion(MODEL, '2', goodModel(2));
  for (let i = 0; i < seeded.length; i += 250) {
    await Promise.all(
      seeded.slice(i, i + 250).map((agentId) =>
        mesh.desired.set(agentId, {
          model: MODEL,
          version: '1',
          source: 'rollout',
          setBy: 'rollout:seed',
          at: 1,
        }),
      ),
    );
  }
  fleet = await startSimulatedFleet({
    connection: mesh.connection,
    agentIds,
    model: MODEL,
    baseVersion: '1',
    intervalMs: 1_000,
  });
  // Every simulated agent is in the fleet registry.
  await waitFleet(AGENTS);
}, 60_000);

afterAll(async () => {
  sizes?.stop();
  await fleet?.stop();
  await mesh?.dispose();
});

async function waitFleet(count: number): Promise<void> {
  const until = Date.now() + 30_000;
  for (;;) {
    const page = (await mesh.admin().call('GET', '/fleet/agents?limit=1&selector=fleet%3Dsimulated')) as {
      total?: number;
    };
    if ((page.total ?? 0) >= count) return;
    if (Date.now() > until) throw new Error(`the fleet registry has ${page.total ?? 0} of ${count} agents`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** Every agent of a rollout, paging through the admin API. */
async function allAgents(id: string, limit: number): Promise<{ agents: RolloutAgent[]; pages: number }> {
  const agents: RolloutAgent[] = [];
  let cursor: string | undefined;
  let pages = 0;
  do {
    const query = `limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`;
    const page = (await mesh.admin().call('GET', `/rollouts/${id}/agents?${query}`)) as RolloutAgentPage;
    agents.push(...page.agents);
    cursor = page.nextCursor;
    pages += 1;
  } while (cursor !== undefined);
  return { agents, pages };
}

describe('rollouts over 5,000 simulated agents', () => {
  it('goes through a canary and a wave and rolls back with every KV value bounded', async () => {
    const started = await startRollout(mesh, {
      model: MODEL,
      version: '2',
      selector: { fleet: 'simulated' },
      canaryPercent: 10,
      waves: [100],
      bakeMs: 0,
      readyTimeoutMs: 60_000,
    });
    expect(started.targets).toBe(AGENTS);
    expect(started.steps.map((s) => s.agents)).toEqual([500, 4_500]);
    expect(started).not.toHaveProperty('agents');

    const done = await waitRollout(
      mesh,
      started.id,
      (r) => r.state !== 'running',
      'the rollout to finish',
      60_000,
    );
    expect(done.state).toBe('succeeded');
    expect(done.steps.map((s) => s.counts.ready)).toEqual([500, 4_500]);
    expect(done.steps.every((s) => s.passedAt !== undefined)).toBe(true);
    expect([...fleet.serving.values()].every((v) => v === '2')).toBe(true);

    // Per-agent detail pages in rollout order: canary first, every target once.
    const listed = await allAgents(started.id, 1_000);
    expect(listed.pages).toBe(5);
    expect(new Set(listed.agents.map((a) => a.agentId)).size).toBe(AGENTS);
    expect(listed.agents.slice(0, 500).every((a) => a.step === 0)).toBe(true);
    expect(listed.agents.every((a) => a.state === 'ready' && a.captured)).toBe(true);
    const canary = (await mesh
      .admin()
      .call('GET', `/rollouts/${started.id}/agents?step=0&limit=1000`)) as RolloutAgentPage;
    expect(canary.agents).toHaveLength(500);
    expect(canary.nextCursor).toBeUndefined();
    const agentsPath = `/rollouts/${started.id}/agents`;
    await expect(mesh.admin().call('GET', `${agentsPath}?cursor=nope`)).rejects.toThrow(
      /: 400 .*INVALID_INPUT/,
    );
    await expect(mesh.admin().call('GET', `${agentsPath}?step=2`)).rejects.toThrow(
      /: 400 .*step 2 does not exist/,
    );
    await expect(mesh.admin().call('GET', `${agentsPath}?limit=5000`)).rejects.toThrow(/: 400 /);

    await mesh.admin().call('POST', `/rollouts/${started.id}/rollback`);
    const back: Rollout = await waitRollout(
      mesh,
      started.id,
      (r) => r.state === 'rolled_back',
      'the rollback',
      60_000,
    );
    expect(back.steps.map((s) => s.counts.restored)).toEqual([500, 4_500]);
    const restored = await allAgents(started.id, 700);
    const seededSet = new Set(seeded);
    for (const agent of restored.agents) {
      expect(agent.reason).toBe(seededSet.has(agent.agentId) ? 'back to 1' : 'desired value removed');
    }
    // Exactly as before: the seeded value again, or none.
    const holders = await mesh.desired.holdersOf(MODEL);
    expect(holders.map((h) => h.agentId).sort()).toEqual([...seeded].sort());
    expect(holders.every((h) => h.desired.version === '1' && h.desired.setBy === 'rollout:seed')).toBe(true);

    if (process.env.ROLLOUT_SCALE_REPORT) console.log(JSON.stringify([...sizes.largest]));
    // The rollout record and the chunks were measured, and nothing written came near the limit.
    expect(sizes.largest.get(rolloutsBucket())?.bytes).toBeGreaterThan(1_000);
    for (const [bucket, top] of sizes.largest) {
      expect(top.bytes, `${bucket} ${top.key}`).toBeLessThan(MAX_VALUE_BYTES);
    }
  }, 120_000);
});

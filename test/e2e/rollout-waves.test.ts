/**
 * Staged rollouts end to end with real processes: nats-server, an `infermesh coordinator` and ten
 * `infermesh agent` processes. A good version moves through the canary and three waves, each wave
 * written only after the step before passed its gates; a version that fails its self-test, and one
 * that loads but fails the traffic's requests, are rolled back after the canary and never reach the
 * other agents; a rollout with a label selector reaches exactly the agents carrying those labels
 * (four agents run with `site=eu`, six with `site=us`); a version slower than `--max-p95-ms` is
 * rolled back after the canary; a viewer may not start a rollout.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Rollout } from '@infermesh/protocols';
import { E2E_ADMIN_TOKEN } from '../harness/index.js';
import {
  MODEL,
  failsBatchOfTwoModel,
  failsSelfTestModel,
  goodModel,
  rolloutAgents,
  runCli,
  seedFirstVersion,
  slowModel,
  startRollout,
  startRolloutMesh,
  startTraffic,
  stepAgents,
  waitRollout,
  waitServing,
  rolloutEnded,
} from './rollout-support.js';
import type { RolloutMesh } from './rollout-support.js';

let mesh: RolloutMesh;
/** Agents 0-3 carry `site=eu`, 4-9 `site=us`. */
const EU_AGENTS = 4;
const siteOf = (index: number): string => (index < EU_AGENTS ? 'eu' : 'us');

beforeAll(async () => {
  mesh = await startRolloutMesh({
    agents: 10,
    coordinators: ['c-ro'],
    labelsOf: (index) => ({ site: siteOf(index) }),
  });
  await seedFirstVersion(mesh, '1', goodModel(1));
}, 90_000);

afterAll(async () => {
  await mesh?.dispose();
});

const canaryOf = (r: Rollout): Promise<string[]> => stepAgents(mesh, r.id, 0);

/** Checks that no agent outside the canary ever had `version` as its desired value. */
async function expectNeverReachedBeyondCanary(r: Rollout, version: string): Promise<void> {
  const canary = new Set(await canaryOf(r));
  for (const agentId of mesh.agentIds) {
    const versions = (mesh.history.get(agentId) ?? []).map((h) => h.version);
    if (canary.has(agentId)) expect(versions).toContain(version);
    else expect(versions).not.toContain(version);
  }
}

describe('staged rollouts across ten agents', () => {
  it('moves a good version through the canary and the waves, each wave after the previous step passed', async () => {
    await mesh.admin().pushVersion(MODEL, '2', goodModel(2));
    // `infermesh rollout start` follows the rollout (one line per change off a terminal) to its end.
    const cli = await runCli([
      'rollout',
      'start',
      `${MODEL}@2`,
      '--canary',
      '10',
      '--waves',
      '30,60,100',
      '--bake',
      '1s',
      '--ready-timeout',
      '20s',
      '--url',
      mesh.admin().url,
      '--token',
      E2E_ADMIN_TOKEN,
    ]);
    expect(cli.code, cli.stderr).toBe(0);
    const output = cli.stdout;
    const id = /^(ro-[a-z0-9]+)$/m.exec(output)?.[1] as string;
    expect(output).toMatch(new RegExp(`${id} succeeded step 4/4 done 10/10 ready`));
    const done = (await mesh.admin().call('GET', `/rollouts/${id}`)) as Rollout;
    expect(done.steps.map((s) => s.agents)).toEqual([1, 2, 3, 4]);
    const agents = await rolloutAgents(mesh, id);
    expect(done.state).toBe('succeeded');
    expect(agents.every((a) => a.state === 'ready')).toBe(true);
    await waitServing(mesh, mesh.agentIds, '2');
    for (const [index, step] of done.steps.entries()) {
      for (const { agentId } of agents.filter((a) => a.step === index)) {
        const written = (mesh.history.get(agentId) ?? []).find((h) => h.version === '2');
        expect(written?.setBy).toBe(`rollout:${done.id}`);
        if (index > 0) {
          // Written only once the previous step's gates passed.
          expect(written?.at).toBeGreaterThanOrEqual(done.steps[index - 1]?.passedAt as number);
        }
      }
      expect(step.passedAt).toBeGreaterThanOrEqual((step.bakeStartedAt as number) + 1_000);
    }
    // Each agent's previous value (the seed) is kept for a rollback.
    expect(agents.every((a) => a.previous?.version === '1')).toBe(true);
  });

  it('rolls back a version that fails its self-test after the canary; no other agent ever gets it', async () => {
    await mesh.admin().pushVersion(MODEL, '3', failsSelfTestModel());
    const started = await startRollout(mesh, {
      model: MODEL,
      version: '3',
      canaryPercent: 20,
      waves: [50, 100],
      bakeMs: 1_000,
      readyTimeoutMs: 20_000,
    });
    const done = await waitRollout(mesh, started.id, rolloutEnded, 'the self-test rollout to finish');
    expect(done.state).toBe('rolled_back');
    expect(done.lastGate?.verdict).toBe('fail');
    expect(done.reason).toMatch(/failed to load: self-test-failed/);
    expect(done.step).toBe(0);
    await expectNeverReachedBeyondCanary(done, '3');
    for (const agentId of await canaryOf(done)) {
      const entry = await mesh.desired.getModel(agentId, MODEL);
      expect(entry?.desired).toMatchObject({ version: '2', source: 'rollout' });
    }
    await waitServing(mesh, mesh.agentIds, '2');
  });

  it('rolls back a version whose error rate under traffic exceeds the gate, after the canary', async () => {
    await mesh.admin().pushVersion(MODEL, '4', failsBatchOfTwoModel());
    const traffic = startTraffic(mesh);
    try {
      const started = await startRollout(mesh, {
        model: MODEL,
        version: '4',
        canaryPercent: 20,
        waves: [50, 100],
        bakeMs: 1_500,
        minRequests: 5,
        maxErrorRate: 0.05,
        readyTimeoutMs: 20_000,
      });
      const done = await waitRollout(mesh, started.id, rolloutEnded, 'the error-rate rollout to finish');
      expect(done.state).toBe('rolled_back');
      expect(done.lastGate).toMatchObject({ verdict: 'fail', step: 0 });
      expect(done.lastGate?.cohort.errorRate).toBeGreaterThan(0.05);
      expect(done.lastGate?.cohort.failedLoads).toEqual([]);
      expect(done.lastGate?.rest.requests).toBeGreaterThan(0);
      expect(done.lastGate?.rest.errorRate ?? 0).toBeLessThan(0.05);
      expect(done.reason).toMatch(/error rate/);
      const status = await runCli([
        'rollout',
        'status',
        done.id,
        '--url',
        mesh.admin().url,
        '--token',
        E2E_ADMIN_TOKEN,
      ]);
      expect(status.code).toBe(0);
      expect(status.stdout).toMatch(/gate fail: cohort \d+ req, errors [\d.]+%/);
      await expectNeverReachedBeyondCanary(done, '4');
      await waitServing(mesh, await canaryOf(done), '2');
    } finally {
      await traffic.stop();
    }
  });

  it("reaches exactly the agents a label selector picks; no other agent's desired state is ever written", async () => {
    const eu = mesh.agentIds.filter((_, i) => siteOf(i) === 'eu');
    const us = mesh.agentIds.filter((_, i) => siteOf(i) === 'us');
    await mesh.admin().pushVersion(MODEL, '5', goodModel(5));
    const usWritesBefore = new Map(us.map((id) => [id, (mesh.history.get(id) ?? []).length]));
    const cli = await runCli([
      'rollout',
      'start',
      `${MODEL}@5`,
      '--selector',
      'site=eu',
      '--canary',
      '25',
      '--waves',
      '100',
      '--bake',
      '500ms',
      '--ready-timeout',
      '20s',
      '--url',
      mesh.admin().url,
      '--token',
      E2E_ADMIN_TOKEN,
    ]);
    expect(cli.code, cli.stderr).toBe(0);
    const id = /^(ro-[a-z0-9]+)$/m.exec(cli.stdout)?.[1] as string;
    const done = (await mesh.admin().call('GET', `/rollouts/${id}`)) as Rollout;
    expect(done.state).toBe('succeeded');
    expect(done.spec.selector).toEqual({ site: 'eu' });
    expect((await rolloutAgents(mesh, id)).map((a) => a.agentId).sort()).toEqual([...eu].sort());
    expect(done.steps.map((s) => s.agents)).toEqual([1, 3]);
    expect(done.skipped).toEqual([]);
    await waitServing(mesh, eu, '5');
    for (const agentId of eu) {
      expect((await mesh.desired.getModel(agentId, MODEL))?.desired).toMatchObject({
        version: '5',
        setBy: `rollout:${id}`,
      });
    }
    for (const agentId of us) {
      // Not one write to a us agent's desired state since the rollout started.
      expect((mesh.history.get(agentId) ?? []).length).toBe(usWritesBefore.get(agentId));
      expect((mesh.history.get(agentId) ?? []).map((h) => h.version)).not.toContain('5');
      expect((await mesh.desired.getModel(agentId, MODEL))?.desired.version).toBe('2');
    }
    await waitServing(mesh, us, '2');
  });

  it('rolls back a version whose p95 latency under traffic exceeds --max-p95-ms, after the canary', async () => {
    await mesh.admin().pushVersion(MODEL, '6', slowModel());
    const traffic = startTraffic(mesh);
    try {
      const cli = await runCli([
        'rollout',
        'start',
        `${MODEL}@6`,
        '--canary',
        '10',
        '--waves',
        '100',
        '--bake',
        '2s',
        '--min-requests',
        '5',
        '--max-error-rate',
        '0.5',
        '--max-p95-ms',
        '25',
        '--ready-timeout',
        '20s',
        '--url',
        mesh.admin().url,
        '--token',
        E2E_ADMIN_TOKEN,
      ]);
      // Rolled back: `start` says so and exits 1.
      expect(cli.code).toBe(1);
      const id = /^(ro-[a-z0-9]+)$/m.exec(cli.stdout)?.[1] as string;
      expect(cli.stderr).toContain(`rollout ${id} rolled_back`);
      const done = (await mesh.admin().call('GET', `/rollouts/${id}`)) as Rollout;
      expect(done.state).toBe('rolled_back');
      expect(done.lastGate).toMatchObject({
        verdict: 'fail',
        step: 0,
        cohort: { errors: 0, failedLoads: [] },
      });
      expect(done.lastGate?.cohort.p95Ms).toBeGreaterThan(25);
      expect(done.reason).toMatch(/p95 latency [\d.]+ ms is above maxP95Ms 25 ms/);
      await expectNeverReachedBeyondCanary(done, '6');
    } finally {
      await traffic.stop();
    }
  });

  it('refuses a rollout started by a viewer (403) and one of a version not in the registry (404)', async () => {
    const user = (await mesh.admin().call('POST', '/users', { name: 'watcher', role: 'viewer' })) as {
      token: string;
    };
    const url = `${mesh.admin().url}/api/v1/rollouts`;
    const asViewer = await fetch(url, {
      method: 'POST',
      headers: { authorization: `Bearer ${user.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: MODEL, version: '2' }),
    });
    expect(asViewer.status).toBe(403);
    expect(await asViewer.json()).toMatchObject({ code: 'FORBIDDEN' });
    const list = await fetch(url, { headers: { authorization: `Bearer ${user.token}` } });
    expect(list.status).toBe(200);
    const missing = await fetch(url, {
      method: 'POST',
      headers: { authorization: `Bearer ${E2E_ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: MODEL, version: '99' }),
    });
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ code: 'MODEL_NOT_FOUND' });
  });
});

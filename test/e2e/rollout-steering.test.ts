/**
 * Steering rollouts through the real CLI, and one live rollout per model, with real processes:
 * nats-server, two `infermesh coordinator` processes sharing the rollouts bucket and three
 * `infermesh agent` processes. `infermesh rollout pause` holds a rollout in its step (the
 * controller writes nothing while it is paused), `resume` lets it finish, `rollback` of the
 * finished rollout gives every agent its previous version back, `abort` leaves desired state as it
 * is, and `list` / `status --json` report each outcome. Concurrent starts of the same model, sent
 * to both coordinators at the same instant, let exactly one rollout live; the others get 409.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Rollout, RolloutSummary } from '@infermesh/protocols';
import { E2E_ADMIN_TOKEN } from '../harness/index.js';
import {
  MODEL,
  goodModel,
  rolloutAgents,
  runCli,
  seedFirstVersion,
  startRollout,
  startRolloutMesh,
  stepAgents,
  waitRollout,
  waitServing,
  rolloutEnded,
} from './rollout-support.js';
import type { RolloutMesh } from './rollout-support.js';

let mesh: RolloutMesh;

beforeAll(async () => {
  mesh = await startRolloutMesh({ agents: 3, coordinators: ['c-steer-a', 'c-steer-b'] });
  await seedFirstVersion(mesh, '1', goodModel(1));
}, 90_000);

afterAll(async () => {
  await mesh?.dispose();
});

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** `infermesh rollout <args> --url <coordinator> --token <admin>`, expected to succeed. */
async function rolloutCli(...args: string[]): Promise<string> {
  const result = await runCli(['rollout', ...args, '--url', mesh.admin().url, '--token', E2E_ADMIN_TOKEN]);
  expect(result.code, `infermesh rollout ${args.join(' ')}: ${result.stderr}`).toBe(0);
  return result.stdout;
}

/** The rollout as `infermesh rollout status <id> --json` prints it. */
async function statusJson(id: string): Promise<Rollout> {
  return JSON.parse(await rolloutCli('status', id, '--json')) as Rollout;
}

/** Each agent's desired version of {@link MODEL} now. */
async function desiredVersions(): Promise<(string | undefined)[]> {
  return Promise.all(
    mesh.agentIds.map(async (id) => (await mesh.desired.getModel(id, MODEL))?.desired.version),
  );
}

describe('steering rollouts with the CLI', () => {
  it('pauses (nothing moves), resumes to success, rolls the finished rollout back, and lists it', async () => {
    await mesh.admin().pushVersion(MODEL, '2', goodModel(2));
    const started = await startRollout(mesh, {
      model: MODEL,
      version: '2',
      canaryPercent: 30,
      waves: [100],
      bakeMs: 2_500,
      readyTimeoutMs: 20_000,
    });
    expect(started.steps.map((s) => s.agents)).toEqual([1, 2]);
    const wave = await stepAgents(mesh, started.id, 1);

    expect(await rolloutCli('pause', started.id)).toContain(`${started.id}: paused`);
    const paused = await statusJson(started.id);
    expect(paused).toMatchObject({ state: 'paused', step: 0, reason: 'paused by admin' });
    // Longer than the canary's readiness and bake: a running rollout would have moved on by now.
    await sleep(4_000);
    const held = await statusJson(started.id);
    expect(held).toMatchObject({ state: 'paused', step: 0, phase: paused.phase });
    expect(held.events.length).toBe(paused.events.length);
    expect(held.steps[0]?.passedAt).toBeUndefined();
    for (const agentId of wave) {
      expect((mesh.history.get(agentId) ?? []).map((h) => h.version)).not.toContain('2');
      expect((await rolloutAgents(mesh, started.id)).find((a) => a.agentId === agentId)?.state).toBe(
        'pending',
      );
    }

    expect(await rolloutCli('resume', started.id)).toMatch(new RegExp(`${started.id}: running \\(\\w+\\)`));
    const done = await waitRollout(mesh, started.id, rolloutEnded, 'the resumed rollout to finish');
    expect(done.state).toBe('succeeded');
    expect(done.events.map((e) => e.type)).toEqual(
      expect.arrayContaining(['paused', 'resumed', 'succeeded']),
    );
    // The canary baked again in full after the resume.
    const resumedAt = done.events.find((e) => e.type === 'resumed')?.at as number;
    expect(done.steps[0]?.bakeStartedAt).toBeGreaterThanOrEqual(resumedAt);
    expect(await desiredVersions()).toEqual(['2', '2', '2']);
    await waitServing(mesh, mesh.agentIds, '2');

    expect(await rolloutCli('rollback', started.id)).toContain(`${started.id}: running (rolling_back)`);
    const back = await waitRollout(mesh, started.id, rolloutEnded, 'the rollback to finish');
    expect(back.state).toBe('rolled_back');
    expect(back.steps.map((s) => s.counts.restored)).toEqual([1, 2]);
    expect(
      (await rolloutAgents(mesh, started.id)).every(
        (a) => a.state === 'restored' && a.reason === 'back to 1',
      ),
    ).toBe(true);
    for (const agentId of mesh.agentIds) {
      expect((await mesh.desired.getModel(agentId, MODEL))?.desired).toMatchObject({
        version: '1',
        setBy: 'rollout:seed',
      });
    }
    await waitServing(mesh, mesh.agentIds, '1');
    expect(await statusJson(started.id)).toMatchObject({
      id: started.id,
      state: 'rolled_back',
      phase: 'done',
    });
    const listed = JSON.parse(await rolloutCli('list', '--json')) as RolloutSummary[];
    expect(listed.find((r) => r.id === started.id)).toMatchObject({
      state: 'rolled_back',
      model: MODEL,
      version: '2',
      targets: 3,
    });
    expect(await rolloutCli('list')).toMatch(new RegExp(`${started.id}\\s+${MODEL}@2\\s+rolled_back`));
    // `rollout agents` pages through every target: canary first, each restored to 1.
    const lines = (await rolloutCli('agents', started.id)).trim().split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/step 0 {2}restored previous 1 {2}back to 1/);
    expect(lines.slice(1).every((l) => / step 1 /.test(l))).toBe(true);
    expect((await rolloutCli('agents', started.id, '--step', '1', '--json')).trim().split('\n')).toHaveLength(
      2,
    );
  });

  it('aborts a baking rollout, leaving every desired state as it is', async () => {
    await mesh.admin().pushVersion(MODEL, '3', goodModel(3));
    const started = await startRollout(mesh, {
      model: MODEL,
      version: '3',
      canaryPercent: 30,
      waves: [100],
      bakeMs: 60_000,
      readyTimeoutMs: 20_000,
    });
    const canary = (await stepAgents(mesh, started.id, 0))[0] as string;
    await waitRollout(mesh, started.id, (r) => r.phase === 'baking', 'the canary to bake', 20_000);
    expect(await rolloutCli('abort', started.id)).toContain(`${started.id}: aborted`);
    const before = await desiredVersions();
    expect(before).toEqual(mesh.agentIds.map((id) => (id === canary ? '3' : '1')));
    await sleep(1_000);
    const aborted = await statusJson(started.id);
    expect(aborted).toMatchObject({ state: 'aborted', phase: 'done', step: 0, reason: 'aborted by admin' });
    expect((await rolloutAgents(mesh, started.id)).find((a) => a.agentId === canary)?.state).toBe('ready');
    expect(await desiredVersions()).toEqual(before);
    expect(JSON.parse(await rolloutCli('list', '--json'))).toEqual(
      expect.arrayContaining([expect.objectContaining({ id: started.id, state: 'aborted' })]),
    );
  });
});

describe('one live rollout per model', () => {
  it('lets exactly one of concurrent starts on two coordinators win; the others get 409 CONFLICT', async () => {
    await mesh.admin().pushVersion(MODEL, '4', goodModel(4));
    const urls = [...mesh.coordinators.values()].map((c) => `${c.adminUrl}/api/v1/rollouts`);
    expect(urls).toHaveLength(2);
    const body = JSON.stringify({
      model: MODEL,
      version: '4',
      canaryPercent: 30,
      waves: [100],
      bakeMs: 60_000,
    });
    const answers = await Promise.all(
      Array.from({ length: 6 }, async (_, i) => {
        const response = await fetch(urls[i % 2] as string, {
          method: 'POST',
          headers: { authorization: `Bearer ${E2E_ADMIN_TOKEN}`, 'content-type': 'application/json' },
          body,
        });
        return { status: response.status, body: (await response.json()) as Record<string, unknown> };
      }),
    );
    const won = answers.filter((a) => a.status === 201);
    expect(won).toHaveLength(1);
    const winner = won[0]?.body.id as string;
    for (const lost of answers.filter((a) => a.status !== 201)) {
      expect(lost.status).toBe(409);
      expect(lost.body).toMatchObject({
        code: 'CONFLICT',
        error: expect.stringContaining(winner) as string,
        details: { rolloutId: winner },
      });
    }
    const live = (JSON.parse(await rolloutCli('list', '--json')) as RolloutSummary[]).filter(
      (r) => r.version === '4',
    );
    expect(live.map((r) => r.id)).toEqual([winner]);
    // Once it ends, the model is free again.
    await rolloutCli('abort', winner);
    const next = await startRollout(mesh, {
      model: MODEL,
      version: '4',
      canaryPercent: 30,
      waves: [100],
      bakeMs: 0,
    });
    expect(next.id).not.toBe(winner);
    expect((await waitRollout(mesh, next.id, rolloutEnded, 'the next rollout to finish')).state).toBe(
      'succeeded',
    );
  });
});

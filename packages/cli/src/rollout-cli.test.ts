import { describe, expect, it } from 'vitest';
import { ErrorCode, InferMeshError } from '@infermesh/protocols';
import type { Rollout } from '@infermesh/protocols';
import { exitCodeOf, rolloutRequestFromFlags } from './commands/rollout.js';
import { parseDuration } from './rollout-client.js';
import { RolloutView, followRollout, rolloutLines } from './rollout-view.js';

const counts = (ready: number, pending: number) => ({
  pending,
  applied: 0,
  ready,
  failed: 0,
  restored: 0,
  skipped: 0,
});

const rollout = (extra: Partial<Rollout> = {}): Rollout => ({
  id: 'ro-abc123',
  spec: {
    model: 'spam',
    version: '3',
    selector: {},
    canaryPercent: 5,
    waves: [50, 100],
    bakeMs: 1000,
    maxErrorRate: 0.01,
    minRequests: 0,
    readyTimeoutMs: 1000,
    onGateFailure: 'rollback',
  },
  state: 'running',
  step: 0,
  phase: 'baking',
  steps: [
    { kind: 'canary', percent: 5, agents: 1, counts: counts(1, 0), firstChunk: 0, chunkCount: 1 },
    { kind: 'wave', percent: 100, agents: 1, counts: counts(0, 1), firstChunk: 1, chunkCount: 1 },
  ],
  targets: 2,
  skipped: [{ agentId: 'c', reason: 'pinned to 2' }],
  skippedTotal: 1,
  events: [{ at: 5, type: 'step.baking', message: 'baking for 1000 ms' }],
  createdBy: 'ops',
  createdAt: 1,
  updatedAt: 5,
  ...extra,
});

describe('rollout CLI', () => {
  it('parses durations with units and refuses anything else', () => {
    expect(parseDuration('10m', '--bake')).toBe(600_000);
    expect(parseDuration('30s', '--bake')).toBe(30_000);
    expect(parseDuration('1h', '--bake')).toBe(3_600_000);
    expect(parseDuration('1500', '--bake')).toBe(1500);
    expect(parseDuration('1.5s', '--bake')).toBe(1500);
    expect(() => parseDuration('10 minutes', '--bake')).toThrow(/--bake must be a duration/);
    expect(() => parseDuration('-1s', '--bake')).toThrow(/INVALID_INPUT|duration/);
  });

  it('builds the create request from the flags of the issue example', () => {
    expect(
      rolloutRequestFromFlags('spam@3', {
        selector: 'site=eu',
        canary: '5',
        waves: '25,50,100',
        bake: '10m',
        maxErrorRate: '0.01',
        maxP95Ms: '50',
      }),
    ).toEqual({
      model: 'spam',
      version: '3',
      selector: { site: 'eu' },
      canaryPercent: 5,
      waves: [25, 50, 100],
      bakeMs: 600_000,
      maxErrorRate: 0.01,
      maxP95Ms: 50,
    });
    expect(() => rolloutRequestFromFlags('spam', {})).toThrow(/NAME@VERSION/);
    expect(() => rolloutRequestFromFlags('spam@3', { canary: 'five' })).toThrow(/--canary must be a number/);
    expect(() => rolloutRequestFromFlags('spam@3', { selector: 'site' })).toThrow(/not key=value/);
  });

  it('prints one line per change when not on a terminal, and redraws in place on one', () => {
    const written: string[] = [];
    const view = new RolloutView({ write: (t: string) => written.push(t), isTTY: false });
    view.show(rollout());
    view.show(rollout({ updatedAt: 6 }));
    view.show(rollout({ phase: 'applying', step: 1 }));
    expect(written).toHaveLength(2);
    expect(written[0]).toMatch(/ro-abc123 running step 1\/2 baking 1\/2 ready \| step.baking/);

    const drawn: string[] = [];
    const tty = new RolloutView({ write: (t: string) => drawn.push(t), isTTY: true });
    tty.show(rollout());
    tty.show(rollout());
    expect(drawn[1]?.startsWith(`\x1b[${rolloutLines(rollout()).length}A`)).toBe(true);
    expect(rolloutLines(rollout()).join('\n')).toMatch(
      /canary 5%: 1\/1 baking[\s\S]*skipped: c \(pinned to 2\)/,
    );
  });

  it('lists a few skipped agents by name and counts the rest', () => {
    expect(rolloutLines(rollout({ skippedTotal: 250 })).join('\n')).toMatch(
      /skipped: c \(pinned to 2\) and 249 more/,
    );
  });
});

/** A fake clock for the follow loop: sleeping moves it on at once. */
function clock(): { now: () => number; sleep: (ms: number) => Promise<void>; slept: number[] } {
  let at = 0;
  const slept: number[] = [];
  return {
    now: () => at,
    sleep: (ms) => {
      slept.push(ms);
      at += ms;
      return Promise.resolve();
    },
    slept,
  };
}

const unavailable = (): InferMeshError =>
  new InferMeshError(ErrorCode.UNAVAILABLE, 'the coordinator at http://127.0.0.1:1 is unreachable');
const quiet = { show: () => undefined };

describe('following a rollout', () => {
  it('returns when the rollout pauses with untilPaused, and start exits 2 for it', async () => {
    const answers = [rollout(), rollout({ state: 'paused', reason: 'paused by ops' })];
    const client = { get: () => Promise.resolve(answers.shift() ?? rollout({ state: 'paused' })) };
    const fake = clock();
    const last = await followRollout(client, 'ro-abc123', quiet, { untilPaused: true, ...fake });
    expect(last.state).toBe('paused');
    expect(answers).toHaveLength(0);
    expect(exitCodeOf(last)).toBe(2);
    expect(exitCodeOf(rollout({ state: 'succeeded' }))).toBe(0);
    expect(exitCodeOf(rollout({ state: 'rolled_back' }))).toBe(1);
  });

  it('keeps following a paused rollout without untilPaused (status --watch) until it ends', async () => {
    const answers = [
      rollout({ state: 'paused' }),
      rollout({ state: 'paused' }),
      rollout({ state: 'aborted' }),
    ];
    const client = { get: () => Promise.resolve(answers.shift() as Rollout) };
    const last = await followRollout(client, 'ro-abc123', quiet, clock());
    expect(last.state).toBe('aborted');
  });

  it('rides out UNAVAILABLE answers (a coordinator restarting) with growing pauses', async () => {
    const answers: (Rollout | Error)[] = [
      rollout(),
      unavailable(),
      unavailable(),
      unavailable(),
      rollout({ state: 'succeeded' }),
    ];
    const client = {
      get: () => {
        const next = answers.shift() as Rollout | Error;
        return next instanceof Error ? Promise.reject(next) : Promise.resolve(next);
      },
    };
    const retries: number[] = [];
    const fake = clock();
    const last = await followRollout(client, 'ro-abc123', quiet, {
      ...fake,
      intervalMs: 1_000,
      onRetry: (_err, delay) => retries.push(delay),
    });
    expect(last.state).toBe('succeeded');
    expect(retries).toEqual([250, 500, 1_000]);
  });

  it('gives up after retryForMs of UNAVAILABLE, and at once on any other error', async () => {
    const fake = clock();
    const down = { get: () => Promise.reject(unavailable()) };
    await expect(
      followRollout(down, 'ro-abc123', quiet, { ...fake, retryForMs: 10_000 }),
    ).rejects.toMatchObject({
      code: 'UNAVAILABLE',
    });
    expect(fake.now()).toBe(10_000);
    const gone = {
      get: () =>
        Promise.reject(new InferMeshError(ErrorCode.NOT_FOUND, "rollout 'ro-abc123' does not exist")),
    };
    const other = clock();
    await expect(followRollout(gone, 'ro-abc123', quiet, other)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect(other.slept).toEqual([]);
  });
});

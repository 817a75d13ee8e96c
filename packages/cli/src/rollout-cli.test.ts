import { describe, expect, it } from 'vitest';
import type { Rollout } from '@infermesh/protocols';
import { rolloutRequestFromFlags } from './commands/rollout.js';
import { parseDuration } from './rollout-client.js';
import { RolloutView, rolloutLines } from './rollout-view.js';

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
    { kind: 'canary', percent: 5, agents: ['a'] },
    { kind: 'wave', percent: 100, agents: ['b'] },
  ],
  agents: [
    { agentId: 'a', step: 0, state: 'ready', captured: true, previous: null },
    { agentId: 'b', step: 1, state: 'pending', captured: false },
  ],
  skipped: [{ agentId: 'c', reason: 'pinned to 2' }],
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
});

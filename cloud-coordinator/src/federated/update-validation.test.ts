import { describe, expect, it } from 'vitest';
import { encode, flUpdateSchema } from '@infermesh/protocols';
import type { FlUpdate } from '@infermesh/protocols';
import type { GlobalWeights } from './global-weights.js';
import { toFlTensor } from './global-weights.js';
import type { UpdateSigners } from './update-validation.js';
import { applyDelta, checkUpdate, clientDpNormLimit } from './update-validation.js';

const global: GlobalWeights = {
  shapes: [
    { name: 'w', dims: [2, 2] },
    { name: 'b', dims: [2] },
  ],
  layers: [Float32Array.of(1, 2, 3, 4), Float32Array.of(0.5, -0.5)],
};

function update(
  overrides: Partial<FlUpdate> = {},
  delta = [Float32Array.of(0.1, 0, 0, -0.1), Float32Array.of(1, 1)],
): Uint8Array {
  return encode(flUpdateSchema, {
    runId: 'run1',
    roundId: 'run1-r1',
    round: 1,
    agentId: 'a1',
    numExamples: 10,
    delta: delta.map((values, i) => toFlTensor(global.shapes[i]!, values)),
    metrics: { loss: 0.3, accuracy: 0.9, trainMs: 5 },
    ...overrides,
  });
}

/** A fleet with no enrolled agent: unsigned updates are taken (development meshes). */
const noEnrolledAgents: UpdateSigners = { recordOf: () => undefined, signedBy: () => false };

const expected = (received: string[] = []) => ({
  runId: 'run1',
  roundId: 'run1-r1',
  round: 1,
  accepted: new Set(['a1', 'a2']),
  received: new Set(received),
  signers: noEnrolledAgents,
  acceptedExamples: { a1: 10, a2: 20 },
  global,
  secure: false,
});

describe('checkUpdate', () => {
  it('passes a matching update and gives its delta', () => {
    const checked = checkUpdate(update(), undefined, expected());
    expect(checked.ok).toBe(true);
    if (!checked.ok) return;
    expect(Array.from(checked.delta[1]!)).toEqual([1, 1]);
    expect(Array.from(applyDelta(global.layers, checked.delta)[1]!)).toEqual([1.5, 0.5]);
  });

  it.each([
    ['garbage bytes', () => new Uint8Array([1, 2, 3]), 'unknown', /federated update/],
    ['another run', () => update({ runId: 'run2' }), 'a1', /runId run2/],
    ['another round', () => update({ roundId: 'run1-r2', round: 2 }), 'a1', /round run1-r2/],
    ['an agent that did not accept', () => update({ agentId: 'a3' }), 'a3', /not selected/],
    ['a second update', () => update(), 'a1', /duplicate/],
    [
      'more examples than announced',
      () => update({ numExamples: 11 }),
      'a1',
      /claims 11 examples, the agent announced 10/,
    ],
    [
      'wrong dims',
      () =>
        update({
          delta: [
            toFlTensor({ name: 'w', dims: [4] }, new Float32Array(4)),
            toFlTensor(global.shapes[1]!, new Float32Array(2)),
          ],
        }),
      'a1',
      /dims/,
    ],
    [
      'a NaN',
      () => update({}, [Float32Array.of(Number.NaN, 0, 0, 0), Float32Array.of(1, 1)]),
      'a1',
      /non-finite/,
    ],
  ])('refuses %s with a reason', (what, bytes, agentId, reason) => {
    const checked = checkUpdate(bytes(), undefined, expected(what === 'a second update' ? ['a1'] : []));
    expect(checked.ok).toBe(false);
    if (checked.ok) return;
    expect(checked.agentId).toBe(agentId);
    expect(checked.reason).toMatch(reason);
  });

  it('takes up to the announced example count, and any count in rounds recorded before the check', () => {
    expect(checkUpdate(update({ numExamples: 10 }), undefined, expected()).ok).toBe(true);
    const older = { ...expected(), acceptedExamples: undefined };
    expect(checkUpdate(update({ numExamples: 1_000_000 }), undefined, older).ok).toBe(true);
  });

  it('bounds the delta norm in runs with client-side DP: clipped and noised passes, unclipped does not', () => {
    const privacy = { mode: 'client', clipNorm: 1, noiseMultiplier: 0.1 } as const;
    const withPrivacy = { ...expected(), privacy };
    // Six values, limit 1 + 0.1·(√6 + 10) ≈ 2.245.
    expect(clientDpNormLimit(privacy, 6)).toBeCloseTo(1 + 0.1 * (Math.sqrt(6) + 10), 4);
    const clipped = [Float32Array.of(0.6, 0, 0, 0.05), Float32Array.of(0.8, -0.05)];
    expect(checkUpdate(update({}, clipped), undefined, withPrivacy).ok).toBe(true);
    const unclipped = [Float32Array.of(3, 0, 0, 0), Float32Array.of(4, 0)];
    const refused = checkUpdate(update({}, unclipped), undefined, withPrivacy);
    expect(refused).toMatchObject({
      ok: false,
      agentId: 'a1',
      reason: expect.stringMatching(/clip norm 1 /),
    });
    // Without client-side DP the same update is fine (server-side DP clips it on the server).
    expect(checkUpdate(update({}, unclipped), undefined, expected()).ok).toBe(true);
    const serverSide = { ...expected(), privacy: { ...privacy, mode: 'server' } as const };
    expect(checkUpdate(update({}, unclipped), undefined, serverSide).ok).toBe(true);
  });
});

import { describe, expect, it } from 'vitest';
import { HeartbeatIntake } from './heartbeat-intake.js';
import type { ReceivedHeartbeat } from './heartbeat-intake.js';

const received = (i: number): ReceivedHeartbeat => ({
  subject: `im.v1.agent.a${i}.heartbeat`,
  data: new Uint8Array([i]),
  receivedAt: i,
  signature: undefined,
});

const busy = (ms: number): void => {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // spin: a heartbeat check that costs `ms`
  }
};

describe('HeartbeatIntake', () => {
  it('processes a burst in order, in slices that let other work run in between', async () => {
    const processed: number[] = [];
    const intake = new HeartbeatIntake({
      process: (h) => {
        busy(1);
        processed.push(h.receivedAt);
      },
      sliceMs: 4,
    });
    for (let i = 0; i < 40; i++) intake.push(received(i));
    // Nothing is processed until the intake is resumed.
    await new Promise((r) => setImmediate(r));
    expect(processed).toEqual([]);
    intake.resume();
    // A timer queued now runs while the burst is still being worked through.
    const seenByTimer = await new Promise<number>((resolve) =>
      setTimeout(() => resolve(processed.length), 0),
    );
    expect(seenByTimer).toBeLessThan(40);
    while (intake.pending > 0) await new Promise((r) => setImmediate(r));
    expect(processed).toEqual(Array.from({ length: 40 }, (_, i) => i));
  });

  it('drops the oldest waiting heartbeats past its bound and counts them', async () => {
    const processed: number[] = [];
    const intake = new HeartbeatIntake({ process: (h) => processed.push(h.receivedAt), maxPending: 10 });
    for (let i = 0; i < 25; i++) intake.push(received(i));
    expect(intake.dropped).toBe(15);
    intake.resume();
    while (intake.pending > 0) await new Promise((r) => setImmediate(r));
    expect(processed).toEqual(Array.from({ length: 10 }, (_, i) => i + 15));
    intake.close();
    intake.push(received(99));
    expect(intake.pending).toBe(0);
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pino from 'pino';
import { jetstream } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import type { KV } from '@nats-io/kv';
import { ErrorCode, InferMeshError, invalidInput } from '@infermesh/protocols';
import { connectMesh } from '@infermesh/mesh-client';
import type { MeshConnection } from '@infermesh/mesh-client';
import { startNatsServer } from '../../../test/harness/index.js';
import type { NatsServer } from '../../../test/harness/index.js';
import { TransientFailure, isTransientError, retryTransient } from './transient-retry.js';

let nats: NatsServer;
let conn: MeshConnection;
let kv: KV;

beforeAll(async () => {
  nats = await startNatsServer();
  conn = await connectMesh(nats.url, {
    name: 'transient-test',
    logger: pino({ enabled: false }),
    reconnectTimeWaitMs: 100,
  });
  // JetStream requests time out after 1 s here (5 s by default): a down server fails tries fast.
  kv = await new Kvm(jetstream(conn.nc, { timeout: 1_000 })).create('im_v1_transient_test');
});

afterAll(async () => {
  await conn?.close();
  await nats?.dispose();
});

/** The error a KV write gets while nats-server is down. */
async function writeWhileDown(): Promise<unknown> {
  await nats.stop();
  try {
    await kv.put('probe', 'x');
    return undefined;
  } catch (err) {
    return err;
  } finally {
    await nats.restart();
  }
}

describe('transient NATS failures', () => {
  it('tells failures a retry can cure from the others', async () => {
    const downError = await writeWhileDown();
    expect(downError).toBeInstanceOf(Error);
    expect(isTransientError(downError)).toBe(true);
    expect(isTransientError(new InferMeshError(ErrorCode.UNAVAILABLE, 'store down'))).toBe(true);
    expect(
      isTransientError(new InferMeshError(ErrorCode.INTERNAL, 'write failed', { cause: downError })),
    ).toBe(true);
    expect(isTransientError(invalidInput('bad weights'))).toBe(false);
    expect(isTransientError(new InferMeshError(ErrorCode.CONFLICT, 'exists'))).toBe(false);
    expect(isTransientError(new Error('a bug'))).toBe(false);
    expect(isTransientError('not an error')).toBe(false);
  });

  it('retries a KV write across a nats-server restart until it lands', async () => {
    await nats.stop();
    const restarted = new Promise((resolve) => setTimeout(resolve, 1_000)).then(() => nats.restart());
    let tries = 0;
    const revision = await retryTransient(
      () => {
        tries += 1;
        return kv.put('round', 'closed');
      },
      { what: 'record the round', until: Date.now() + 20_000, maxDelayMs: 200 },
    );
    await restarted;
    expect(tries).toBeGreaterThan(1);
    expect(revision).toBeGreaterThan(0);
    expect((await kv.get('round'))?.string()).toBe('closed');
  }, 30_000);

  it('gives up with TransientFailure once the budget is spent, and at once on other errors', async () => {
    await nats.stop();
    try {
      const started = Date.now();
      const failure = await retryTransient(() => kv.put('late', 'x'), {
        what: 'store the weights',
        until: Date.now() + 1_500,
        maxDelayMs: 200,
      }).catch((err: unknown) => err);
      expect(failure).toBeInstanceOf(TransientFailure);
      expect((failure as TransientFailure).what).toBe('store the weights');
      expect((failure as TransientFailure).tries).toBeGreaterThanOrEqual(1);
      expect(isTransientError(failure)).toBe(true);
      expect(Date.now() - started).toBeGreaterThanOrEqual(1_500);
    } finally {
      await nats.restart();
    }
    let tries = 0;
    const refused = await retryTransient(
      () => {
        tries += 1;
        return Promise.reject(invalidInput('bad update'));
      },
      { what: 'aggregate', until: Date.now() + 10_000 },
    ).catch((err: unknown) => err);
    expect(refused).toMatchObject({ code: ErrorCode.INVALID_INPUT });
    expect(tries).toBe(1);
  }, 30_000);

  it('stops retrying when its signal aborts', async () => {
    const abort = new AbortController();
    let tries = 0;
    const pending = retryTransient(
      () => {
        tries += 1;
        if (tries === 2) abort.abort();
        return Promise.reject(new InferMeshError(ErrorCode.UNAVAILABLE, 'down'));
      },
      { what: 'read the run', until: Date.now() + 60_000, signal: abort.signal, initialDelayMs: 10 },
    );
    await expect(pending).rejects.toMatchObject({ code: ErrorCode.UNAVAILABLE });
    expect(tries).toBe(2);
  });
});

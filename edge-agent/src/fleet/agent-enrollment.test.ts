import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { agentConfigSchema } from '../config/agent-config.js';
import type { AgentConfigInput } from '../config/agent-config.js';
import { freePort, startNatsServer } from '../../../test/harness/index.js';
import type { NatsServer } from '../../../test/harness/index.js';
import { createIdentity, isEnrolled, readIdentity, writeIdentity } from './agent-identity.js';
import { configWithIdentity, identityFileOf, resolveAgentIdentity } from './agent-enrollment.js';

const logger = pino({ enabled: false });
const TOKEN = `imt_${'0'.repeat(16)}_${'1'.repeat(64)}`;
const FAST_RETRY = { retryInitialMs: 50, retryMaxMs: 200, requestTimeoutMs: 500 };

describe('agent enrollment at start-up', () => {
  let dir: string;
  const configOf = (input: AgentConfigInput) =>
    Object.freeze(agentConfigSchema.parse({ modelsDir: join(dir, 'models'), ...input }));

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'im-enroll-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('runs unenrolled under its configured id without a token or identity', async () => {
    const config = configOf({ id: 'dev-agent' });
    const fleet = await resolveAgentIdentity(config, { logger });
    expect(fleet.type).toBe('unenrolled');
    expect(configWithIdentity(config, fleet)).toBe(config);
  });

  it('uses an enrolled identity without contacting anyone, under the enrolled id and labels', async () => {
    const file = join(dir, 'identity.json');
    await writeIdentity(file, {
      ...createIdentity(),
      enrollment: { agentId: 'ag-00000000000000aa', labels: { site: 'eu', hw: 'pi5' }, enrolledAt: 1 },
    });
    // A used token and an unreachable NATS: neither matters once enrolled.
    const port = await freePort();
    const config = configOf({
      identityFile: file,
      enrollToken: TOKEN,
      nats: `nats://127.0.0.1:${port}`,
      labels: { site: 'local', rack: '7' },
    });
    const fleet = await resolveAgentIdentity(config, { logger, enrollTimeoutMs: 1 });
    expect(fleet).toMatchObject({ type: 'enrolled', justEnrolled: false });
    const running = configWithIdentity(config, fleet);
    expect(running.id).toBe('ag-00000000000000aa');
    expect(running.labels).toEqual({ site: 'eu', hw: 'pi5', rack: '7' });
    expect(Object.isFrozen(running)).toBe(true);
  });

  it('refuses to start when the configured id is not the enrolled one', async () => {
    const file = join(dir, 'identity.json');
    await writeIdentity(file, {
      ...createIdentity(),
      enrollment: { agentId: 'ag-00000000000000aa', labels: {}, enrolledAt: 1 },
    });
    await expect(
      resolveAgentIdentity(configOf({ identityFile: file, id: 'edge-7' }), { logger }),
    ).rejects.toMatchObject({
      code: 'INVALID_INPUT',
      message: expect.stringContaining("'edge-7' is not the enrolled id 'ag-00000000000000aa'") as unknown,
    });
  });

  it('needs NATS to enroll with a token, and a token to finish a pending enrollment', async () => {
    await expect(resolveAgentIdentity(configOf({ enrollToken: TOKEN }), { logger })).rejects.toMatchObject({
      code: 'INVALID_INPUT',
      message: /needs a NATS server/,
    });
    const config = configOf({});
    await writeIdentity(identityFileOf(config), createIdentity());
    await expect(resolveAgentIdentity(config, { logger })).rejects.toMatchObject({
      code: 'INVALID_INPUT',
      message: /never completed/,
    });
  });

  it('defaults the identity file to the models directory parent', () => {
    expect(identityFileOf(configOf({}))).toBe(join(dir, 'identity.json'));
  });

  it('retries with back-off while NATS is unreachable, keeping one key across attempts', async () => {
    const port = await freePort();
    const config = configOf({ enrollToken: TOKEN, nats: `nats://127.0.0.1:${port}` });
    const started = Date.now();
    await expect(
      resolveAgentIdentity(config, { logger, enrollTimeoutMs: 700, retry: FAST_RETRY }),
    ).rejects.toMatchObject({
      code: 'UNAVAILABLE',
      message: /enrollment did not complete after [3-9] attempt/,
    });
    expect(Date.now() - started).toBeGreaterThanOrEqual(600);
    // The key was on disk before the first request, and a second start reuses it.
    const pending = await readIdentity(identityFileOf(config));
    expect(pending && isEnrolled(pending)).toBe(false);
    await expect(
      resolveAgentIdentity(config, { logger, enrollTimeoutMs: 100, retry: FAST_RETRY }),
    ).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    expect((await readIdentity(identityFileOf(config)))?.publicKey).toBe(pending?.publicKey);
  });

  it('stops retrying when its signal aborts', async () => {
    const port = await freePort();
    const config = configOf({ enrollToken: TOKEN, nats: `nats://127.0.0.1:${port}` });
    const abort = new AbortController();
    setTimeout(() => abort.abort(), 300);
    await expect(
      resolveAgentIdentity(config, {
        logger,
        signal: abort.signal,
        retry: { ...FAST_RETRY, retryInitialMs: 10_000 },
      }),
    ).rejects.toMatchObject({ code: 'UNAVAILABLE' });
  });

  describe('with NATS but no coordinator', () => {
    let nats: NatsServer;
    beforeAll(async () => {
      nats = await startNatsServer({ jetstream: false });
    });
    afterAll(async () => {
      await nats.dispose();
    });

    it('retries while no coordinator answers enrollment requests', async () => {
      const config = configOf({ enrollToken: TOKEN, nats: nats.url });
      await expect(
        resolveAgentIdentity(config, { logger, enrollTimeoutMs: 500, retry: FAST_RETRY }),
      ).rejects.toMatchObject({ code: 'UNAVAILABLE', message: /no coordinator answers/ });
    });
  });
});

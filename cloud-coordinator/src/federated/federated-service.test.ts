import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pino from 'pino';
import { adaptiveNoiseMultiplier, COUNT_NOISE_CLIENTS_DIVISOR } from '@infermesh/federated';
import { ErrorCode } from '@infermesh/protocols';
import type { FlRunStartRequest } from '@infermesh/protocols';
import { connectMesh } from '@infermesh/mesh-client';
import type { MeshConnection } from '@infermesh/mesh-client';
import { startNatsServer } from '../../../test/harness/index.js';
import type { NatsServer } from '../../../test/harness/index.js';
import { readLease } from '../coordination/kv-lease.js';
import { FleetRegistry } from '../fleet/fleet-registry.js';
import { ModelRegistry } from '../registry/model-registry.js';
import { FederatedService } from './federated-service.js';
import { adaptiveClippingMinClients, checkPrivacyRun } from './privacy-settings.js';
import { RunLease } from './run-lease.js';
import { RunStore } from './run-store.js';

const logger = pino({ enabled: false });
let nats: NatsServer;
let conn: MeshConnection;
let fleet: FleetRegistry;
let registry: ModelRegistry;

const service = (coordinatorId: string): FederatedService =>
  new FederatedService({ connection: conn, registry, fleet, logger, coordinatorId, scanIntervalMs: 60_000 });

const request = (privacy: FlRunStartRequest['privacy'], clients = 10): FlRunStartRequest => ({
  model: 'spam',
  rounds: 3,
  clientsPerRound: clients,
  minClients: clients,
  privacy,
  evaluationExamples: [{ inputs: { text: 'hello' }, label: 0 }],
});

beforeAll(async () => {
  nats = await startNatsServer();
  conn = await connectMesh(nats.url, { name: 'fl-service-test', logger });
  fleet = new FleetRegistry({ connection: conn, logger });
  await fleet.start();
  registry = new ModelRegistry({
    connection: conn,
    logger,
    publisherKey: undefined,
    maxArtifactBytes: 1 << 20,
    replicas: 1,
  });
});

afterAll(async () => {
  await fleet?.stop();
  await conn?.close();
  await nats?.stop();
});

describe('federated run privacy settings', () => {
  it('needs as many clients as the adaptive clip count noise needs: the bound is where the library stops throwing', () => {
    for (const z of [0, 0.3, 1, 1.05, 2.5]) {
      const needed = adaptiveClippingMinClients(z);
      expect(() => adaptiveNoiseMultiplier(z, needed / COUNT_NOISE_CLIENTS_DIVISOR)).not.toThrow();
      if (needed > 1)
        expect(() => adaptiveNoiseMultiplier(z, (needed - 1) / COUNT_NOISE_CLIENTS_DIVISOR)).toThrow();
    }
    const adaptive = { mode: 'server', clipNorm: 1, noiseMultiplier: 1, targetQuantile: 0.5 } as const;
    expect(() => checkPrivacyRun({ privacy: adaptive, minClients: 11, clientsPerRound: 20 })).not.toThrow();
    // Fixed clip norms need no count noise.
    const fixed = { mode: 'server', clipNorm: 1, noiseMultiplier: 1 } as const;
    expect(() => checkPrivacyRun({ privacy: fixed, minClients: 1, clientsPerRound: 1 })).not.toThrow();
  });

  it.each([
    [
      'server-side adaptive clipping with too few clients',
      { mode: 'server', clipNorm: 1, noiseMultiplier: 1, targetQuantile: 0.5 } as const,
      /needs at least 11 clients in every round .* set minClients and clientsPerRound to at least 11/,
    ],
    [
      'targetQuantile with client-side DP',
      { mode: 'client', clipNorm: 1, noiseMultiplier: 0.5, targetQuantile: 0.5 } as const,
      /targetQuantile .* works only with privacy.mode 'server'/,
    ],
  ])('refuses %s when the run starts (INVALID_INPUT)', async (_what, privacy, message) => {
    await expect(service('coord-a').startRun(request(privacy), 'ops')).rejects.toMatchObject({
      code: ErrorCode.INVALID_INPUT,
      message: expect.stringMatching(message),
    });
  });
});

describe('FederatedService leases', () => {
  it('gives each instance its own lease holder: two coordinators with one id never both hold a run', async () => {
    const first = service('coord-same');
    const second = service('coord-same');
    expect(first.holder).toMatch(/^coord-same\/[0-9a-f]{12}$/);
    expect(second.holder).not.toBe(first.holder);
    const { kv } = await RunStore.open(conn, 1);
    expect(await new RunLease(kv, 'fl-shared', first.holder, 10_000).acquire()).toBe(true);
    expect(await new RunLease(kv, 'fl-shared', second.holder, 10_000).acquire()).toBe(false);
  });

  it('starts no driver once stopped, even when stop comes during the first scan', async () => {
    const store = await RunStore.open(conn, 1);
    await store.create({
      id: 'fl-orphan',
      model: 'spam',
      baseVersion: '1',
      rounds: 3,
      clientsPerRound: 2,
      minClients: 1,
      roundTimeoutMs: 1_000,
      strategy: 'fedavg',
      strategyOptions: {},
      hyperparameters: { localEpochs: 1, batchSize: 8, learningRate: 0.1, proximalMu: 0 },
      secure: false,
      seed: 1,
      evaluationData: { sha256: 'a'.repeat(64), examples: 1 },
      resultVersion: '1-fl-1',
      trainable: ['w'],
      state: 'running',
      registerOnStop: false,
      createdBy: 'ops',
      createdAt: 1,
      updatedAt: 1,
      globalWeightsSha256: 'a'.repeat(64),
      roundsDone: 0,
      recentRounds: [],
    });
    const coordinator = service('coord-stopping');
    await coordinator.start();
    await coordinator.stop();
    await new Promise((resolve) => setTimeout(resolve, 300));
    // A driver started after the stop would hold the lease and fail the run (its model is unknown).
    expect((await readLease(store.kv, 'lease.fl-orphan')).lease).toBeNull();
    expect((await store.get('fl-orphan')).state).toBe('running');
  });
});

/**
 * The coordinator's secure-aggregation session against a real nats-server, with clients that
 * speak the protocol's messages through `SecureAggregationClient`: the unmasked result is the
 * survivors' example-weighted mean (a client that dropped after sharing is recovered, one that
 * never advertised is left out), and nothing the session retains at any phase is one client's
 * update, quantised or plain. Plus the policy's numbers and the masked-update check.
 */
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ErrorCode,
  decode,
  encode,
  flSecureDownMessageSchema,
  flSecureToAggregatorSubject,
  flSecureToClientsSubject,
  flSecureUpMessageSchema,
  flUpdateSchema,
} from '@infermesh/protocols';
import type { FlSecureDownMessage, FlSecureUpMessage } from '@infermesh/protocols';
import { connectMesh } from '@infermesh/mesh-client';
import type { MeshConnection } from '@infermesh/mesh-client';
import { SecureAggregationClient, createSeededRandom, quantize } from '@infermesh/federated';
import type { EncryptedShare, SecureAggregationConfig } from '@infermesh/federated';
import { startNatsServer } from '../../../test/harness/nats-server.js';
import type { NatsServer } from '../../../test/harness/nats-server.js';
import {
  SECURE_FRACTIONAL_BITS,
  checkSecureRun,
  meanOfSecureSum,
  secureThreshold,
  secureVectorLength,
} from './secure-settings.js';
import { SecureRoundFailure, SecureRoundSession } from './secure-session.js';
import { checkMaskedUpdate } from './secure-update-check.js';

const logger = pino({ enabled: false });
const SHAPES = [
  { name: 'dense.weight', dims: [40, 10] },
  { name: 'dense.bias', dims: [10] },
];
const LENGTH = secureVectorLength(SHAPES); // 411
const PHASE_TIMEOUT_MS = 600;

let nats: NatsServer;
let coordinator: MeshConnection;
let clients: MeshConnection;

beforeAll(async () => {
  nats = await startNatsServer();
  coordinator = await connectMesh(nats.url, { name: 'secure-coordinator' });
  clients = await connectMesh(nats.url, { name: 'secure-clients' });
});

afterAll(async () => {
  await clients?.close();
  await coordinator?.close();
  await nats?.dispose();
});

/** What a simulated client does in the round. */
type Part = 'absent' | 'advertise' | 'share' | 'mask';

/** A client speaking the protocol over NATS like an agent's secure round session. */
class ProtocolClient {
  readonly client: SecureAggregationClient;
  readonly seen: FlSecureDownMessage[] = [];
  readonly #inbox: Promise<EncryptedShare[]>;
  readonly #roundId: string;
  #masked = false;
  #sub;

  constructor(
    readonly agentId: string,
    readonly clientId: number,
    config: SecureAggregationConfig,
    private readonly part: Part,
  ) {
    this.client = new SecureAggregationClient(config, clientId);
    this.#roundId = config.roundId;
    let resolveInbox: (shares: EncryptedShare[]) => void = () => undefined;
    this.#inbox = new Promise((resolve) => (resolveInbox = resolve));
    this.#sub = clients.nc.subscribe(flSecureToClientsSubject(config.roundId), {
      callback: (_err, msg) => {
        const message = decode(flSecureDownMessageSchema, msg.data);
        this.seen.push(message);
        if (part === 'absent' || part === 'advertise') return;
        if (message.phase === 'roster' && message.roster.length > 0) {
          this.#send({ phase: 'shares', agentId, clientId, shares: this.client.shareKeys(message.roster) });
        } else if (message.phase === 'inbox' && message.to === clientId) {
          resolveInbox(message.shares);
        } else if (message.phase === 'unmask' && this.#masked) {
          const response = this.client.unmask(message);
          this.#send({
            phase: 'unmask',
            agentId,
            clientId,
            selfMaskShares: [...response.selfMaskShares],
            maskKeyShares: [...response.maskKeyShares],
          });
        }
      },
    });
  }

  advertise(): void {
    if (this.part === 'absent') return;
    const keys = this.client.advertiseKeys();
    this.#send({ phase: 'keys', agentId: this.agentId, ...keys });
  }

  /** The masked vector as the update's `masked` bytes, once the inbox is in. */
  async mask(vector: Float32Array): Promise<Uint8Array> {
    const { masked } = this.client.maskInput(vector, await this.#inbox);
    this.#masked = true;
    const bytes = new Uint8Array(masked.length * 4);
    const view = new DataView(bytes.buffer);
    masked.forEach((v, i) => view.setUint32(i * 4, v, true));
    return bytes;
  }

  stop(): void {
    this.#sub.unsubscribe();
  }

  #send(message: FlSecureUpMessage): void {
    clients.nc.publish(flSecureToAggregatorSubject(this.#roundId), encode(flSecureUpMessageSchema, message));
  }
}

/** A client's secure vector: a random delta times its example count, then the count. */
function secureVector(seed: number, numExamples: number): Float32Array {
  const uniform = createSeededRandom(seed);
  const out = Float32Array.from({ length: LENGTH }, () => (2 * uniform() - 1) * 0.05 * numExamples);
  out[LENGTH - 1] = numExamples;
  return out;
}

/** Every typed array reachable from `root` through properties, arrays, maps and sets. */
function typedArraysIn(root: unknown, seen = new Set<unknown>()): ArrayBufferView[] {
  if (root === null || typeof root !== 'object' || seen.has(root)) return [];
  seen.add(root);
  if (ArrayBuffer.isView(root)) return [root];
  const children =
    root instanceof Map
      ? [...root.keys(), ...root.values()]
      : root instanceof Set
        ? [...root]
        : Object.values(root);
  return children.flatMap((child) => typedArraysIn(child, seen));
}

/** Asserts nothing the session holds is, or nearly is, one client's vector (plain, quantised or as bytes). */
function expectNoIndividualUpdate(session: SecureRoundSession, vectors: readonly Float32Array[]): number {
  const held = typedArraysIn(session);
  const asWords = (view: ArrayBufferView): Uint32Array =>
    new Uint32Array(
      view.buffer.slice(view.byteOffset, view.byteOffset + view.byteLength - (view.byteLength % 4)),
    );
  let checked = 0;
  for (const view of held) {
    const words = asWords(view);
    const floats = new Float32Array(words.buffer);
    if (words.length < LENGTH - 1) continue;
    checked += 1;
    for (const vector of vectors) {
      const quantised = quantize(vector, SECURE_FRACTIONAL_BITS, 1e6);
      let same = 0;
      let sameFloat = 0;
      for (let i = 0; i < LENGTH - 1; i += 1) {
        if (words[i] === quantised[i]) same += 1;
        if (floats[i] === vector[i]) sameFloat += 1;
      }
      expect(same / LENGTH).toBeLessThan(0.01);
      expect(sameFloat / LENGTH).toBeLessThan(0.01);
    }
  }
  return checked;
}

describe('secure round session', () => {
  it('unmasks the survivors weighted sum, recovers a client dropped after sharing, and never holds an update in the clear', async () => {
    const roundId = 'run-s-r1';
    const agents = ['a-1', 'a-2', 'a-3', 'a-4', 'a-5'];
    const threshold = secureThreshold(agents.length);
    expect(threshold).toBe(3);
    const session = new SecureRoundSession(coordinator, {
      roundId,
      selected: agents,
      threshold,
      fractionalBits: SECURE_FRACTIONAL_BITS,
      vectorLength: LENGTH,
      phaseTimeoutMs: PHASE_TIMEOUT_MS,
      logger,
    });
    session.start();
    const config = { roundId, threshold, vectorLength: LENGTH, fractionalBits: SECURE_FRACTIONAL_BITS };
    // a-4 shares its keys, then vanishes before masking; a-5 accepted but never advertises.
    const parts: Part[] = ['mask', 'mask', 'mask', 'share', 'absent'];
    const peers = agents.map(
      (id, i) => new ProtocolClient(id, session.taskFor(id).clientId, config, parts[i]!),
    );
    const counts = [30, 50, 20, 40, 60];
    const vectors = counts.map((n, i) => secureVector(i + 1, n));
    try {
      await clients.nc.flush();
      for (const peer of peers) peer.advertise();
      const roster = await session.advertise(agents);
      expect(roster.sort()).toEqual([1, 2, 3, 4]);
      const shared = await session.share(roster);
      expect(shared.sort()).toEqual([1, 2, 3, 4]);
      for (let i = 0; i < 3; i += 1) session.addMasked(peers[i]!.clientId, await peers[i]!.mask(vectors[i]!));
      // Mid-round the session holds the masked sum, and it is none of the inputs.
      expect(expectNoIndividualUpdate(session, vectors)).toBeGreaterThan(0);
      expect(() => session.addMasked(peers[0]!.clientId, new Uint8Array(LENGTH * 4))).toThrow(/already/);

      const result = await session.unmask();
      expect([...result.survivors].sort()).toEqual([1, 2, 3]);
      expect([...result.dropped]).toEqual([4]);
      const expected = new Float32Array(LENGTH);
      for (let i = 0; i < 3; i += 1) vectors[i]!.forEach((v, k) => (expected[k] = expected[k]! + v));
      const tolerance = 3 * 2 ** -(SECURE_FRACTIONAL_BITS + 1) + 1e-5;
      let gap = 0;
      expected.forEach((v, k) => (gap = Math.max(gap, Math.abs(result.sum[k]! - v))));
      expect(gap).toBeLessThan(tolerance);
      const mean = meanOfSecureSum(result.sum, SHAPES);
      expect(mean.numExamples).toBe(100);
      expect(mean.delta.map((d) => d.length)).toEqual([400, 10]);
      const weighted = (k: number): number => (vectors[0]![k]! + vectors[1]![k]! + vectors[2]![k]!) / 100;
      expect(mean.delta[1]![9]).toBeCloseTo(weighted(409), 5);
      expect(mean.delta[0]![0]).toBeCloseTo(weighted(0), 5);
      // After unmasking it holds the sum of three, still no single update.
      expectNoIndividualUpdate(session, vectors);
    } finally {
      session.close();
      peers.forEach((p) => p.stop());
    }
  });

  it('fails the round when fewer than t clients advertise, and releases the clients that did', async () => {
    const roundId = 'run-s-r2';
    const agents = ['b-1', 'b-2', 'b-3'];
    const session = new SecureRoundSession(coordinator, {
      roundId,
      selected: agents,
      threshold: secureThreshold(3),
      fractionalBits: SECURE_FRACTIONAL_BITS,
      vectorLength: LENGTH,
      phaseTimeoutMs: PHASE_TIMEOUT_MS,
      logger,
    });
    session.start();
    const config = { roundId, threshold: 2, vectorLength: LENGTH, fractionalBits: SECURE_FRACTIONAL_BITS };
    const peers = [new ProtocolClient('b-1', 1, config, 'advertise')];
    // A client claiming another's id is ignored.
    const impostor = new ProtocolClient('b-9', 2, config, 'advertise');
    try {
      await clients.nc.flush();
      peers[0]!.advertise();
      impostor.advertise();
      const failure = await session.advertise(agents).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(failure).toBeInstanceOf(SecureRoundFailure);
      expect((failure as Error).message).toMatch(/1 clients advertised keys, fewer than threshold 2/);
      session.abortClients();
      await clients.nc.flush();
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(peers[0]!.seen).toContainEqual({ phase: 'roster', roster: [] });
    } finally {
      session.close();
      peers.forEach((p) => p.stop());
      impostor.stop();
    }
  });
});

describe('secure round policy', () => {
  it('sets t to a strict majority of at least 2', () => {
    expect([1, 2, 3, 4, 5, 6, 7, 10].map(secureThreshold)).toEqual([2, 2, 2, 3, 3, 4, 4, 6]);
  });

  it('refuses server-side DP and single-client rounds with INVALID_INPUT, allows client-side DP', () => {
    const privacy = { mode: 'server' as const, clipNorm: 1, noiseMultiplier: 1 };
    expect(() => checkSecureRun({ secure: true, clientsPerRound: 5, privacy })).toThrow(
      expect.objectContaining({ code: ErrorCode.INVALID_INPUT }),
    );
    expect(() => checkSecureRun({ secure: true, clientsPerRound: 1 })).toThrow(/clientsPerRound >= 2/);
    expect(() =>
      checkSecureRun({ secure: true, clientsPerRound: 5, privacy: { ...privacy, mode: 'client' } }),
    ).not.toThrow();
    expect(() => checkSecureRun({ secure: false, clientsPerRound: 1, privacy })).not.toThrow();
  });

  it('takes only masked updates of the round vector length from clients that shared keys', () => {
    const expected = {
      runId: 'run-s',
      roundId: 'run-s-r1',
      round: 1,
      sharedClients: new Map([['a-1', 1]]),
      received: new Set<string>(),
      // No enrolled agent: unsigned updates are taken.
      signers: { recordOf: () => undefined, signedBy: () => false },
      acceptedExamples: { 'a-1': 3 },
      vectorLength: LENGTH,
    };
    const base = {
      runId: 'run-s',
      roundId: 'run-s-r1',
      round: 1,
      agentId: 'a-1',
      numExamples: 3,
      metrics: { loss: 0.5, accuracy: 0.5, trainMs: 1 },
    };
    const masked = new Uint8Array(LENGTH * 4);
    expect(checkMaskedUpdate(encode(flUpdateSchema, { ...base, masked }), undefined, expected)).toMatchObject(
      {
        ok: true,
        clientId: 1,
      },
    );
    const plain = { ...base, delta: [{ name: 'dense.bias', dims: [1], data: new Uint8Array(4) }] };
    expect(checkMaskedUpdate(encode(flUpdateSchema, plain), undefined, expected)).toMatchObject({
      ok: false,
      reason: 'secure rounds take masked updates',
    });
    const short = { ...base, masked: new Uint8Array(8) };
    expect(checkMaskedUpdate(encode(flUpdateSchema, short), undefined, expected)).toMatchObject({
      ok: false,
    });
    const inflated = { ...base, numExamples: 4, masked };
    expect(checkMaskedUpdate(encode(flUpdateSchema, inflated), undefined, expected)).toMatchObject({
      ok: false,
      reason: 'update claims 4 examples, the agent announced 3 in its task reply',
    });
    const stranger = { ...base, agentId: 'a-2', masked };
    expect(checkMaskedUpdate(encode(flUpdateSchema, stranger), undefined, expected)).toMatchObject({
      ok: false,
      reason: 'agent did not share keys in this secure round',
    });
  });
});

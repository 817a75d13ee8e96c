import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pino from 'pino';
import {
  ErrorCode,
  FL_RECENT_ROUNDS,
  FL_RUN_DETAIL_ROUNDS,
  MAX_FL_REJECTED_LISTED,
  flRunRoundKey,
} from '@infermesh/protocols';
import type { FlRoundRecord, FlRunRecord } from '@infermesh/protocols';
import { connectMesh } from '@infermesh/mesh-client';
import type { MeshConnection } from '@infermesh/mesh-client';
import { startNatsServer } from '../../../test/harness/index.js';
import type { NatsServer } from '../../../test/harness/index.js';
import { RunStore, withClosedRound } from './run-store.js';
import { UpdateTally } from './update-tally.js';

const logger = pino({ enabled: false });
const SHA = 'a'.repeat(64);
/** Clients per simulated round, and junk updates published on each round's subject. */
const CLIENTS = 100;
const JUNK_PER_ROUND = 1_000;
/** Twice the rounds after which the old record (every round in full) passed 1 MB. */
const ROUNDS = 300;

let nats: NatsServer;
let conn: MeshConnection;
let store: RunStore;

function runRecord(id: string): FlRunRecord {
  return {
    id,
    model: 'spam',
    baseVersion: '1',
    rounds: 10_000,
    clientsPerRound: CLIENTS,
    minClients: 1,
    roundTimeoutMs: 60_000,
    strategy: 'fedavg',
    strategyOptions: {},
    hyperparameters: { localEpochs: 1, batchSize: 32, learningRate: 0.1, proximalMu: 0 },
    secure: false,
    seed: 1,
    evaluationData: { sha256: SHA, examples: 100 },
    resultVersion: '1-fl-1',
    trainable: ['w'],
    state: 'running',
    registerOnStop: false,
    createdBy: 'ops',
    createdAt: 1,
    updatedAt: 1,
    globalWeightsSha256: SHA,
    roundsDone: 0,
    recentRounds: [],
  };
}

/** A closed round of {@link CLIENTS} clients whose subject also got {@link JUNK_PER_ROUND} junk updates. */
function closedRound(runId: string, round: number): FlRoundRecord {
  const agents = Array.from({ length: CLIENTS }, (_, i) => `agent-${String(i).padStart(5, '0')}-abcdef`);
  const tally = new UpdateTally(new Set(agents));
  for (let i = 0; i < JUNK_PER_ROUND; i += 1)
    tally.reject({
      agentId: `junk-${i}`,
      reason: `agent was not selected or did not accept the task ${'.'.repeat(100)}`,
    });
  return {
    round,
    roundId: `${runId}-r${round}`,
    attempts: 1,
    selected: agents,
    accepted: agents,
    received: agents,
    dropped: [],
    rejected: tally.rejected,
    rejectedCount: tally.rejectedCount,
    updateNorm: 0.1,
    meanTrainLoss: 0.3,
    evaluation: { accuracy: 0.5 + round / 1_000, loss: 0.4, examples: 1_000 },
    startedAt: round * 1_000,
    closedAt: round * 1_000 + 500,
    durationsMs: { tasks: 1, collect: 2, aggregate: 3, evaluate: 4 },
  };
}

const storedBytes = async (key: string): Promise<number> => (await store.kv.get(key))?.length ?? 0;

beforeAll(async () => {
  nats = await startNatsServer();
  conn = await connectMesh(nats.url, { name: 'fl-run-store-test', logger });
  store = await RunStore.open(conn, 1);
});

afterAll(async () => {
  await conn?.close();
  await nats?.stop();
});

describe('RunStore', () => {
  it('keeps the run record small after many rounds: each round has its own key, the record a bounded summary', async () => {
    const id = 'fl-many-rounds';
    await store.create(runRecord(id));
    for (let round = 1; round <= ROUNDS; round += 1) {
      const closed = closedRound(id, round);
      await store.putRound(id, closed);
      await store.mutate(id, (r) => withClosedRound(r, closed));
    }
    const runBytes = await storedBytes(`run.${id}`);
    const roundBytes = await storedBytes(flRunRoundKey(id, 1));
    console.log(
      `run record after ${ROUNDS} rounds of ${CLIENTS} clients (+${JUNK_PER_ROUND} junk updates each): ` +
        `${runBytes} bytes; one round record: ${roundBytes} bytes`,
    );
    expect(runBytes).toBeLessThan(64 * 1024);
    expect(roundBytes).toBeLessThan(64 * 1024);

    const record = await store.get(id);
    expect(record.roundsDone).toBe(ROUNDS);
    expect(record.recentRounds).toHaveLength(FL_RECENT_ROUNDS);
    expect(record.recentRounds.at(-1)).toMatchObject({
      round: ROUNDS,
      received: CLIENTS,
      rejected: JUNK_PER_ROUND,
      evaluation: { accuracy: 0.5 + ROUNDS / 1_000 },
    });
    const first = await store.getRound(id, 1);
    expect(first.received).toHaveLength(CLIENTS);
    expect(first.rejected).toHaveLength(MAX_FL_REJECTED_LISTED);
    expect(first.rejectedCount).toBe(JUNK_PER_ROUND);
    const detail = await store.detail(id);
    expect(detail.history.map((r) => r.round)).toEqual(
      Array.from({ length: FL_RUN_DETAIL_ROUNDS }, (_, i) => ROUNDS - FL_RUN_DETAIL_ROUNDS + 1 + i),
    );
    await expect(store.getRound(id, ROUNDS + 1)).rejects.toMatchObject({ code: ErrorCode.NOT_FOUND });
    // Round keys are not runs.
    expect((await store.list()).map((r) => r.id)).toEqual([id]);
  });

  it('records a round once: a second driver closing the same round is refused and leaves the first one as it is', async () => {
    const id = 'fl-two-drivers';
    await store.create(runRecord(id));
    const mine = { ...closedRound(id, 1), meanTrainLoss: 0.1 };
    const theirs = { ...closedRound(id, 1), meanTrainLoss: 0.9 };
    const weights = (sha: string) => (r: FlRunRecord) => ({ ...r, globalWeightsSha256: sha });
    expect(await store.recordClosedRound(id, mine, weights('b'.repeat(64)))).toBe(true);
    expect(await store.recordClosedRound(id, theirs, weights('c'.repeat(64)))).toBe(false);
    const record = await store.get(id);
    expect(record.roundsDone).toBe(1);
    expect(record.globalWeightsSha256).toBe('b'.repeat(64));
    expect((await store.getRound(id, 1)).meanTrainLoss).toBe(0.1);
    expect(await store.recordClosedRound(id, closedRound(id, 2), weights('d'.repeat(64)))).toBe(true);
    expect((await store.get(id)).recentRounds.map((r) => r.round)).toEqual([1, 2]);
  });

  it('reads a record written with the whole history in it, and moves its rounds to their keys on the next write', async () => {
    const id = 'fl-old-shape';
    const history = [1, 2, 3].map((n) => closedRound(id, n));
    const { roundsDone: _done, recentRounds: _recent, ...old } = runRecord(id);
    await store.kv.put(`run.${id}`, JSON.stringify({ ...old, history }));

    const read = await store.get(id);
    expect(read.roundsDone).toBe(3);
    expect(read.recentRounds.map((r) => r.round)).toEqual([1, 2, 3]);
    expect((await store.detail(id)).history.map((r) => r.roundId)).toEqual(history.map((r) => r.roundId));
    expect(await store.kv.get(flRunRoundKey(id, 2))).toBeNull();

    await store.mutate(id, (r) => ({ ...r, state: 'stopping' }));
    const stored = (await store.kv.get(`run.${id}`))!.json<Record<string, unknown>>();
    expect(stored.history).toBeUndefined();
    expect(stored.roundsDone).toBe(3);
    expect((await store.kv.get(flRunRoundKey(id, 2)))?.json()).toMatchObject({ roundId: `${id}-r2` });
    expect((await store.getRound(id, 3)).received).toHaveLength(CLIENTS);
  });
});

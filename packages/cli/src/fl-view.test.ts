import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { FlRoundSummary, FlRunRecord } from '@infermesh/protocols';
import { flStartRequestFromFlags, parseDurationMs, readExamples } from './commands/fl.js';
import { FlRunView, flRunLine, flRunLines, followFlRun, sparkline } from './fl-view.js';

const SHA = 'a'.repeat(64);

const round = (n: number, accuracy: number, extra: Partial<FlRoundSummary> = {}): FlRoundSummary => ({
  round: n,
  roundId: `fl-1-r${n}`,
  attempts: 1,
  selected: 3,
  accepted: 3,
  received: 3,
  dropped: 0,
  rejected: 0,
  updateNorm: 0.5,
  evaluation: { accuracy, examples: 100 },
  startedAt: 1_000 * n,
  closedAt: 1_000 * n + 1_500,
  ...extra,
});

/** The run record's fields for these closed rounds (all of them summed up). */
const closed = (rounds: FlRoundSummary[]): Pick<FlRunRecord, 'roundsDone' | 'recentRounds'> => ({
  roundsDone: rounds.length,
  recentRounds: rounds,
});

const run = (extra: Partial<FlRunRecord> = {}): FlRunRecord => ({
  id: 'fl-1',
  model: 'spam',
  baseVersion: '1',
  rounds: 10,
  clientsPerRound: 3,
  minClients: 2,
  roundTimeoutMs: 60_000,
  strategy: 'fedavg',
  strategyOptions: {},
  hyperparameters: { localEpochs: 1, batchSize: 32, learningRate: 0.1, proximalMu: 0 },
  secure: false,
  seed: 7,
  evaluationData: { sha256: SHA, examples: 100 },
  resultVersion: '1-fl-1',
  trainable: ['w'],
  state: 'running',
  registerOnStop: false,
  createdBy: 'ops',
  createdAt: 1,
  updatedAt: 2,
  baseline: { accuracy: 0.8, examples: 100 },
  globalWeightsSha256: SHA,
  current: {
    round: 3,
    roundId: 'fl-1-r3',
    attempt: 1,
    selected: ['a', 'b', 'c'],
    accepted: ['a', 'b'],
    phase: 'collecting',
    deadlineAt: 20_000,
    startedAt: 10_000,
    tasksMs: 3,
  },
  ...closed([round(1, 0.85), round(2, 0.9, { dropped: 1, received: 2 })]),
  ...extra,
});

describe('fl CLI', () => {
  it('shows round k/R, the clients and the accuracy on one line, and a sparkline of the rounds', () => {
    expect(flRunLine(run())).toBe(
      'fl-1 running | round 2/10 | round 3: 2/3 accepted (collecting) | last: 2 received, accuracy 90.00% | base accuracy 80.00%',
    );
    const ended = run({ state: 'succeeded', registeredVersion: '1-fl-1' });
    expect(flRunLine(ended)).toMatch(/fl-1 succeeded \| round 2\/10 \| last: .* \| registered spam@1-fl-1$/);
    expect(sparkline([0.8, 0.85, 0.9])).toBe('▁▄█');
    expect(sparkline([0.5, 0.5])).toBe('██');
    expect(sparkline([])).toBe('');
  });

  it('lists the round in progress with its time left and the closed rounds on a terminal', () => {
    const lines = flRunLines(run(), 12_400);
    expect(lines[0]).toBe('fl-1  spam@1 -> 1-fl-1  fedavg  running');
    expect(lines[1]).toBe('  rounds [####----------------] 2/10');
    expect(lines[2]).toBe('  > round 3: collecting, 2/3 clients accepted, closes in 8 s');
    expect(lines[3]).toBe('  accuracy: base 80.00% -> 90.00%  ▁▄█');
    expect(lines[4]).toBe('    round 1: 3/3 updates, accuracy 85.00%, 1.5 s');
    expect(lines[5]).toBe('    round 2: 2/3 updates (1 dropped), accuracy 90.00%, 1.5 s');
    const many = run(closed(Array.from({ length: 8 }, (_, i) => round(i + 1, 0.8 + i / 100))));
    expect(flRunLines(many)).toContain('    (3 earlier rounds)');
    // A long run's record sums up only its last rounds: the count still covers every round.
    const long = run({ rounds: 1_000, roundsDone: 500, recentRounds: [round(499, 0.9), round(500, 0.91)] });
    expect(flRunLines(long)).toContain('    (498 earlier rounds)');
    expect(flRunLines(long)[1]).toBe('  rounds [##########----------] 500/1000');
    const failed = flRunLines(run({ state: 'failed', error: 'too few clients' }));
    expect(failed.at(-1)).toBe('  error: too few clients');
    expect(failed.some((l) => l.includes('> round'))).toBe(false);
  });

  it('prints one line per change when not on a terminal, and redraws in place on one', () => {
    const written: string[] = [];
    const view = new FlRunView({ write: (t: string) => written.push(t), isTTY: false });
    view.show(run());
    view.show(run({ updatedAt: 5 }));
    view.show(run({ ...closed([...run().recentRounds, round(3, 0.93)]), current: undefined }));
    expect(written).toHaveLength(2);
    expect(written[1]).toMatch(/round 3\/10 \| last: 3 received, accuracy 93.00%/);

    const drawn: string[] = [];
    const tty = new FlRunView(
      { write: (t: string) => drawn.push(t), isTTY: true, columns: 40 },
      () => 12_400,
    );
    tty.show(run());
    tty.show(run());
    const count = flRunLines(run(), 12_400).length;
    expect(drawn[0]?.startsWith('\r\x1b[K')).toBe(true);
    expect(drawn[1]?.startsWith(`\x1b[${count}A`)).toBe(true);
    // eslint-disable-next-line no-control-regex
    const visible = drawn[1]!.replace(/\x1b\[\d*[A-Za-z]|\r/g, '').split('\n');
    for (const line of visible) expect(line.length).toBeLessThan(40);
  });

  it('follows a run until it ends', async () => {
    const states = [run(), run({ state: 'succeeded', current: undefined, registeredVersion: '1-fl-1' })];
    const shown: string[] = [];
    const end = await followFlRun(
      { get: () => Promise.resolve(states.shift()!) },
      'fl-1',
      { show: (r) => shown.push(r.state) },
      { intervalMs: 1 },
    );
    expect(end.state).toBe('succeeded');
    expect(shown).toEqual(['running', 'succeeded']);
  });

  it('builds the start request from flags and refuses bad values with INVALID_INPUT', async () => {
    const flags = {
      model: 'spam',
      rounds: 10,
      clientsPerRound: 10,
      minClients: 5,
      roundTimeout: '60s',
      strategy: 'krum',
      strategyOption: ['f=1'],
      learningRate: '0.5',
      seed: 3,
    };
    const examples = [{ inputs: { text: 'hi' }, label: 0 }];
    expect(flStartRequestFromFlags(flags, examples)).toEqual({
      model: 'spam',
      rounds: 10,
      clientsPerRound: 10,
      minClients: 5,
      roundTimeoutMs: 60_000,
      strategy: 'krum',
      strategyOptions: { f: 1 },
      hyperparameters: { localEpochs: 1, batchSize: 32, learningRate: 0.5, proximalMu: 0 },
      secure: false,
      evaluationExamples: examples,
      seed: 3,
    });
    expect(parseDurationMs('1500ms')).toBe(1_500);
    expect(() => parseDurationMs('soon')).toThrow(/not a duration/);
    expect(() => flStartRequestFromFlags({ ...flags, learningRate: 'fast' }, examples)).toThrow(
      /--learning-rate must be a number/,
    );
    expect(() => flStartRequestFromFlags({ ...flags, strategyOption: ['f'] }, examples)).toThrow(
      /key=number/,
    );
    expect(() =>
      flStartRequestFromFlags({ ...flags, dpMode: 'both' as unknown as 'client' }, examples),
    ).toThrow(/--dp-mode must be client or server/);

    const dir = await mkdtemp(join(tmpdir(), 'im-fl-cli-'));
    try {
      const file = join(dir, 'heldout.jsonl');
      await writeFile(
        file,
        '{"inputs":{"text":"win money"},"label":1}\n\n{"inputs":{"text":"hi"},"label":0}\n',
      );
      expect(await readExamples(file)).toHaveLength(2);
      await writeFile(file, '{"inputs":{"text":"a"},"label":1}\n{not json}\n');
      await expect(readExamples(file)).rejects.toMatchObject({ code: 'INVALID_INPUT' });
      await expect(readExamples(file)).rejects.toThrow(/line 2 is not JSON/);
      await writeFile(file, '{"inputs":{"text":"a"},"label":-1}\n');
      await expect(readExamples(file)).rejects.toThrow(/line 1/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode } from '@infermesh/protocols';
import { loadAgentConfig } from '../config/agent-config.js';
import { ExampleStore } from './example-store.js';

describe('example store', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'im-examples-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads the training-data file first, then feedback, skipping invalid and torn lines', async () => {
    const shard = join(dir, 'shard.jsonl');
    await writeFile(
      shard,
      [
        '{"inputs":{"text":"a"},"label":0}',
        'not json',
        '{"inputs":{"text":"b"},"label":-1}',
        '{"inputs":{"text":"c"},"label":1}',
        '{"inputs":{"text":"d"},"lab',
      ].join('\n'),
    );
    const store = new ExampleStore({
      dir: join(dir, 'feedback'),
      maxExamplesPerModel: 10,
      trainingData: { spam: shard },
      logger: pino({ level: 'silent' }),
    });
    expect(await store.load('spam')).toEqual([
      { inputs: { text: 'a' }, label: 0 },
      { inputs: { text: 'c' }, label: 1 },
    ]);
    await store.append('spam', [{ inputs: { text: 'e' }, label: 1 }]);
    expect((await store.load('spam')).map((e) => e.inputs['text'])).toEqual(['a', 'c', 'e']);
    expect(await store.storedCount('spam')).toBe(1);
    expect(await store.load('other')).toEqual([]);
  });

  it('appends after a torn last line without losing the new example', async () => {
    const feedback = join(dir, 'torn');
    const store = new ExampleStore({
      dir: feedback,
      maxExamplesPerModel: 10,
      logger: pino({ level: 'silent' }),
    });
    await store.append('spam', [{ inputs: { text: 'kept' }, label: 0 }]);
    // A crash mid-append left half a line behind.
    await writeFile(store.feedbackFile('spam'), '{"inputs":{"text":"kept"},"label":0}\n{"inputs":{"te', {
      flag: 'w',
    });
    const fresh = new ExampleStore({
      dir: feedback,
      maxExamplesPerModel: 10,
      logger: pino({ level: 'silent' }),
    });
    await fresh.append('spam', [{ inputs: { text: 'new' }, label: 1 }]);
    expect((await fresh.load('spam')).map((e) => e.inputs['text'])).toEqual(['kept', 'new']);
  });

  it('serialises concurrent appends to one model', async () => {
    const store = new ExampleStore({
      dir: join(dir, 'concurrent'),
      maxExamplesPerModel: 5,
      logger: pino({ level: 'silent' }),
    });
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) => store.append('m', [{ inputs: { x: i }, label: 0 }])),
    );
    expect(results.map((r) => r.stored)).toEqual([1, 2, 3, 4, 5, 5, 5, 5]);
    expect((await store.load('m')).map((e) => e.inputs['x'])).toEqual([3, 4, 5, 6, 7]);
  });
});

describe('agent config: training data', () => {
  it('takes an object from the file, model=path pairs from flags and the environment', async () => {
    const fromFlags = await loadAgentConfig({
      flags: { trainingData: ['spam=/data/a.jsonl', 'other=/b=c.jsonl'] },
    });
    expect(fromFlags.trainingData).toEqual({ spam: '/data/a.jsonl', other: '/b=c.jsonl' });
    const fromEnv = await loadAgentConfig({ env: { INFERMESH_TRAINING_DATA: 'spam=/x.jsonl' } });
    expect(fromEnv.trainingData).toEqual({ spam: '/x.jsonl' });
    await expect(loadAgentConfig({ flags: { trainingData: ['spam'] } })).rejects.toMatchObject({
      code: ErrorCode.INVALID_INPUT,
    });
  });
});

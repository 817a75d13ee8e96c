/**
 * `POST /v1/feedback` on a real agent serving the weak spam model: valid examples are stored (and
 * survive a restart), each kind of bad input gets INVALID_INPUT naming the example, an unknown
 * model 404, the cap drops the oldest, and the API key and body limit apply.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode } from '@infermesh/protocols';
import { buildWeakSpamModel } from '@infermesh/demo-models';
import { TEST_AGENT_SETTINGS, createModelsDir } from '../../../test/harness/index.js';
import type { ModelsDir } from '../../../test/harness/index.js';
import { Agent, FEEDBACK_DIR } from '../agent.js';
import { agentConfigSchema } from '../config/agent-config.js';
import type { AgentConfigInput } from '../config/agent-config.js';

const API_KEY = 'feedback-test-key';

async function startAgent(modelsDir: string, settings: Partial<AgentConfigInput> = {}): Promise<Agent> {
  const agent = new Agent(
    agentConfigSchema.parse({ ...TEST_AGENT_SETTINGS, modelsDir, ...settings }),
    pino({ level: 'silent' }),
  );
  await agent.start();
  return agent;
}

function post(agent: Agent, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return Promise.resolve(
    agent.app.request('/v1/feedback', {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    }),
  );
}

const example = (text: string, label: number): unknown => ({ inputs: { text }, label });

describe('POST /v1/feedback', () => {
  let models: ModelsDir;

  beforeAll(async () => {
    const weak = await buildWeakSpamModel();
    models = await createModelsDir({ spam: { '1': weak.bytes } });
  });
  afterAll(async () => {
    await models?.dispose();
  });

  it('stores valid examples, keeps them across a restart, and counts them', async () => {
    let agent = await startAgent(models.path);
    try {
      const first = await post(agent, {
        model: 'spam',
        examples: [example('win money now', 1), example('lunch?', 0)],
      });
      expect(first.status).toBe(200);
      expect(await first.json()).toEqual({ accepted: 2, stored: 2, dropped: 0 });
    } finally {
      await agent.stop();
    }
    agent = await startAgent(models.path);
    try {
      const again = await post(agent, { model: 'spam', examples: [example('cheap pills', 1)] });
      expect(await again.json()).toEqual({ accepted: 1, stored: 3, dropped: 0 });
      const stored = await agent.examples.load('spam');
      expect(stored).toEqual([
        { inputs: { text: 'win money now' }, label: 1 },
        { inputs: { text: 'lunch?' }, label: 0 },
        { inputs: { text: 'cheap pills' }, label: 1 },
      ]);
      const file = await readFile(join(models.path, FEEDBACK_DIR, 'spam.jsonl'), 'utf8');
      expect(file.trim().split('\n')).toHaveLength(3);
    } finally {
      await agent.stop();
    }
  });

  it('refuses bad input with INVALID_INPUT naming the example, storing nothing', async () => {
    const agent = await startAgent(models.path, { feedbackDir: join(models.path, '.bad-input') });
    try {
      const cases: [unknown, string][] = [
        ['{not json', 'not JSON'],
        [{ examples: [example('x', 0)] }, 'model'],
        [{ model: 'spam', examples: [] }, 'examples'],
        [{ model: 'spam', examples: [example('ok', 0), { inputs: { text: 42 }, label: 0 }] }, 'example 1'],
        [
          { model: 'spam', examples: [{ inputs: { body: 'hi' }, label: 0 }] },
          "example 0: unknown input 'body'",
        ],
        [{ model: 'spam', examples: [{ inputs: { text: ['a', 'b'] }, label: 0 }] }, 'example 0'],
        [{ model: 'spam', examples: [example('ok', 0), example('ok', 2)] }, 'example 1: label 2'],
        [{ model: 'spam', examples: [example('ok', 1.5)] }, 'example 0: label'],
        [{ model: 'spam', examples: [{ label: 1 }] }, 'example 0: inputs'],
      ];
      for (const [body, mentions] of cases) {
        const response = await post(agent, body);
        const error = (await response.json()) as { code: string; error: string };
        expect({ status: response.status, code: error.code }, JSON.stringify(body)).toEqual({
          status: 400,
          code: ErrorCode.INVALID_INPUT,
        });
        expect(error.error).toContain(mentions);
      }
      expect(await agent.examples.load('spam')).toEqual([]);
    } finally {
      await agent.stop();
    }
  });

  it('answers 404 MODEL_NOT_FOUND for a model the agent does not have', async () => {
    const agent = await startAgent(models.path, { feedbackDir: join(models.path, '.not-found') });
    try {
      const response = await post(agent, { model: 'nope', examples: [example('x', 0)] });
      expect(response.status).toBe(404);
      expect(await response.json()).toMatchObject({ code: ErrorCode.MODEL_NOT_FOUND });
    } finally {
      await agent.stop();
    }
  });

  it('keeps at most feedbackMaxExamples, dropping the oldest', async () => {
    const agent = await startAgent(models.path, {
      feedbackDir: join(models.path, '.capped'),
      feedbackMaxExamples: 4,
    });
    try {
      await post(agent, { model: 'spam', examples: [example('a', 0), example('b', 1), example('c', 0)] });
      const response = await post(agent, {
        model: 'spam',
        examples: [example('d', 1), example('e', 0), example('f', 1)],
      });
      expect(await response.json()).toEqual({ accepted: 3, stored: 4, dropped: 2 });
      const texts = (await agent.examples.load('spam')).map((e) => e.inputs['text']);
      expect(texts).toEqual(['c', 'd', 'e', 'f']);
    } finally {
      await agent.stop();
    }
  });

  it('applies the API key and the body size limit', async () => {
    const agent = await startAgent(models.path, {
      feedbackDir: join(models.path, '.guarded'),
      apiKey: API_KEY,
      maxBodyBytes: 1024,
    });
    try {
      const body = { model: 'spam', examples: [example('hello', 0)] };
      expect((await post(agent, body)).status).toBe(401);
      expect((await post(agent, body, { authorization: `Bearer ${API_KEY}` })).status).toBe(200);
      const big = { model: 'spam', examples: [example('x'.repeat(2048), 0)] };
      const response = await post(agent, big, { authorization: `Bearer ${API_KEY}` });
      expect(response.status).toBe(413);
      expect(await response.json()).toMatchObject({ code: ErrorCode.PAYLOAD_TOO_LARGE });
    } finally {
      await agent.stop();
    }
  });
});

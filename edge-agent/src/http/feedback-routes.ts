/**
 * `POST /v1/feedback`: labelled examples for federated training. Body
 * `{ "model": "spam", "examples": [{ "inputs": { "text": "..." }, "label": 1 }] }` (protocols'
 * `feedbackRequestSchema`); every example is checked against the serving version's signature
 * (input names, datatype-compatible values, shape without the batch axis, label below the class
 * count when the model's probability output has a fixed width) before any is stored, so a request
 * is stored whole or not at all. Answers `{ accepted, stored, dropped }`. 404 MODEL_NOT_FOUND for a
 * model the agent does not have; the API key and body size limit apply as on the inference routes.
 * @module
 */
import type { Hono } from 'hono';
import {
  InferMeshError,
  ErrorCode,
  feedbackRequestSchema,
  invalidFromZod,
  invalidInput,
  modelNotFound,
} from '@infermesh/protocols';
import type { FeedbackResponse } from '@infermesh/protocols';
import type { ModelSignature } from '@infermesh/runtime';
import { validateExample } from '@infermesh/trainer';
import type { ExampleStore } from '../federated/example-store.js';
import type { ModelRepository } from '../models/model-repository.js';
import { bodySizeLimit } from './body-size-limit.js';
import { attributeFailure, errorResponse } from './error-boundary.js';

/** The route's path. */
export const FEEDBACK_PATH = '/v1/feedback';
/** Output whose last axis counts the classes when the manifest names no confidence output. */
const DEFAULT_PROBABILITY_OUTPUT = 'probabilities';

export interface FeedbackRouteContext {
  readonly repository: ModelRepository;
  readonly store: ExampleStore;
  readonly maxBodyBytes: number;
}

/**
 * Classes of a model when its probability output (the manifest's `confidenceOutput`, else
 * `probabilities`) is `[batch, classes]` with a fixed width; undefined when unknown.
 */
export function classCount(signature: ModelSignature, confidenceOutput?: string): number | undefined {
  const output = signature.outputs.find((o) => o.name === (confidenceOutput ?? DEFAULT_PROBABILITY_OUTPUT));
  const width = output?.shape.at(-1);
  return output?.shape.length === 2 && typeof width === 'number' && width > 1 ? width : undefined;
}

async function readJson(text: Promise<string>): Promise<unknown> {
  try {
    return JSON.parse(await text) as unknown;
  } catch (cause) {
    throw invalidInput(`the body is not JSON: ${(cause as Error).message}`);
  }
}

export function registerFeedbackRoutes(app: Hono, ctx: FeedbackRouteContext): void {
  app.use(
    FEEDBACK_PATH,
    bodySizeLimit({
      maxSize: ctx.maxBodyBytes,
      onError: (c) =>
        errorResponse(
          c,
          new InferMeshError(
            ErrorCode.PAYLOAD_TOO_LARGE,
            `request body exceeds the limit of ${ctx.maxBodyBytes} bytes`,
          ),
        ),
    }),
  );

  app.post(FEEDBACK_PATH, async (c) => {
    const parsed = feedbackRequestSchema.safeParse(await readJson(c.req.text()));
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      if (issue?.path[0] === 'examples' && typeof issue.path[1] === 'number') {
        const field = issue.path.slice(2).map(String).join('.');
        throw invalidInput(`example ${issue.path[1]}: ${field === '' ? '' : `${field}: `}${issue.message}`, {
          example: issue.path[1],
        });
      }
      throw invalidFromZod(parsed.error, 'feedback');
    }
    const { model: name, examples } = parsed.data;
    if (ctx.repository.localState(name) === 'absent') throw modelNotFound(`model '${name}' not found`);
    attributeFailure(c, name);
    const model = ctx.repository.resolve(name);
    const confidenceOutput = model.manifest?.offload?.confidenceOutput;
    const classes = classCount(model.signature, confidenceOutput);
    examples.forEach((example, index) => validateExample(model.signature, example, index, classes));
    const result = await ctx.store.append(name, examples);
    const body: FeedbackResponse = {
      accepted: result.accepted,
      stored: result.stored,
      dropped: result.dropped,
    };
    return c.json(body, 200);
  });
}

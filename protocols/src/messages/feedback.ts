/**
 * Labelled examples for federated training (DESIGN.md sections 4 and 9): the body of the agent's
 * `POST /v1/feedback`, its answer, and the line format of the agent's example files (one
 * {@link LabelledExample} as JSON per line). Examples stay on the device: they are stored locally
 * and only the weight updates computed from them ever leave it.
 * @module
 */
import { z } from 'zod';
import { modelNameSchema } from './model-ref.js';
import { tensorNameSchema } from './primitives.js';

/** Most examples one feedback request may carry. */
export const MAX_FEEDBACK_EXAMPLES = 10_000;

/**
 * The value of one input for ONE example (no batch dimension): a string (BYTES inputs), a number
 * or boolean, or nested arrays of them matching the input's shape without its first axis.
 */
export type ExampleValue = string | number | boolean | readonly ExampleValue[];
export const exampleValueSchema: z.ZodType<ExampleValue> = z.lazy(() =>
  z.union([z.string(), z.number(), z.boolean(), z.array(exampleValueSchema)]),
);

/** One labelled example: `{ "inputs": { "text": "..." }, "label": 1 }`. */
export const labelledExampleSchema = z.object({
  inputs: z
    .record(tensorNameSchema, exampleValueSchema)
    .refine((inputs) => Object.keys(inputs).length > 0, 'at least one input is needed'),
  /** Class index (0-based). */
  label: z.number().int().nonnegative(),
});
export type LabelledExample = z.infer<typeof labelledExampleSchema>;

/** Body of `POST /v1/feedback`. */
export const feedbackRequestSchema = z.object({
  model: modelNameSchema,
  examples: z.array(labelledExampleSchema).min(1).max(MAX_FEEDBACK_EXAMPLES),
});
export type FeedbackRequest = z.infer<typeof feedbackRequestSchema>;

/** Answer of `POST /v1/feedback`. */
export const feedbackResponseSchema = z.object({
  /** Examples of this request now stored. */
  accepted: z.number().int().nonnegative(),
  /** Examples stored for the model in all (after the oldest were dropped to keep the cap). */
  stored: z.number().int().nonnegative(),
  /** Oldest examples dropped to stay within the agent's cap. */
  dropped: z.number().int().nonnegative(),
});
export type FeedbackResponse = z.infer<typeof feedbackResponseSchema>;

/** One line of an examples text that is not a valid example: its 1-based number and why. */
export interface InvalidExampleLine {
  readonly line: number;
  readonly reason: string;
}

/**
 * Parses examples written one JSON object per line (training files, the agent's feedback store,
 * an operator's held-out data): blank lines are skipped, every other line is validated with
 * {@link labelledExampleSchema}; bad lines are reported, not thrown, so each caller decides.
 */
export function parseExampleLines(text: string): {
  examples: LabelledExample[];
  invalid: InvalidExampleLine[];
} {
  const examples: LabelledExample[] = [];
  const invalid: InvalidExampleLine[] = [];
  for (const [i, line] of text.split('\n').entries()) {
    if (line.trim() === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (err) {
      invalid.push({ line: i + 1, reason: `not JSON: ${(err as Error).message}` });
      continue;
    }
    const parsed = labelledExampleSchema.safeParse(value);
    if (parsed.success) examples.push(parsed.data);
    else {
      const detail = z.prettifyError(parsed.error).replace(/\n/g, '; ');
      invalid.push({ line: i + 1, reason: `not a labelled example: ${detail}` });
    }
  }
  return { examples, invalid };
}

/** One example as its JSON line (with the newline), the inverse of {@link parseExampleLines}. */
export function formatExampleLine(example: LabelledExample): string {
  return `${JSON.stringify({ inputs: example.inputs, label: example.label })}\n`;
}

/**
 * The operator's held-out examples of a run, stored once in the artifacts object store as JSON
 * lines (addressed by sha256, referenced from the run record) so that any coordinator that takes
 * the run over evaluates on exactly the same data.
 * @module
 */
import { formatExampleLine, invalidInput, parseExampleLines } from '@infermesh/protocols';
import type { LabelledExample } from '@infermesh/protocols';
import type { ArtifactStore } from '@infermesh/mesh-client';

/** Stores the examples as JSON lines; resolves with their digest. */
export async function storeEvaluationData(
  artifacts: ArtifactStore,
  examples: readonly LabelledExample[],
): Promise<string> {
  const text = examples.map(formatExampleLine).join('');
  return (await artifacts.putBytes(new TextEncoder().encode(text))).artifact.sha256;
}

/** Loads examples stored by {@link storeEvaluationData}. */
export async function loadEvaluationData(
  artifacts: ArtifactStore,
  sha256: string,
): Promise<LabelledExample[]> {
  const text = new TextDecoder().decode(await artifacts.readAll(sha256));
  const { examples, invalid } = parseExampleLines(text);
  const bad = invalid[0];
  if (bad) throw invalidInput(`stored held-out example ${bad.line} is ${bad.reason}`);
  return examples;
}

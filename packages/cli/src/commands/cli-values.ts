/**
 * Parsers of the values operator commands take: durations (`90s`, `1h`, `7d`), label lists
 * (`site=eu,hw=x`) and label edits (`key=value`, `key-`), validated with the protocols' schemas.
 * @module
 */
import { invalidInput, labelsPatchSchema, labelsSchema, parseOrThrow } from '@infermesh/protocols';
import type { Labels, LabelsPatch } from '@infermesh/protocols';

const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Milliseconds of `90s`, `15m`, `1h`, `7d` or `500ms`. */
export function parseDurationMs(text: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(text.trim());
  if (!match) throw invalidInput(`expected a duration like 90s, 15m, 1h or 7d, got ${JSON.stringify(text)}`);
  return Math.round(Number(match[1]) * (UNIT_MS[match[2] as string] as number));
}

/** Labels from `site=eu,hw=x` (empty text: none). */
export function parseLabelList(text: string): Labels {
  const labels: Record<string, string> = {};
  for (const part of text.split(',')) {
    if (part.trim() === '') continue;
    const eq = part.indexOf('=');
    if (eq <= 0) throw invalidInput(`expected key=value, got ${JSON.stringify(part)}`);
    labels[part.slice(0, eq).trim()] = part.slice(eq + 1).trim();
  }
  return parseOrThrow(labelsSchema, labels, 'labels');
}

/** A label patch from `key=value` (set) and `key-` (remove) arguments. */
export function parseLabelEdits(edits: readonly string[]): LabelsPatch {
  const patch: Record<string, string | null> = {};
  for (const edit of edits) {
    const eq = edit.indexOf('=');
    if (eq > 0) patch[edit.slice(0, eq)] = edit.slice(eq + 1);
    else if (edit.endsWith('-') && edit.length > 1) patch[edit.slice(0, -1)] = null;
    else throw invalidInput(`expected key=value or key-, got ${JSON.stringify(edit)}`);
  }
  if (Object.keys(patch).length === 0) throw invalidInput('give at least one key=value or key-');
  return parseOrThrow(labelsPatchSchema, patch, 'labels');
}

/** `k=v,k2=v2` of labels, for printing. */
export function formatLabels(labels: Labels): string {
  return Object.entries(labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}

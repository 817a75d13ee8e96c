/**
 * The CLI's client of the rollout routes of the admin API (`/api/v1/rollouts`), over
 * `AdminClient.request`, every answer validated by the protocols' schemas; and the parsing of the
 * durations operators type (`10m`, `30s`, `1h`, `1500ms`).
 * @module
 */
import { invalidInput, rolloutAgentPageSchema, rolloutListSchema, rolloutSchema } from '@infermesh/protocols';
import type { CreateRolloutRequest, Rollout, RolloutAgentPage, RolloutSummary } from '@infermesh/protocols';
import type { AdminClient } from './admin-client.js';

const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * Milliseconds of a duration: a number with a unit (`ms`, `s`, `m`, `h`, `d`), or plain
 * milliseconds. INVALID_INPUT naming `what` otherwise.
 * @example
 * parseDuration('10m', '--bake'); // 600000
 */
export function parseDuration(text: string, what: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(text.trim());
  if (!match)
    throw invalidInput(`${what} must be a duration like 30s, 10m or 1h, got ${JSON.stringify(text)}`);
  return Math.round(Number(match[1]) * (UNIT_MS[match[2] ?? 'ms'] as number));
}

/** Actions that steer a rollout. */
export type RolloutAction = 'pause' | 'resume' | 'abort' | 'rollback';

/** Rollout calls of one admin API. */
export class RolloutClient {
  readonly #admin: AdminClient;

  constructor(admin: AdminClient) {
    this.#admin = admin;
  }

  start(request: CreateRolloutRequest): Promise<Rollout> {
    return this.#admin.request('POST', '/rollouts', rolloutSchema, request);
  }

  get(id: string): Promise<Rollout> {
    return this.#admin.request('GET', `/rollouts/${encodeURIComponent(id)}`, rolloutSchema);
  }

  /** A page of a rollout's agents (`cursor` from the previous page's `nextCursor`). */
  agents(
    id: string,
    page: { cursor?: string; limit?: number; step?: number } = {},
  ): Promise<RolloutAgentPage> {
    const query = new URLSearchParams();
    if (page.cursor !== undefined) query.set('cursor', page.cursor);
    if (page.limit !== undefined) query.set('limit', String(page.limit));
    if (page.step !== undefined) query.set('step', String(page.step));
    const suffix = query.size > 0 ? `?${query.toString()}` : '';
    return this.#admin.request(
      'GET',
      `/rollouts/${encodeURIComponent(id)}/agents${suffix}`,
      rolloutAgentPageSchema,
    );
  }

  async list(): Promise<RolloutSummary[]> {
    return (await this.#admin.request('GET', '/rollouts', rolloutListSchema)).rollouts;
  }

  steer(id: string, action: RolloutAction): Promise<Rollout> {
    return this.#admin.request('POST', `/rollouts/${encodeURIComponent(id)}/${action}`, rolloutSchema);
  }
}
